package tools

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCurrentTime(t *testing.T) {
	fixed := time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC)
	r, err := NewRegistry(CurrentTime(func() time.Time { return fixed }))
	require.NoError(t, err)
	require.Equal(t, []string{"current_time"}, r.Names())

	out, err := r.Call(context.Background(), "current_time", json.RawMessage(`{"timezone":"Europe/Paris"}`))
	require.NoError(t, err)
	require.Equal(t, "Wednesday, 25 November 2026, 15:30 CET", out)

	out, err = r.Call(context.Background(), "current_time", nil)
	require.NoError(t, err)
	require.Contains(t, out, "14:30 UTC")
}

func TestCallRejectsBadArguments(t *testing.T) {
	r := Builtin()
	for args, want := range map[string]string{
		`{"timezone": 5}`:          "do not match its schema",
		`{"tz": "UTC"}`:            "do not match its schema",
		`{"timezone":"Mars/Base"}`: "unknown time zone",
		`{`:                        "not valid JSON",
	} {
		_, err := r.Call(context.Background(), "current_time", json.RawMessage(args))
		require.ErrorContains(t, err, want, args)
	}
	_, err := r.Call(context.Background(), "rm_rf", nil)
	require.ErrorContains(t, err, `no tool named "rm_rf"`)
}
