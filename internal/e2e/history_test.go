package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// closedHistoryFile is a conversation that went idle and closed (and, from
// the memory change, was summarised): the close path replays too.
const closedHistoryFile = "conversation_v3_memory_closed.json"

func TestRecordClosedConversationHistory(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_CONVERSATION_IDLE_TIMEOUT": "2s"}})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply { return fakellm.Text("echo: " + r.LastUserText()) })
	tn := p.NewTenant("History", platform.AgentSpec{Name: "Hal"})
	ts := platform.NewTS()
	body, _ := tn.Mention("C0HIST", "U0ALICE", "hello", ts, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	p.Slack.WaitForMessages(t, "C0HIST", 1, replyTimeout)

	c := testkit.NewTemporal(t)
	id := workflows.ConversationID(tn.ID, "slack", workflows.SlackKey(tn.TeamID, "C0HIST", ts))
	require.Eventually(t, func() bool {
		d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
		return err == nil && d.WorkflowExecutionInfo.CloseTime != nil
	}, 30*time.Second, 200*time.Millisecond, "the idle conversation ends")
	hist, err := workflows.FetchHistory(context.Background(), c, id, "")
	require.NoError(t, err)
	require.NoError(t, workflows.Replay(hist))
	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", closedHistoryFile)
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(hist))
	}
}

// escalationHistoryFile is a conversation handed to people (a keyword), whose
// first-response timer pages staff, answered over REST and resolved, after
// which the agent follows up: the escalation change (workflow.GetVersion
// "escalation") with its signal, timers and activities.
const escalationHistoryFile = "conversation_v4_escalation.json"

func TestRecordEscalationHistory(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if strings.Contains(r.System, "human support colleague") {
			return fakellm.Text("The user wants a person.")
		}
		return fakellm.Text("echo: " + r.LastUserText())
	})
	tn := p.NewTenant("History", platform.AgentSpec{Name: "Hal", Escalation: map[string]any{"keywords": []string{"agent"}}})
	setSupport(t, p, tn, "C0SUPPORT", 5, 3600)
	ts := platform.NewTS()
	body, _ := tn.Mention("C0HIST", "U0ALICE", "hello", ts, "")
	postOK(t, p, body)
	p.Slack.WaitForMessages(t, "C0HIST", 1, replyTimeout)
	body, _ = tn.Mention("C0HIST", "U0ALICE", "agent please", platform.NewTS(), ts)
	postOK(t, p, body)
	p.Slack.WaitForMessages(t, "C0HIST", 2, replyTimeout)
	handoff := p.Slack.WaitForMessages(t, "C0SUPPORT", 2, replyTimeout)[0]
	p.Slack.WaitForThread(t, "C0SUPPORT", handoff.TS, 3, replyTimeout) // the page
	esc := escalations(t, p, tn)[0]
	body, _ = tn.Mention("C0HIST", "U0ALICE", "hello?", platform.NewTS(), ts)
	postOK(t, p, body)
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/messages", p.AdminToken,
		map[string]string{"text": "Here I am."}, http.StatusAccepted, nil)
	p.Slack.WaitForMessages(t, "C0HIST", 3, replyTimeout)
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/resolve", p.AdminToken, nil, http.StatusAccepted, nil)
	p.Slack.WaitForMessages(t, "C0HIST", 4, replyTimeout)

	c := testkit.NewTemporal(t)
	id := workflows.ConversationID(tn.ID, "slack", workflows.SlackKey(tn.TeamID, "C0HIST", ts))
	hist, err := workflows.FetchHistory(context.Background(), c, id, "")
	require.NoError(t, err)
	require.NoError(t, workflows.Replay(hist))
	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", escalationHistoryFile)
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(hist))
	}
}

// pausedHistoryFile is a conversation whose second turn a spent hard-stop
// budget refused before the model was called: the paused notice replays.
const pausedHistoryFile = "conversation_v3_billing_paused.json"

func TestRecordBudgetPausedHistory(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		return fakellm.Reply{Text: "echo: " + r.LastUserText(), Usage: &fakellm.Usage{InputTokens: 1000, OutputTokens: 100}}
	})
	tn := p.NewTenant("History", platform.AgentSpec{Name: "Hal"})
	// One turn's cost (210 µ$ at gpt-4o-mini) is more than the whole budget.
	p.MustDo(http.MethodPut, "/api/v1/tenants/"+tn.ID+"/billing/budget", p.AdminToken,
		map[string]any{"monthly_limit_usd": 0.0001, "hard_stop": true}, http.StatusOK, nil)
	ts := platform.NewTS()
	for i, text := range []string{"hello", "still there?"} {
		thread, msgTS := ts, platform.NewTS()
		if i == 0 {
			thread, msgTS = "", ts
		}
		body, _ := tn.Mention("C0HIST", "U0ALICE", text, msgTS, thread)
		status, _ := p.PostEvent(body, 0)
		require.Equal(t, http.StatusOK, status)
		p.Slack.WaitForMessages(t, "C0HIST", i+1, replyTimeout)
	}
	msgs := p.Slack.Messages("C0HIST")
	require.Equal(t, "echo: hello", msgs[0].Text)
	require.Contains(t, msgs[1].Text, "I'm paused")
	require.Len(t, p.LLM.Requests(), 1)

	c := testkit.NewTemporal(t)
	id := workflows.ConversationID(tn.ID, "slack", workflows.SlackKey(tn.TeamID, "C0HIST", ts))
	hist, err := workflows.FetchHistory(context.Background(), c, id, "")
	require.NoError(t, err)
	require.NoError(t, workflows.Replay(hist))
	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", pausedHistoryFile)
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(hist))
	}
}
