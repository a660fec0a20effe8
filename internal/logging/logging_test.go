package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestContextAttributesAppearOnEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "json", slog.LevelInfo)
	ctx := With(context.Background(), slog.String("tenant_id", "t1"))
	ctx = With(ctx, slog.String("workflow_id", "wf1"))
	log.With("component", "test").InfoContext(ctx, "turn done", "turn", 3)
	log.DebugContext(ctx, "hidden")

	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "t1", line["tenant_id"])
	require.Equal(t, "wf1", line["workflow_id"])
	require.Equal(t, "test", line["component"])
	require.Equal(t, "turn done", line["msg"])
	require.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("\n")), "debug is below the level")
}
