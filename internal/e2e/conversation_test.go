// Package e2e drives Konstruct end to end: the real binary, signed Slack
// events over HTTP, replies observed at a fake Slack, answers written by a
// fake LLM that speaks the provider's wire format.
package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

const replyTimeout = 30 * time.Second

// A mention in a channel gets a reply in its thread, written in the agent's
// persona, and the conversation is listed with its messages over REST.
func TestMentionIsAnsweredInThreadInPersona(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		// Answer like a model that follows its system prompt.
		if strings.Contains(r.System, "Ada") && strings.Contains(r.System, "pirate") {
			return fakellm.Text("Arr, Ada here! You asked: " + r.LastUserText())
		}
		return fakellm.Text("generic answer")
	})
	tn := p.NewTenant("Acme", platform.AgentSpec{Name: "Ada", Role: "support lead at Acme",
		Persona: "Speaks like a friendly pirate.", SystemPrompt: "Help with billing questions."})

	ts := platform.NewTS()
	body, _ := tn.Mention("C0GENERAL", "U0ALICE", "where is my invoice?", ts, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)

	msgs := p.Slack.WaitForMessages(t, "C0GENERAL", 1, replyTimeout)
	require.Equal(t, ts, msgs[0].ThreadTS, "the reply is in the mention's thread")
	require.Equal(t, "Arr, Ada here! You asked: where is my invoice?", msgs[0].Text)

	reqs := p.LLM.Requests()
	require.Len(t, reqs, 1)
	require.Contains(t, reqs[0].System, "You are Ada, support lead at Acme.")
	require.Contains(t, reqs[0].System, "Persona: Speaks like a friendly pirate.")
	require.Contains(t, reqs[0].System, "Help with billing questions.")
	require.Equal(t, "where is my invoice?", reqs[0].LastUserText(), "the bot mention is stripped")

	// A follow-up in the thread continues the same conversation, with context.
	body, _ = tn.Mention("C0GENERAL", "U0ALICE", "and the due date?", platform.NewTS(), ts)
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs = p.Slack.WaitForMessages(t, "C0GENERAL", 2, replyTimeout)
	require.Equal(t, ts, msgs[1].ThreadTS)
	reqs = p.LLM.Requests()
	require.Len(t, reqs, 2)
	var history []string
	for _, m := range reqs[1].Messages {
		history = append(history, m.Role+": "+m.Content)
	}
	require.Equal(t, []string{"user: where is my invoice?", "assistant: Arr, Ada here! You asked: where is my invoice?",
		"user: and the due date?"}, history)

	// The conversation and its messages are visible over REST.
	var convs struct {
		Conversations []struct {
			ID          string `json:"id"`
			WorkflowID  string `json:"workflow_id"`
			WorkflowURL string `json:"workflow_url"`
			Channel     string `json:"channel"`
			Status      string `json:"status"`
			Turns       int    `json:"turns"`
		} `json:"conversations"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &convs)
	require.Len(t, convs.Conversations, 1)
	cv := convs.Conversations[0]
	require.Equal(t, "slack", cv.Channel)
	require.Equal(t, 2, cv.Turns)
	require.Contains(t, cv.WorkflowURL, "/namespaces/default/workflows/")
	require.Equal(t, "active", cv.Status)
	// The reply is recorded in the transaction right after it is posted, so
	// it may reach the database a moment after Slack.
	var recorded []message
	require.Eventually(t, func() bool {
		recorded = messages(t, p, tn, cv.ID)
		return len(recorded) == 4
	}, 10*time.Second, 50*time.Millisecond, "four messages recorded")
	require.Equal(t, "user", recorded[0].Role)
	require.Equal(t, "assistant", recorded[1].Role)
	require.Equal(t, "openai", recorded[1].Provider)
	require.Equal(t, "gpt-4o-mini", recorded[1].Model)

	// An edit to the agent applies from the next turn of the running
	// conversation: the workflow loads the agent as it is now.
	p.MustDo(http.MethodPatch, "/api/v1/tenants/"+tn.ID+"/agents/"+tn.AgentID, p.AdminToken,
		map[string]string{"persona": "Speaks like a Victorian butler."}, http.StatusOK, nil)
	body, _ = tn.Mention("C0GENERAL", "U0ALICE", "thanks!", platform.NewTS(), ts)
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs = p.Slack.WaitForMessages(t, "C0GENERAL", 3, replyTimeout)
	require.Equal(t, "generic answer", msgs[2].Text, "no longer the pirate")
	reqs = p.LLM.Requests()
	require.Len(t, reqs, 3)
	require.Contains(t, reqs[2].System, "Persona: Speaks like a Victorian butler.")
	require.NotContains(t, reqs[2].System, "pirate")
}
