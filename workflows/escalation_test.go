package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
)

// fakeEsc stands in for the escalation activities: it starts an escalation
// when enabled, and records every call.
type fakeEsc struct {
	mu       sync.Mutex
	enabled  bool
	sla      [2]time.Duration // first response, hand back
	starts   []activities.StartEscalationInput
	notified int
	relays   []activities.RelayInput
	staff    []activities.StaffActionInput
	pages    []activities.PageInput
	ends     []activities.EndEscalationInput
}

func (e *fakeEsc) StartEscalation(_ context.Context, in activities.StartEscalationInput) (activities.StartEscalationOutput, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts = append(e.starts, in)
	if !e.enabled {
		return activities.StartEscalationOutput{}, nil
	}
	first, back := e.sla[0], e.sla[1]
	if first == 0 {
		first, back = 15*time.Minute, 2*time.Hour
	}
	return activities.StartEscalationOutput{Started: true, EscalationID: "esc-" + string(rune('0'+in.Seq)),
		HandoffMessage: "A person will take over.", FirstResponse: first, HandBack: back, Cooldown: 10 * time.Minute}, nil
}

func (e *fakeEsc) NotifyStaff(_ context.Context, in activities.NotifyStaffInput) (activities.NotifyStaffOutput, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.notified++
	return activities.NotifyStaffOutput{Posted: true}, nil
}

func (e *fakeEsc) RelayToStaff(_ context.Context, in activities.RelayInput) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.relays = append(e.relays, in)
	return nil
}

func (e *fakeEsc) RecordStaffAction(_ context.Context, in activities.StaffActionInput) (activities.StaffActionOutput, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.staff = append(e.staff, in)
	return activities.StaffActionOutput{Author: "Jane"}, nil
}

func (e *fakeEsc) PageStaff(_ context.Context, in activities.PageInput) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pages = append(e.pages, in)
	return nil
}

func (e *fakeEsc) EndEscalation(_ context.Context, in activities.EndEscalationInput) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ends = append(e.ends, in)
	return nil
}

func registerEsc(env *testsuite.TestWorkflowEnvironment, e *fakeEsc) {
	env.RegisterActivityWithOptions(e.StartEscalation, activityName("StartEscalation"))
	env.RegisterActivityWithOptions(e.NotifyStaff, activityName("NotifyStaff"))
	env.RegisterActivityWithOptions(e.RelayToStaff, activityName("RelayToStaff"))
	env.RegisterActivityWithOptions(e.RecordStaffAction, activityName("RecordStaffAction"))
	env.RegisterActivityWithOptions(e.PageStaff, activityName("PageStaff"))
	env.RegisterActivityWithOptions(e.EndEscalation, activityName("EndEscalation"))
}

// escEnv is newEnv whose model hands off on "human" and otherwise echoes.
func escEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *fakeActs, *fakeEsc) {
	env, f := newEnv(t)
	e := &fakeEsc{enabled: true}
	registerEsc(env, e)
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.RespondInput) (activities.RespondOutput, error) {
		f.mu.Lock()
		f.responds = append(f.responds, in)
		f.mu.Unlock()
		if in.User != nil && in.Escalation != activities.EscalationOff && strings.Contains(in.User.Text, "human") {
			return activities.RespondOutput{AgentStatus: activities.AgentActive,
				Handoff: &activities.Handoff{Trigger: store.TriggerUserRequest, Reason: "asked for a person"}}, nil
		}
		last := in.History[len(in.History)-1]
		return activities.RespondOutput{AgentStatus: activities.AgentActive, Text: "re: " + last.Content}, nil
	}, activityName("Respond"))
	return env, f, e
}

// staffMsg is a staff action's signal, as the inbox sends it.
func staffMsg(id, escID, kind, text string) escalation.Signal {
	return escalation.Signal{EventID: id, Staff: &escalation.StaffAction{EventID: id, EscalationID: escID, Kind: kind,
		Text: text, Source: escalation.SourcePortal}}
}

// A staff action's signal decodes as the Inbound the workflow reads.
func TestStaffSignalIsAnInbound(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sig := escalation.Signal{EventID: "portal:1", ReceivedAt: at, Staff: &escalation.StaffAction{EventID: "portal:1",
		EscalationID: "e", Kind: escalation.ActionReply, Text: "hi", Author: "Jane", Source: escalation.SourcePortal, ReceivedAt: at}}
	raw, err := json.Marshal(sig)
	require.NoError(t, err)
	var in Inbound
	require.NoError(t, json.Unmarshal(raw, &in))
	require.Equal(t, Inbound{EventID: "portal:1", ReceivedAt: at, Staff: sig.Staff}, in)
}

// The whole round trip: a trigger hands off (the user is told, staff are
// notified), the user's messages go to people and not to the model, a staff
// reply reaches the user, and resolve hands back: the agent speaks first,
// with the human part in its window, and the cooldown applies next.
func TestEscalationRoundTrip(t *testing.T) {
	env, f, e := escEnv(t)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "let me talk to a human")) }, time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e2", "hello? human?")) }, 2*time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, staffMsg("s1", "esc-1", escalation.ActionReply, "Hi, Jane here. Refunded."))
		env.SignalWorkflow(SignalMessage, staffMsg("s1", "esc-1", escalation.ActionReply, "Hi, Jane here. Refunded.")) // redelivered
	}, time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e3", "thanks")) }, 2*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, staffMsg("s2", "esc-1", escalation.ActionResolve, "")) }, 3*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e4", "one more: human please")) }, 4*time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, staffMsg("s3", "esc-1", escalation.ActionReply, "late, ignored"))
	}, 5*time.Minute)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, []string{
		"handoff: A person will take over.",
		"staff: Hi, Jane here. Refunded.",
		"reply: re: " + resumeNote,
		"handoff: A person will take over.", // in the cooldown, the user asked again
		"notice: " + handBackNotice,         // nobody answered that one
	}, f.texts())
	staffDelivery := f.delivered[1]
	require.Equal(t, "Jane", staffDelivery.Author)

	require.Len(t, e.starts, 2)
	require.Equal(t, store.TriggerUserRequest, e.starts[0].Trigger)
	require.Equal(t, 1, e.starts[0].Seq)
	require.Equal(t, 2, e.starts[1].Seq, "each escalation has its own record")
	require.Equal(t, 2, e.notified)
	require.Len(t, e.relays, 2, "the user's messages while people own it")
	require.Equal(t, "hello? human?", e.relays[0].User.Text, "the keyword in the human part triggers nothing")
	require.Equal(t, "thanks", e.relays[1].User.Text)
	require.Len(t, e.staff, 1, "a repeated delivery of a staff action is dropped")
	require.Len(t, e.ends, 2)
	require.Equal(t, store.EscalationResolved, e.ends[0].State)
	require.Equal(t, "esc-1", e.ends[0].EscalationID)
	require.Equal(t, store.EscalationHandedBack, e.ends[1].State)
	require.Len(t, e.pages, 1, "only the second escalation was paged: a person answered the first in time")
	require.Equal(t, "esc-2", e.pages[0].EscalationID)

	// The model: the first message (handed off), the follow-up (nothing but
	// the note, triggers off), the cooldown's message. None for the human part.
	require.Len(t, f.responds, 3)
	follow := f.responds[1]
	require.Equal(t, activities.EscalationOff, follow.Escalation)
	require.Nil(t, follow.User)
	var texts []string
	for _, m := range follow.History {
		texts = append(texts, m.Role+": "+m.Content)
	}
	require.Contains(t, texts, "user: hello? human?", "the human part is in the agent's context")
	require.Contains(t, texts, "assistant: "+staffNote("Jane", "Hi, Jane here. Refunded."))
	require.Equal(t, activities.EscalationCooldown, f.responds[2].Escalation, "after a hand-back, the cooldown")
	require.Equal(t, []string{"closed"}, f.statuses, "closed once idle, not while people owned it")
}

// Nobody answers: staff are paged again at the first-response time, and at
// the hand-back time the user is told and the agent answers again. Durable
// timers (the test environment skips time).
func TestSLAPagesThenHandsBack(t *testing.T) {
	env, f, e := escEnv(t)
	e.sla = [2]time.Duration{10 * time.Minute, 30 * time.Minute}
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "human!")) }, time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e2", "anyone?")) }, 20*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e3", "ok then")) }, 40*time.Minute)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())

	require.Len(t, e.pages, 1)
	require.InDelta(t, (10 * time.Minute).Seconds(), e.pages[0].Waited.Seconds(), 1)
	require.Len(t, e.ends, 1)
	require.Equal(t, store.EscalationHandedBack, e.ends[0].State)
	require.InDelta(t, (30 * time.Minute).Seconds(), e.ends[0].Waited.Seconds(), 1)
	require.Equal(t, []string{"handoff: A person will take over.", "notice: " + handBackNotice, "reply: re: ok then"}, f.texts())
	require.Len(t, e.relays, 1, "the message while waiting went to people")
}

// A staff reply before the first-response time stops the SLA timers.
func TestStaffReplyStopsTheSLA(t *testing.T) {
	env, _, e := escEnv(t)
	e.sla = [2]time.Duration{10 * time.Minute, 30 * time.Minute}
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "human")) }, time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, staffMsg("s1", "esc-1", escalation.ActionClaim, ""))
	}, 5*time.Minute)
	// Days later (far past the idle timeout of an hour), still owned by people.
	env.RegisterDelayedCallback(func() {
		require.False(t, env.IsWorkflowCompleted(), "a conversation people own does not close when idle")
		env.SignalWorkflow(SignalMessage, staffMsg("s2", "esc-1", escalation.ActionResolve, ""))
	}, 72*time.Hour)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())
	require.Empty(t, e.pages)
	require.Len(t, e.ends, 1)
	require.Equal(t, store.EscalationResolved, e.ends[0].State)
	require.Len(t, e.staff, 1)
}

// The model's escalate_to_human call hands off with its reason; a call with
// invalid arguments goes back to the model like any tool error.
func TestModelToolCallHandsOff(t *testing.T) {
	env, f, e := escEnv(t)
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.RespondInput) (activities.RespondOutput, error) {
		f.mu.Lock()
		f.responds = append(f.responds, in)
		f.mu.Unlock()
		return activities.RespondOutput{AgentStatus: activities.AgentActive, Tools: []string{"escalate_to_human"},
			ToolCalls: []activities.ToolCall{{ID: "c1", Name: "escalate_to_human", Arguments: json.RawMessage(`{"reason":"refund over the limit"}`)}}}, nil
	}, activityName("Respond"))
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.ToolInput) (activities.ToolOutput, error) {
		return activities.ToolOutput{Content: "handing over", Handoff: "refund over the limit"}, nil
	}, activityName("RunTool"))
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "refund me 5000 EUR")) }, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, e.starts, 1)
	require.Equal(t, store.TriggerTool, e.starts[0].Trigger)
	require.Equal(t, "The assistant asked for a person: refund over the limit", e.starts[0].Reason)
	require.Equal(t, []string{"handoff: A person will take over.", "notice: " + handBackNotice}, f.texts())
	require.Equal(t, activities.EscalationOn, f.responds[0].Escalation)
}

// Turns the agent cannot resolve, max_failed_turns of them in a row, hand
// off after the last reply; one resolved turn resets the count.
func TestFailedTurnsHandOff(t *testing.T) {
	env, f, e := escEnv(t)
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.RespondInput) (activities.RespondOutput, error) {
		f.mu.Lock()
		f.responds = append(f.responds, in)
		f.mu.Unlock()
		text := "I don't know."
		if in.History[len(in.History)-1].Content == "easy" {
			text = "Easy: 42."
		}
		return activities.RespondOutput{AgentStatus: activities.AgentActive, Text: text, MaxFailedTurns: 2}, nil
	}, activityName("Respond"))
	for i, text := range []string{"hard", "easy", "hard", "harder"} {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg(string(rune('a'+i)), text)) }, time.Duration(i+1)*time.Second)
	}
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, e.starts, 1)
	require.Equal(t, store.TriggerFailedTurns, e.starts[0].Trigger)
	require.Equal(t, 4, e.starts[0].Turn)
	texts := f.texts()
	require.Equal(t, []string{"reply: I don't know.", "reply: Easy: 42.", "reply: I don't know.", "reply: I don't know.",
		"handoff: A person will take over.", "notice: " + handBackNotice}, texts)
}

// A model chain that stays unavailable hands off instead of promising an
// answer later, when the agent's rules say so; when they do not, the user
// hears the usual notice.
func TestUnavailableModelHandsOff(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		env, f, e := escEnv(t)
		e.enabled = enabled
		f.respondErr = func(activities.RespondInput) error { return errors.New("every model unavailable") }
		env.RegisterActivityWithOptions(f.Respond, activityName("Respond"))
		in := input()
		in.Settings.UnavailableNotice = 10 * time.Second
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "hello")) }, time.Second)
		if !enabled {
			env.RegisterDelayedCallback(func() { f.respondErr = nil }, time.Minute)
		}
		env.ExecuteWorkflow(ConversationWorkflow, in)
		require.NoError(t, env.GetWorkflowError())
		require.Len(t, e.starts, 1)
		require.Equal(t, store.TriggerError, e.starts[0].Trigger)
		texts := f.texts()
		if enabled {
			require.Equal(t, []string{"handoff: A person will take over.", "notice: " + handBackNotice}, texts)
		} else {
			require.True(t, strings.HasPrefix(texts[0], "unavailable: "), "%v", texts)
		}
	}
}

// While people own the conversation, continue-as-new carries the
// escalation, and the new run re-arms the SLA timers from it.
func TestContinueAsNewKeepsTheEscalation(t *testing.T) {
	env, _, e := escEnv(t)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "human")) }, time.Second)
	env.RegisterDelayedCallback(func() { env.SetContinueAsNewSuggested(true) }, 2*time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e2", "still there?")) }, 3*time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "got %v", env.GetWorkflowError())
	var next ConversationInput
	require.NoError(t, converterFor().FromPayloads(can.Input, &next))
	require.NotNil(t, next.State.Escalation)
	require.Equal(t, ModeWaiting, next.State.Escalation.Mode)
	require.Equal(t, "esc-1", next.State.Escalation.ID)
	require.Len(t, e.relays, 1)

	// The next run: the page is due 15 minutes after the start.
	env2, _, e2 := escEnv(t)
	env2.ExecuteWorkflow(ConversationWorkflow, next)
	require.NoError(t, env2.GetWorkflowError())
	require.Len(t, e2.pages, 1, "the new run pages staff from the carried deadline")
	require.Len(t, e2.ends, 1, "and hands back at the carried hand-back time")
}

// Files a user sends while people own the conversation are fetched and
// stored as for the model, and relayed with their markers (staff see the
// image in the portal, linked from the thread); a file that was not read is
// told to the user; no model is asked — not even one that cannot see, whose
// notice would mean nothing to staff.
func TestFilesWhilePeopleOwnTheConversation(t *testing.T) {
	env, f, e := escEnv(t)
	f.fetchOut = fetchAs(false) // the agent's models cannot see: irrelevant to people
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "human please")) }, time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, withMedia("e2", "the damage", photo))
		env.SignalWorkflow(SignalMessage, withMedia("e3", "", pdf))
	}, time.Minute)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())

	require.Len(t, f.fetched, 2)
	for _, in := range f.fetched {
		require.True(t, in.ForStaff, "fetched for people, not for a model")
	}
	require.Equal(t, 2, f.fetched[0].Turn)
	require.Len(t, e.relays, 2)
	require.Equal(t, "the damage\n[image: photo.png]", e.relays[0].User.Text)
	require.True(t, e.relays[0].Files, "an image was stored: the thread links to the portal")
	require.Equal(t, "[file invoice.pdf not read]", e.relays[1].User.Text)
	require.False(t, e.relays[1].Files)
	require.Equal(t, []string{"handoff: A person will take over.", "media: I couldn't read invoice.pdf.", "notice: " + handBackNotice},
		f.texts(), "the user hears about the file that was not read, and nothing about vision (then nobody answered)")
	require.Len(t, f.responds, 1, "only the message that handed off asked the model")
}
