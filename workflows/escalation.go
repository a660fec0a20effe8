package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
)

// changeEscalation names the human-escalation change (workflow.GetVersion):
// runs that recorded no marker answer every message with the model, as
// before; from version 1 the escalation state machine below applies.
const changeEscalation = "escalation"

// Modes of a conversation: the single-writer state machine
// ai → waiting_for_human → human → ai. Only the workflow changes it; while
// it is not ModeAI, no model is asked about the user's messages.
const (
	ModeAI      = "ai"
	ModeWaiting = store.EscalationWaiting // handed over; no person has answered yet
	ModeHuman   = store.EscalationHuman   // a person answered (or took it)
)

// EscalationState is the conversation's escalation, carried across
// continue-as-new with the rest of State.
type EscalationState struct {
	Mode       string    `json:"mode"`
	ID         string    `json:"id,omitempty"` // the current (or last) escalation's record
	Seq        int       `json:"seq"`          // escalations of this conversation so far: the records' keys
	StartedAt  time.Time `json:"started_at"`
	PageAt     time.Time `json:"page_at"`      // no staff reply by then: page staff again
	HandBackAt time.Time `json:"hand_back_at"` // still none: tell the user, back to the agent
	Paged      bool      `json:"paged,omitempty"`
	// Cooldown is the agent's, from the start of the escalation;
	// CooldownUntil is set when it ends: until then only the user asking
	// for a person again hands the conversation over.
	Cooldown      time.Duration `json:"cooldown,omitempty"`
	CooldownUntil time.Time     `json:"cooldown_until"`
	// FailedTurns counts the turns in a row the agent did not resolve.
	FailedTurns int `json:"failed_turns,omitempty"`
}

// withPeople reports whether people own the conversation.
func (s *State) withPeople() bool {
	return s.Escalation != nil && (s.Escalation.Mode == ModeWaiting || s.Escalation.Mode == ModeHuman)
}

func (c *conversation) esc() *EscalationState {
	if c.s.Escalation == nil {
		c.s.Escalation = &EscalationState{Mode: ModeAI}
	}
	return c.s.Escalation
}

// escalationOn reports whether this run takes the escalation change. Runs
// on the loop from before the idle-timer change never do.
func (c *conversation) escalationOn(ctx workflow.Context) bool {
	if c.legacyLoop {
		return false
	}
	if !c.escChecked {
		c.escChecked = true
		c.escVersion = workflow.GetVersion(ctx, changeEscalation, workflow.DefaultVersion, 1)
	}
	return c.escVersion >= 1
}

// respondMode is which escalation rules a turn's Respond applies: all of
// them, or during the cooldown after people handed the conversation back,
// only the user asking for a person again.
func (c *conversation) respondMode(ctx workflow.Context) string {
	if !c.escalationOn(ctx) {
		return ""
	}
	if st := c.s.Escalation; st != nil && workflow.Now(ctx).Before(st.CooldownUntil) {
		return activities.EscalationCooldown
	}
	return activities.EscalationOn
}

// errHandedOff ends a turn whose message went to people instead of the model.
var errHandedOff = errors.New("handed off to people")

// escalate hands the conversation to people: the record (if the agent's
// rules allow the trigger), the user told, the context pack posted for
// staff, the SLA timers started. started is false when the rules refuse.
func (c *conversation) escalate(ctx workflow.Context, m Inbound, trigger, reason string) (bool, error) {
	st := c.esc()
	var out activities.StartEscalationOutput
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(30*time.Second)), acts.StartEscalation,
		activities.StartEscalationInput{TenantID: c.in.TenantID, AgentID: c.in.AgentID, ConversationID: c.s.ConversationID,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Channel: c.in.Channel, UserRef: c.userRef(m),
			Seq: st.Seq + 1, Turn: c.s.Turn, Trigger: trigger, Reason: reason}).Get(ctx, &out)
	if err != nil || !out.Started {
		return false, err
	}
	now := workflow.Now(ctx)
	*st = EscalationState{Mode: ModeWaiting, ID: out.EscalationID, Seq: st.Seq + 1, StartedAt: now,
		PageAt: now.Add(out.FirstResponse), HandBackAt: now.Add(out.HandBack), Cooldown: out.Cooldown}
	workflow.GetLogger(ctx).Info("handed to people", "escalation_id", st.ID, "trigger", trigger)
	if err := c.setStatus(ctx, store.ConversationEscalated); err != nil {
		return true, err
	}
	if err := c.deliver(ctx, m, activities.KindHandoff, out.HandoffMessage, nil, "", ""); err != nil {
		return true, err
	}
	c.rememberWindow(ctx, activities.Message{Role: "assistant", Content: out.HandoffMessage, Turn: c.s.Turn})

	// The context pack and the Slack handoff. Posting may fail for reasons
	// only an operator can fix (recorded on the escalation by the activity),
	// or Slack may be down for longer than these retries: the escalation
	// then waits in the portal's queue, and the handoff is never blocked.
	opts := localOptions(2 * time.Minute)
	opts.RetryPolicy.MaximumAttempts = 8
	var notified activities.NotifyStaffOutput
	if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, opts), acts.NotifyStaff,
		activities.NotifyStaffInput{TenantID: c.in.TenantID, AgentID: c.in.AgentID, ConversationID: c.s.ConversationID,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, EscalationID: st.ID, Address: c.in.Address}).Get(ctx, &notified); err != nil {
		workflow.GetLogger(ctx).Warn("staff not notified in Slack; the escalation waits in the portal", "error", err)
	}
	c.armSLA(ctx)
	return true, nil
}

func (c *conversation) userRef(m Inbound) string {
	if m.UserID != "" {
		return m.UserID
	}
	return c.in.UserRef
}

// setStatus records the conversation's status in state and in the
// ConversationStatus search attribute (the table is kept by the activities).
func (c *conversation) setStatus(ctx workflow.Context, status string) error {
	c.s.Status = status
	if err := workflow.UpsertTypedSearchAttributes(ctx, ConversationStatusKey.ValueSet(status)); err != nil {
		return fmt.Errorf("conversation: search attributes: %w", err)
	}
	return nil
}

// escalateOnFailure hands the conversation to people when the model chain
// fails the turn — it stays unavailable, refuses the request, or the
// tenant's budget stops it — if the agent's rules say so (not in a
// cooldown). handled is true when people took over.
func (c *conversation) escalateOnFailure(ctx workflow.Context, m Inbound, mode string, err error) (bool, error) {
	if mode != activities.EscalationOn {
		return false, nil
	}
	trigger, reason := store.TriggerError, "No language model of the agent's chain answered for "+c.in.Settings.UnavailableNotice.String()+"."
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case activities.ErrBudgetExceeded:
			trigger, reason = store.TriggerBudget, "The organisation's budget stops the assistant from answering: "+appErr.Message()
		case activities.ErrLLMRejected:
			reason = "The language model refused the request: " + appErr.Message()
		case activities.ErrLLMNotConfigured:
			reason = "No language model is configured for the agent: " + appErr.Message()
		}
	}
	return c.escalate(ctx, m, trigger, reason)
}

// afterReply counts the turns the agent did not resolve — its reply says it
// could not help (escalation.Unresolved), or the user repeated their
// previous message (escalation.Repeated) — and hands off after the agent's
// max_failed_turns of them in a row. The cooldown after a hand-back counts
// nothing.
func (c *conversation) afterReply(ctx workflow.Context, m Inbound, mode, reply string, maxFailed int) error {
	st := c.esc()
	if mode != activities.EscalationOn {
		st.FailedTurns = 0
		return nil
	}
	if escalation.Unresolved(reply) || escalation.Repeated(c.previousUserText(), m.Text) {
		st.FailedTurns++
	} else {
		st.FailedTurns = 0
	}
	if maxFailed <= 0 || st.FailedTurns < maxFailed {
		return nil
	}
	_, err := c.escalate(ctx, m, store.TriggerFailedTurns,
		fmt.Sprintf("%d turns in a row without resolution (the assistant could not answer, or the user asked again).", st.FailedTurns))
	return err
}

// previousUserText is the user's message of the turn before this one, from the window.
func (c *conversation) previousUserText() string {
	for i := len(c.s.History) - 1; i >= 0; i-- {
		if m := c.s.History[i]; m.Role == "user" && m.Turn < c.s.Turn {
			return m.Content
		}
	}
	return ""
}

// toolHandoff reports whether a tool call the model made hands the
// conversation over (escalate_to_human with valid arguments), and its reason.
func toolHandoff(tc activities.ToolCall, res activities.ToolOutput) (string, bool) {
	if tc.Name != tools.EscalateToHumanTool || res.IsError || res.Handoff == "" {
		return "", false
	}
	return "The assistant asked for a person: " + res.Handoff, true
}

// changeRelayMedia names the change that fetches the files of a message
// the user sends while people own the conversation (workflow.GetVersion):
// before it, relay passed on the text alone, so an image reached staff as
// nothing. It is only asked for such a message, so histories without one
// replay as before.
const changeRelayMedia = "relay-media"

// relay takes a user's message while people own the conversation: it is
// recorded and relayed to them, and no model is asked. Its files are
// fetched and stored first, as for the model: staff get a marker for each
// ("[image: caption]", or why it was not read) and a link to the portal,
// which shows the images; the user is told about files that could not be
// read, as when the agent answers.
func (c *conversation) relay(ctx workflow.Context, m Inbound) error {
	var media turnMedia
	if len(m.Media) > 0 && workflow.GetVersion(ctx, changeRelayMedia, workflow.DefaultVersion, 1) >= 1 {
		media = c.fetchMedia(ctx, m, true)
		m.Text = withMarkers(m.Text, media.markers)
	}
	c.rememberWindow(ctx, activities.Message{Role: "user", Content: m.Text, Author: m.UserID, Turn: c.s.Turn})
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(time.Minute)), acts.RelayToStaff,
		activities.RelayInput{TenantID: c.in.TenantID, ConversationID: c.s.ConversationID,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, EscalationID: c.s.Escalation.ID, Turn: c.s.Turn,
			User: activities.UserMessage{Text: m.Text, Author: m.UserID, ExternalID: m.TS}, Files: len(media.ids) > 0}).Get(ctx, nil)
	if err != nil || media.notice == "" {
		return err
	}
	return c.deliver(ctx, m, activities.KindMedia, media.notice, nil, "", "")
}

// staffNote is how a staff reply sits in the agent's window: the agent
// reads the human part of the conversation when it takes over again.
func staffNote(author, text string) string {
	return "[" + author + ", a person from the support team, wrote to the user:] " + text
}

// staffAction applies what a staff member did. An action for an escalation
// that is over (resolved or handed back before it arrived) changes nothing.
func (c *conversation) staffAction(ctx workflow.Context, m Inbound) error {
	a := *m.Staff
	st := c.s.Escalation
	if !c.escalationOn(ctx) || !c.s.withPeople() || st.ID != a.EscalationID {
		workflow.GetLogger(ctx).Info("staff action for an escalation that is over; ignored", "escalation_id", a.EscalationID, "kind", a.Kind)
		return nil
	}
	switch a.Kind {
	case escalation.ActionReply, escalation.ActionClaim:
		if st.Mode == ModeWaiting {
			st.Mode = ModeHuman // a person answered: the SLA is met
			c.stopSLA()
		}
		var out activities.StaffActionOutput
		if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(time.Minute)), acts.RecordStaffAction,
			activities.StaffActionInput{TenantID: c.in.TenantID, ConversationID: c.s.ConversationID,
				WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Action: a}).Get(ctx, &out); err != nil {
			return err
		}
		if a.Kind == escalation.ActionClaim {
			return nil
		}
		c.s.Turn++
		if err := c.send(ctx, activities.DeliverInput{Kind: activities.KindStaff, Text: a.Text, Author: out.Author}); err != nil {
			return err
		}
		c.rememberWindow(ctx, activities.Message{Role: "assistant", Content: staffNote(out.Author, a.Text), Turn: c.s.Turn})
		return nil
	case escalation.ActionResolve:
		return c.handBack(ctx, store.EscalationResolved, &a)
	}
	workflow.GetLogger(ctx).Warn("unknown staff action; ignored", "kind", a.Kind)
	return nil
}

// handBackNotice is what the user hears when nobody answered in time.
const handBackNotice = "Sorry, nobody from the team was able to answer in time. I'm back and will help as best I can — " +
	"you can ask for a person again at any time."

// resumeNote asks the agent for its follow-up once people resolved the
// conversation: it speaks first, with the human part in its context.
const resumeNote = "[A note from the system, not written by the user: a person from the support team handled the " +
	"messages above and has now handed the conversation back to you. Write one short follow-up message to the user: " +
	"acknowledge that their request was taken care of, without repeating what the colleague said, and ask whether " +
	"there is anything else you can help with.]"

// handBack returns the conversation to the agent: resolved by staff (the
// agent follows up at once), or handed back when nobody answered within the
// hand-back time (the user is told). The cooldown starts.
func (c *conversation) handBack(ctx workflow.Context, state string, a *escalation.StaffAction) error {
	st := c.s.Escalation
	c.stopSLA()
	now := workflow.Now(ctx)
	in := activities.EndEscalationInput{TenantID: c.in.TenantID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		EscalationID: st.ID, State: state, Waited: now.Sub(st.StartedAt)}
	if a != nil {
		in.By, in.ByRef, in.Source = a.Author, a.AuthorRef, a.Source
	}
	st.Mode, st.CooldownUntil, st.FailedTurns = ModeAI, now.Add(st.Cooldown), 0
	if err := c.setStatus(ctx, store.ConversationActive); err != nil {
		return err
	}
	if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(time.Minute)), acts.EndEscalation, in).Get(ctx, nil); err != nil {
		return err
	}
	c.s.Turn++
	if state == store.EscalationHandedBack {
		if err := c.send(ctx, activities.DeliverInput{Kind: activities.KindNotice, Text: handBackNotice}); err != nil {
			return err
		}
		c.rememberWindow(ctx, activities.Message{Role: "assistant", Content: handBackNotice, Turn: c.s.Turn})
		return nil
	}
	return c.followUp(ctx)
}

// followUp is the agent's own turn after people resolved the conversation.
// It asks the model once, without escalation triggers or tools of its own
// choosing; a model that does not answer within UnavailableNotice leaves the
// user without a follow-up rather than with an apology.
func (c *conversation) followUp(ctx workflow.Context) error {
	window := append(slices.Clone(c.s.History), activities.Message{Role: "user", Content: resumeNote, Turn: c.s.Turn})
	opts := localOptions(c.in.Settings.LLMCallTimeout)
	opts.ScheduleToCloseTimeout = c.in.Settings.UnavailableNotice
	var out activities.RespondOutput
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, opts), acts.Respond,
		activities.RespondInput{TenantID: c.in.TenantID, AgentID: c.in.AgentID, ConversationID: c.s.ConversationID,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Channel: c.in.Channel, Turn: c.s.Turn,
			History: window, EndUserRef: c.in.UserRef, Escalation: activities.EscalationOff}).Get(ctx, &out)
	if err != nil || out.AgentStatus != activities.AgentActive || out.Text == "" {
		workflow.GetLogger(ctx).Warn("no follow-up after the hand-back", "error", err, "agent_status", out.AgentStatus)
		return nil
	}
	c.noteBudget(ctx, out)
	if err := c.send(ctx, activities.DeliverInput{Kind: activities.KindReply, Text: out.Text, Provider: out.Provider, Model: out.Model}); err != nil {
		return err
	}
	c.rememberWindow(ctx, activities.Message{Role: "assistant", Content: out.Text, Turn: c.s.Turn})
	return nil
}

// SLA events, raised by the durable timers of armSLA.
const (
	slaPage     = "page"
	slaHandBack = "hand_back"
)

type slaEvent struct {
	kind string
	id   string // the escalation the timer was started for
}

// armSLA starts the SLA timers of an escalation waiting for its first
// response: at PageAt staff are paged again, at HandBackAt the conversation
// goes back to the agent. They are durable timers in the workflow's history,
// so they fire after worker restarts and deploys; a run continued as new
// arms them again from the state (a time already past fires at once).
func (c *conversation) armSLA(ctx workflow.Context) {
	st := c.s.Escalation
	if st == nil || st.Mode != ModeWaiting {
		return
	}
	c.stopSLA()
	tctx, cancel := workflow.WithCancel(ctx)
	c.slaCancel = cancel
	id, pageAt, backAt, paged := st.ID, st.PageAt, st.HandBackAt, st.Paged
	workflow.Go(tctx, func(ctx workflow.Context) {
		if !paged {
			if !sleepUntil(ctx, pageAt) {
				return
			}
			c.slaDue = append(c.slaDue, slaEvent{kind: slaPage, id: id})
		}
		if sleepUntil(ctx, backAt) {
			c.slaDue = append(c.slaDue, slaEvent{kind: slaHandBack, id: id})
		}
	})
}

// stopSLA cancels the SLA timers (a person answered, or it is over).
func (c *conversation) stopSLA() {
	if c.slaCancel != nil {
		c.slaCancel()
		c.slaCancel = nil
	}
	c.slaDue = nil
}

// sleepUntil waits on a durable timer until t; false when cancelled.
func sleepUntil(ctx workflow.Context, t time.Time) bool {
	if d := t.Sub(workflow.Now(ctx)); d > 0 {
		return workflow.NewTimer(ctx, d).Get(ctx, nil) == nil
	}
	return ctx.Err() == nil
}

// slaStep handles a fired SLA timer, unless a person answered meanwhile.
func (c *conversation) slaStep(ctx workflow.Context, ev slaEvent) error {
	st := c.s.Escalation
	if st == nil || st.Mode != ModeWaiting || st.ID != ev.id {
		return nil
	}
	switch ev.kind {
	case slaPage:
		st.Paged = true
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(time.Minute)), acts.PageStaff,
			activities.PageInput{TenantID: c.in.TenantID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
				EscalationID: st.ID, Page: 1, Waited: workflow.Now(ctx).Sub(st.StartedAt)}).Get(ctx, nil)
	case slaHandBack:
		return c.handBack(ctx, store.EscalationHandedBack, nil)
	}
	return nil
}
