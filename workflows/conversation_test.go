package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
)

// fakeActs stands in for the activities: it answers like an echoing model
// and records every delivery, in order.
type fakeActs struct {
	mu         sync.Mutex
	delivered  []activities.DeliverInput
	responds   []activities.RespondInput
	statuses   []string
	respondErr func(in activities.RespondInput) error
	// memory (memory_test.go)
	remembered  []activities.RememberInput
	rememberErr error
	summarized  []activities.SummarizeInput
	// media (media_test.go)
	fetched  []activities.FetchMediaInput
	fetchErr error
	fetchOut func(in activities.FetchMediaInput) activities.FetchMediaOutput
	// held decides which deliveries reached the user only as the template
	// (whatsapp_test.go).
	held func(in activities.DeliverInput) string
}

func (f *fakeActs) Open(_ context.Context, in activities.OpenInput) (activities.OpenOutput, error) {
	return activities.OpenOutput{ConversationID: "11111111-1111-1111-1111-111111111111"}, nil
}

func (f *fakeActs) Respond(_ context.Context, in activities.RespondInput) (activities.RespondOutput, error) {
	f.mu.Lock()
	f.responds = append(f.responds, in)
	fail := f.respondErr
	f.mu.Unlock()
	if fail != nil {
		if err := fail(in); err != nil {
			return activities.RespondOutput{}, err
		}
	}
	last := in.History[len(in.History)-1]
	return activities.RespondOutput{AgentStatus: activities.AgentActive, Text: "re: " + last.Content, Provider: "openai", Model: "m"}, nil
}

func (f *fakeActs) RunTool(_ context.Context, in activities.ToolInput) (activities.ToolOutput, error) {
	return activities.ToolOutput{Content: "tool result"}, nil
}

func (f *fakeActs) Deliver(_ context.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delivered = append(f.delivered, in)
	out := activities.DeliverOutput{ExternalIDs: []string{"ts"}}
	if f.held != nil {
		out.Held = f.held(in)
	}
	return out, nil
}

func (f *fakeActs) SetStatus(_ context.Context, in activities.StatusInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, in.Status)
	return nil
}

func (f *fakeActs) texts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.delivered {
		if d.Text != "" {
			out = append(out, d.Kind+": "+d.Text)
		}
	}
	return out
}

func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *fakeActs) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Conversation, workflow.RegisterOptions{Name: ConversationWorkflow})
	f := &fakeActs{}
	// The workflow names methods of *activities.Conversation; register the
	// fake's methods under the same names.
	env.RegisterActivityWithOptions(f.Open, activityName("Open"))
	env.RegisterActivityWithOptions(f.Respond, activityName("Respond"))
	env.RegisterActivityWithOptions(f.RunTool, activityName("RunTool"))
	env.RegisterActivityWithOptions(f.Deliver, activityName("Deliver"))
	env.RegisterActivityWithOptions(f.SetStatus, activityName("SetStatus"))
	env.RegisterActivityWithOptions(f.Remember, activityName("Remember"))
	env.RegisterActivityWithOptions(f.Summarize, activityName("Summarize"))
	env.RegisterActivityWithOptions(f.FetchMedia, activityName("FetchMedia"))
	registerEsc(env, &fakeEsc{}) // escalation off: StartEscalation starts nothing
	return env, f
}

func input() ConversationInput {
	return ConversationInput{TenantID: "22222222-2222-2222-2222-222222222222", AgentID: "33333333-3333-3333-3333-333333333333",
		Channel: "slack", ExternalKey: "T1:C1:1.0", Address: activities.Address{TeamID: "T1", ChannelID: "C1", ThreadTS: "1.0"},
		Settings: Settings{IdleTimeout: time.Hour}}
}

func msg(id, text string) Inbound { return Inbound{EventID: id, UserID: "U1", Text: text} }

// Messages are answered one at a time, in arrival order, including those
// that arrive while a turn is running; repeated event IDs are dropped.
func TestMessagesAreAnsweredInOrderOnce(t *testing.T) {
	env, f := newEnv(t)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, msg("e1", "one"))
		env.SignalWorkflow(SignalMessage, msg("e2", "two"))
		env.SignalWorkflow(SignalMessage, msg("e1", "one again (a Slack retry)"))
	}, time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e3", "three")) }, 2*time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"reply: re: one", "reply: re: two", "reply: re: three"}, f.texts())
	require.Equal(t, []string{"closed"}, f.statuses, "idle conversation is closed")
	// The model saw the growing conversation.
	last := f.responds[2].History
	require.Len(t, last, 5)
	require.Equal(t, "user", last[4].Role)
	require.Equal(t, "three", last[4].Content)
	require.Equal(t, 3, f.responds[2].Turn)
}

// Over the limit: the message is recorded, and one notice is posted per
// retry window, not one per message.
func TestOverLimitNoticesOncePerWindow(t *testing.T) {
	env, f := newEnv(t)
	over := &OverLimit{Scope: "channel", PerMinute: 5, RetryAfter: 30 * time.Second}
	env.RegisterDelayedCallback(func() {
		for _, id := range []string{"e1", "e2", "e3"} {
			m := msg(id, "spam "+id)
			m.OverLimit = over
			env.SignalWorkflow(SignalMessage, m)
		}
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		m := msg("e4", "later")
		m.OverLimit = over
		env.SignalWorkflow(SignalMessage, m)
	}, time.Minute)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())
	texts := f.texts()
	require.Len(t, texts, 2, "one notice per 30s window: %v", texts)
	require.Contains(t, texts[0], "limit for this channel (5 per minute)")
	require.Contains(t, texts[0], "try again in 30 seconds")
	require.Len(t, f.delivered, 4, "every message is recorded")
	for _, d := range f.delivered {
		require.NotNil(t, d.User)
	}
	require.Empty(t, f.responds, "no model call over the limit")
}

// A request no model can serve is explained to the user, not retried.
func TestNotConfiguredIsExplained(t *testing.T) {
	env, f := newEnv(t)
	f.respondErr = func(activities.RespondInput) error {
		return temporal.NewNonRetryableApplicationError("no provider: set KONSTRUCT_OPENAI_API_KEY", activities.ErrLLMNotConfigured, nil)
	}
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "hi")) }, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())
	texts := f.texts()
	require.Len(t, texts, 1)
	require.True(t, strings.HasPrefix(texts[0], "notice: I can't answer yet"), texts[0])
	require.Contains(t, texts[0], "KONSTRUCT_OPENAI_API_KEY")
	require.Len(t, f.responds, 1)
}

// When no model answers for the notice period the user is told, and the
// turn completes once a model is back.
func TestUnavailableThenRecovered(t *testing.T) {
	env, f := newEnv(t)
	var calls int
	f.respondErr = func(activities.RespondInput) error {
		calls++
		if calls <= 8 {
			return errors.New("every model unavailable")
		}
		return nil
	}
	in := input()
	in.Settings.UnavailableNotice = 10 * time.Second
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "hello")) }, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	texts := f.texts()
	require.Len(t, texts, 2, "%v", texts)
	require.True(t, strings.HasPrefix(texts[0], "unavailable: I'm having trouble reaching my language model"), texts[0])
	require.Equal(t, "reply: re: hello", texts[1])
}

// When Temporal suggests it, the workflow continues as new carrying its
// state, so history stays bounded however long the conversation lasts.
func TestContinueAsNewCarriesState(t *testing.T) {
	env, f := newEnv(t)
	env.SetContinueAsNewSuggested(true)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, msg("e1", "one"))
		env.SignalWorkflow(SignalMessage, msg("e2", "two"))
	}, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "got %v", err)
	require.Equal(t, []string{"reply: re: one"}, f.texts())

	var next ConversationInput
	require.NoError(t, converterFor().FromPayloads(can.Input, &next))
	require.NotNil(t, next.State)
	require.Equal(t, 1, next.State.Turn)
	require.Equal(t, "11111111-1111-1111-1111-111111111111", next.State.ConversationID)
	require.Len(t, next.State.History, 2)
	require.Len(t, next.State.Pending, 1, "the message received during the turn is carried over")
	require.Equal(t, "two", next.State.Pending[0].Text)
	require.Equal(t, []string{"e1", "e2"}, next.State.Seen)
}

func TestRememberKeepsWindowAndToolPairs(t *testing.T) {
	s := &State{}
	for i := 0; i < 5; i++ {
		s.remember(4, activities.Message{Role: "user", Content: "u"}, activities.Message{Role: "assistant", Content: "a"})
	}
	require.Len(t, s.History, 4)
	s.History = []activities.Message{{Role: "assistant", ToolCalls: []activities.ToolCall{{ID: "1"}}}, {Role: "tool", ToolCallID: "1"},
		{Role: "assistant", Content: "x"}}
	s.remember(3, activities.Message{Role: "user", Content: "y"})
	require.Equal(t, []activities.Message{{Role: "assistant", Content: "x"}, {Role: "user", Content: "y"}}, s.History,
		"a window never starts with a tool result cut off from its call")
}

func TestEnqueueBoundsSeen(t *testing.T) {
	s := &State{}
	for i := 0; i < seenCap+10; i++ {
		require.True(t, s.enqueue(Inbound{EventID: string(rune('a'+i%26)) + strings.Repeat("x", i)}))
	}
	require.Len(t, s.Seen, seenCap)
	require.False(t, s.enqueue(Inbound{EventID: s.Seen[0]}))
}

func activityName(name string) activity.RegisterOptions { return activity.RegisterOptions{Name: name} }

func converterFor() converter.DataConverter { return converter.GetDefaultDataConverter() }

// The idle timeout counts from the last turn, and a busy conversation keeps
// about one timer however many turns it has (not one left behind per turn).
func TestIdleTimeoutCountsFromLastTurnWithOneTimer(t *testing.T) {
	env, f := newEnv(t)
	start := env.Now()
	timers := 0
	env.SetOnTimerScheduledListener(func(string, time.Duration) { timers++ })
	for i, at := range []time.Duration{time.Second, 50 * time.Minute, 100 * time.Minute} {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg(string(rune('a'+i)), "m")) }, at)
	}
	for i := range 20 {
		at := 100*time.Minute + time.Duration(i+1)*time.Second
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("burst"+string(rune('a'+i)), "m")) }, at)
	}
	env.ExecuteWorkflow(ConversationWorkflow, input())

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, f.texts(), 23, "every message answered in one run")
	require.Equal(t, []string{"closed"}, f.statuses)
	closedAfter := env.Now().Sub(start)
	require.GreaterOrEqual(t, closedAfter, 100*time.Minute+20*time.Second+time.Hour, "closed an hour after the last turn")
	require.Less(t, closedAfter, 100*time.Minute+21*time.Second+time.Hour)
	require.LessOrEqual(t, timers, 4, "timers started for 23 turns")
}
