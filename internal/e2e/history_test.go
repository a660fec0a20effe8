package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/platform"
	"github.com/konstruct/konstruct/workflows"
)

// historyFile names the history of the current workflow code; when a change
// ships behind workflow.GetVersion, bump it so that the older file stays.
const historyFile = "conversation_v3_memory.json" // v3: long-term memory (Remember after each reply)

// A real conversation (two turns, a tool call, a message over the limit)
// replays deterministically on the current code. With
// KONSTRUCT_UPDATE_HISTORY=1 its history is also written to
// workflows/testdata, where TestReplayCommittedHistories keeps replaying it.
func TestRecordConversationHistory(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		last := r.Messages[len(r.Messages)-1]
		switch {
		case last.Role == "tool":
			return fakellm.Text("It is " + last.Content)
		case r.LastUserText() == "what time is it?":
			return fakellm.CallTools(fakellm.ToolCall{Name: "current_time", Arguments: []byte(`{}`)})
		}
		return fakellm.Text("echo: " + r.LastUserText())
	})
	tn := p.NewTenant("History", platform.AgentSpec{Name: "Hal", Tools: []string{"current_time"}})
	p.MustDo(http.MethodPatch, "/api/v1/tenants/"+tn.ID, p.AdminToken, map[string]int{"channel_rate_per_minute": 2}, http.StatusOK, nil)
	ts := platform.NewTS()
	for i, text := range []string{"hello", "what time is it?", "one too many"} {
		thread := ts
		msgTS := platform.NewTS()
		if i == 0 {
			thread, msgTS = "", ts
		}
		body, _ := tn.Mention("C0HIST", "U0ALICE", text, msgTS, thread)
		status, _ := p.PostEvent(body, 0)
		require.Equal(t, http.StatusOK, status)
		p.Slack.WaitForMessages(t, "C0HIST", i+1, replyTimeout)
	}

	c := testkit.NewTemporal(t)
	id := workflows.ConversationID(tn.ID, "slack", workflows.SlackKey(tn.TeamID, "C0HIST", ts))
	hist, err := workflows.FetchHistory(context.Background(), c, id, "")
	require.NoError(t, err)
	require.NoError(t, workflows.Replay(hist))

	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", historyFile)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(hist))
	}
}
