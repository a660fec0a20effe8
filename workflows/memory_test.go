package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/activities"
)

func (f *fakeActs) Remember(_ context.Context, in activities.RememberInput) (activities.RememberOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remembered = append(f.remembered, in)
	if f.rememberErr != nil {
		return activities.RememberOutput{}, f.rememberErr
	}
	return activities.RememberOutput{Stored: 2, Embedded: 2}, nil
}

// Each delivered reply is followed by Remember with the turn's user message
// and the reply, for the message's author; the window carries turn numbers
// and Respond is told whose memory to recall.
func TestRepliesAreRemembered(t *testing.T) {
	env, f := newEnv(t)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, msg("e1", "one"))
		env.SignalWorkflow(SignalMessage, msg("e2", "two"))
	}, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())

	require.Len(t, f.remembered, 2)
	require.Equal(t, activities.RememberInput{TenantID: input().TenantID, AgentID: input().AgentID,
		ConversationID: "11111111-1111-1111-1111-111111111111", WorkflowID: f.remembered[0].WorkflowID,
		EndUserRef: "U1", Turn: 1, User: "one", Assistant: "re: one"}, f.remembered[0])
	require.Equal(t, 2, f.remembered[1].Turn)
	require.Equal(t, "U1", f.responds[1].EndUserRef)
	h := f.responds[1].History
	require.Equal(t, []int{1, 1, 2}, []int{h[0].Turn, h[1].Turn, h[2].Turn})
}

// Remember failing for good does not fail the turn or the conversation.
func TestRememberFailureDoesNotFailTheTurn(t *testing.T) {
	env, f := newEnv(t)
	f.rememberErr = errors.New("postgres down")
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "one")) }, time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e2", "two")) }, 2*time.Minute)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"reply: re: one", "reply: re: two"}, f.texts())
	require.Len(t, f.remembered, 8, "4 attempts per turn, then given up")
}

// The window kept in state is capped by tokens: oldest first, the newest
// message always kept, never starting with tool traffic.
func TestStateCapTokens(t *testing.T) {
	long := activities.Message{Role: "user", Content: strings.Repeat("word ", 100)}
	short := activities.Message{Role: "assistant", Content: "ok"}
	s := &State{History: []activities.Message{long, short, long, short, long, short}}
	per := windowTokens(long) + windowTokens(short)
	s.capTokens(2 * per)
	require.Len(t, s.History, 4)
	s.capTokens(1)
	require.Len(t, s.History, 1, "the newest message stays")

	call := activities.Message{Role: "assistant", ToolCalls: []activities.ToolCall{{ID: "c1", Name: "t"}}}
	res := activities.Message{Role: "tool", ToolCallID: "c1", Content: "r"}
	s = &State{History: []activities.Message{long, call, res, short}}
	s.capTokens(windowTokens(short) + windowTokens(res) + windowTokens(call) + 1)
	require.Equal(t, []activities.Message{short}, s.History, "the window does not start with a tool call or result")
}
