package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/store"
)

// acts is only used to name activity methods; a nil receiver never runs.
var acts *activities.Conversation

// Activity kinds: every activity here runs as a local activity. A turn is then
// one workflow task (signal in, reply out) instead of a round trip through the
// server per activity, which is what keeps a turn's platform overhead in tens
// of milliseconds on the dev server (see `make bench`). Correctness does not
// depend on it: a worker dying mid-turn makes the workflow task time out and
// replay on another worker, re-running the local activities of that turn.
// Every one of them is idempotent — records are keyed by workflow ID and turn,
// and a send claims its key before posting and checks the thread for it on a
// retry — so a retried turn records nothing twice and posts nothing twice.
// Long model calls keep the workflow task alive through the SDK's heartbeat,
// and retries with long backoff become durable timers.
func localOptions(startToClose time.Duration) workflow.LocalActivityOptions {
	return workflow.LocalActivityOptions{
		StartToCloseTimeout: startToClose,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrLLMNotConfigured, activities.ErrLLMRejected,
				activities.ErrChannelGone, "BadInput"},
		},
	}
}

// Conversation is the workflow of one conversation. It processes messages
// strictly in the order they arrive; messages that arrive during a turn wait
// in State.Pending. It continues as new when Temporal suggests it, and ends
// after Settings.IdleTimeout without messages.
func Conversation(ctx workflow.Context, in ConversationInput) error {
	in.Settings = in.Settings.withDefaults()
	s := in.State
	if s == nil {
		s = &State{Status: store.ConversationActive}
	}
	in.State = nil
	c := &conversation{in: in, s: s}

	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) { return *s, nil }); err != nil {
		return fmt.Errorf("conversation: query handler: %w", err)
	}
	sig := workflow.GetSignalChannel(ctx, SignalMessage)
	drain := func() {
		var m Inbound
		for sig.ReceiveAsync(&m) {
			s.enqueue(m)
			m = Inbound{}
		}
	}
	// Receive continuously, so messages arriving mid-turn are queued at once.
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var m Inbound
			sig.Receive(ctx, &m)
			s.enqueue(m)
		}
	})

	if workflow.GetVersion(ctx, changeIdleTimer, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		c.legacyLoop = true
		return c.loopTimerPerWait(ctx, drain)
	}
	return c.loop(ctx, drain)
}

// changeIdleTimer names the change from a timer per wait to one idle timer
// per run (workflow.GetVersion): runs that started before it replay the old
// loop, new runs take the new one.
const changeIdleTimer = "idle-timer"

// loop answers messages in order until the conversation has been idle for
// Settings.IdleTimeout or Temporal suggests continuing as new.
//
// One idle timer runs beside it, re-armed when it fires while the
// conversation is not idle, so a run has about one pending timer whatever its
// number of turns. (workflow.AwaitWithTimeout starts a timer per wait and, in
// SDK 1.51, leaves it running when the condition is met first: a timer per
// turn, all in the workflow's state and all firing IdleTimeout later.)
func (c *conversation) loop(ctx workflow.Context, drain func()) error {
	s, idleTimeout := c.s, c.in.Settings.IdleTimeout
	last := workflow.Now(ctx) // when the last turn ended (or the run began)
	busy, idle := false, false
	workflow.Go(ctx, func(ctx workflow.Context) {
		wait := idleTimeout
		for {
			if err := workflow.NewTimer(ctx, wait).Get(ctx, nil); err != nil {
				return // the run is ending
			}
			since := workflow.Now(ctx).Sub(last)
			switch {
			case busy || len(s.Pending) > 0 || s.withPeople(): // people own it: it stays open until they hand it back
				wait = idleTimeout
			case since < idleTimeout:
				wait = idleTimeout - since
			default:
				idle = true
				_ = workflow.Await(ctx, func() bool { return !idle })
				wait = idleTimeout
			}
		}
	})
	c.armSLA(ctx) // a run continued as new while waiting for a person keeps its SLA
	for {
		if err := workflow.Await(ctx, func() bool { return len(s.Pending) > 0 || idle || len(c.slaDue) > 0 }); err != nil {
			return fmt.Errorf("conversation: wait: %w", err)
		}
		if len(s.Pending) == 0 && len(c.slaDue) > 0 {
			// An SLA timer fired (messages go first: a staff reply among
			// them meets the SLA).
			ev := c.slaDue[0]
			c.slaDue = c.slaDue[1:]
			busy = true
			if err := c.slaStep(ctx, ev); err != nil {
				return err
			}
			busy, last = false, workflow.Now(ctx)
			continue
		}
		if len(s.Pending) == 0 {
			// Idle. A message may have been signalled in the same workflow
			// task as the timer fired, before the receiver took it.
			drain()
			if len(s.Pending) == 0 {
				return c.close(ctx)
			}
		}
		idle, busy = false, true
		m := s.Pending[0]
		s.Pending = s.Pending[1:]
		if err := c.turn(ctx, m); err != nil {
			return err
		}
		busy, last = false, workflow.Now(ctx)
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return c.continueAsNew(ctx, drain)
		}
	}
}

// loopTimerPerWait is loop before changeIdleTimer, kept so that runs started
// before it replay; remove it once none can be running (they continue as new
// into the new loop, or close after IdleTimeout).
func (c *conversation) loopTimerPerWait(ctx workflow.Context, drain func()) error {
	s := c.s
	for {
		ok, err := workflow.AwaitWithTimeout(ctx, c.in.Settings.IdleTimeout, func() bool { return len(s.Pending) > 0 })
		if err != nil {
			return fmt.Errorf("conversation: wait: %w", err)
		}
		if !ok {
			drain()
			if len(s.Pending) == 0 {
				return c.close(ctx)
			}
		}
		m := s.Pending[0]
		s.Pending = s.Pending[1:]
		if err := c.turn(ctx, m); err != nil {
			return err
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return c.continueAsNew(ctx, drain)
		}
	}
}

// continueAsNew hands the state, with every message received so far, to a
// new run.
func (c *conversation) continueAsNew(ctx workflow.Context, drain func()) error {
	drain()
	next := c.in
	next.State = c.s
	workflow.GetLogger(ctx).Info("continuing as new", "turn", c.s.Turn, "pending", len(c.s.Pending))
	return workflow.NewContinueAsNewError(ctx, ConversationWorkflow, next)
}

type conversation struct {
	in ConversationInput
	s  *State

	legacyLoop bool // the run is on loopTimerPerWait: no escalation
	escChecked bool
	escVersion workflow.Version
	slaCancel  workflow.CancelFunc // the SLA timers of an escalation waiting for a person
	slaDue     []slaEvent          // SLA timers that fired, to handle in the loop
}

// open records the conversation the first time this run needs it, and seeds
// the model's window from the database when the thread existed before.
func (c *conversation) open(ctx workflow.Context, userRef string) error {
	if c.s.ConversationID != "" {
		return nil
	}
	var out activities.OpenOutput
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(30*time.Second)), acts.Open,
		activities.OpenInput{TenantID: c.in.TenantID, AgentID: c.in.AgentID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
			Channel: c.in.Channel, ExternalKey: c.in.ExternalKey, UserRef: userRef, HistoryWindow: c.in.Settings.HistoryWindow}).Get(ctx, &out)
	if err != nil {
		return err
	}
	c.s.ConversationID, c.s.Turn = out.ConversationID, out.Turns
	c.s.History = out.History
	return nil
}

// turn answers one inbound message.
func (c *conversation) turn(ctx workflow.Context, m Inbound) error {
	logger := workflow.GetLogger(ctx)
	if err := c.open(ctx, m.UserID); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == activities.ErrChannelGone {
			logger.Warn("conversation cannot be opened; dropping message", "error", err)
			return nil
		}
		return err
	}
	if m.Staff != nil {
		return c.staffAction(ctx, m)
	}
	if m.DeliveryFailure != nil || m.Unsupported != "" || m.RecordOnly {
		if workflow.GetVersion(ctx, changeWhatsApp, workflow.DefaultVersion, 1) >= 1 {
			return c.whatsApp(ctx, m)
		}
	}
	c.s.Turn++
	user := &activities.UserMessage{Text: m.Text, Author: m.UserID, ExternalID: m.TS}
	if len(c.s.Held) > 0 && workflow.GetVersion(ctx, changeHeldMessages, workflow.DefaultVersion, 1) >= 1 {
		if err := c.showHeld(ctx, m); err != nil {
			return err
		}
	}

	if m.OverLimit != nil {
		text := ""
		now := workflow.Now(ctx)
		if c.s.LastLimitNotice.IsZero() || now.Sub(c.s.LastLimitNotice) >= m.OverLimit.RetryAfter {
			text = limitNotice(m.OverLimit)
			c.s.LastLimitNotice = now
		}
		return c.deliver(ctx, m, activities.KindNotice, text, user, "", "")
	}

	mode := c.respondMode(ctx) // escalation (escalation.go): "" in runs from before it
	if mode != "" && c.s.withPeople() {
		return c.relay(ctx, m) // people own the conversation: no model
	}

	var media turnMedia
	if len(m.Media) > 0 && workflow.GetVersion(ctx, changeMedia, workflow.DefaultVersion, 1) >= 1 {
		media = c.fetchMedia(ctx, m, false)
		answerable := media.answerable(m.Text)
		m.Text = withMarkers(m.Text, media.markers) // the message as recorded, remembered and kept in the window
		user.Text = m.Text
		if !answerable {
			// Nothing a model could read (no text; no image, or none it can
			// see): what the user is told about the files is the answer.
			return c.deliver(ctx, m, activities.KindMedia, media.notice, user, "", "")
		}
		if media.notice != "" {
			if err := c.deliver(ctx, m, activities.KindMedia, media.notice, user, "", ""); err != nil {
				return err
			}
		}
	}

	c.rememberWindow(ctx, activities.Message{Role: "user", Content: m.Text, Author: m.UserID, Turn: c.s.Turn})
	window := c.s.History
	toolIndex := 0 // tool calls so far this turn, across rounds: the calls' idempotency keys
	toolsVersion := workflow.Version(-2)
	for call := 0; ; call++ {
		final := toolsVersion >= 1 && call >= c.in.Settings.MaxToolRounds
		out, err := c.respond(ctx, m, call, user, window, final, media.ids, mode)
		user = nil // recorded by the first call
		if err != nil {
			if errors.Is(err, errHandedOff) {
				return nil
			}
			var notice *userNotice
			if errors.As(err, &notice) {
				return c.deliver(ctx, m, activities.KindNotice, notice.text, nil, "", "")
			}
			return err
		}
		switch out.AgentStatus {
		case activities.AgentInactive:
			return c.deliver(ctx, m, activities.KindNotice, "This assistant is switched off at the moment. An administrator can turn it back on in the Konstruct portal.", nil, "", "")
		case activities.AgentDeleted:
			return c.deliver(ctx, m, activities.KindNotice, "This assistant no longer exists. Ask an administrator to connect this workspace to another assistant.", nil, "", "")
		}
		if out.Handoff != nil {
			// A trigger fired on the user's message; no model was asked.
			if started, err := c.escalate(ctx, m, out.Handoff.Trigger, out.Handoff.Reason); err != nil || started {
				return err
			}
			continue // the rules changed meanwhile: the model answers after all
		}
		if len(out.ToolCalls) == 0 || call >= c.in.Settings.MaxToolRounds {
			text := out.Text
			if text == "" {
				text = "I don't have an answer to that."
			}
			if err := c.deliver(ctx, m, activities.KindReply, text, nil, out.Provider, out.Model); err != nil {
				return err
			}
			c.rememberWindow(ctx, activities.Message{Role: "assistant", Content: text, Turn: c.s.Turn})
			c.rememberTurn(ctx, m, text)
			if mode != "" {
				return c.afterReply(ctx, m, mode, text, out.MaxFailedTurns)
			}
			return nil
		}
		// The model asked for tools: run them (in order), then ask again with
		// the results. Tool rounds stay out of the long-term window.
		window = append(append([]activities.Message(nil), window...),
			activities.Message{Role: "assistant", Content: out.Text, ToolCalls: out.ToolCalls})
		if toolsVersion == -2 {
			toolsVersion = workflow.GetVersion(ctx, changeToolActivities, workflow.DefaultVersion, 1)
		}
		for _, tc := range out.ToolCalls {
			in := activities.ToolInput{TenantID: c.in.TenantID, AgentID: c.in.AgentID, Allowed: out.Tools, Call: tc,
				ConversationID: c.s.ConversationID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
				Turn: c.s.Turn, Index: toolIndex}
			toolIndex++
			var res activities.ToolOutput
			var err error
			if toolsVersion == workflow.DefaultVersion {
				err = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(30*time.Second)), acts.RunTool, in).Get(ctx, &res)
			} else {
				res, err = c.runTool(ctx, in, specFor(out.ToolSpecs, tc.Name))
			}
			if err != nil {
				return err
			}
			if reason, ok := toolHandoff(tc, res); ok && mode == activities.EscalationOn {
				if started, err := c.escalate(ctx, m, store.TriggerTool, reason); err != nil || started {
					return err
				}
			}
			window = append(window, activities.Message{Role: "tool", Content: res.Content, ToolCallID: tc.ID})
		}
	}
}

// userNotice is a failure the user must hear about instead of a reply.
type userNotice struct{ text string }

func (n *userNotice) Error() string { return n.text }

// respond asks the model chain, telling the user when no model has answered
// for Settings.UnavailableNotice, and keeps trying (with backoff, on durable
// timers) until a provider returns — the turn then completes as usual.
func (c *conversation) respond(ctx workflow.Context, m Inbound, call int, user *activities.UserMessage, window []activities.Message, final bool, media []string, mode string) (activities.RespondOutput, error) {
	in := activities.RespondInput{TenantID: c.in.TenantID, AgentID: c.in.AgentID, ConversationID: c.s.ConversationID,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Channel: c.in.Channel, Turn: c.s.Turn, Call: call,
		User: user, History: window, FinalAnswer: final, EndUserRef: m.UserID, Media: media, Escalation: mode}
	opts := localOptions(c.in.Settings.LLMCallTimeout)
	opts.ScheduleToCloseTimeout = c.in.Settings.UnavailableNotice
	var out activities.RespondOutput
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, opts), acts.Respond, in).Get(ctx, &out)
	if err == nil {
		c.noteBudget(ctx, out)
		return out, nil
	}
	if handled, herr := c.escalateOnFailure(ctx, m, mode, err); herr != nil || handled {
		return out, cmp.Or(herr, errHandedOff)
	}
	if n := noticeFor(err); n != nil {
		return out, n
	}
	workflow.GetLogger(ctx).Warn("no model answered; telling the user and retrying", "error", err)
	if err := c.deliver(ctx, m, activities.KindUnavailable,
		"I'm having trouble reaching my language model right now. I'll answer here as soon as it's back.", nil, "", ""); err != nil {
		return out, err
	}
	opts.ScheduleToCloseTimeout = 24 * time.Hour
	opts.RetryPolicy.InitialInterval = 5 * time.Second
	opts.RetryPolicy.MaximumInterval = 5 * time.Minute
	err = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, opts), acts.Respond, in).Get(ctx, &out)
	if err == nil {
		c.noteBudget(ctx, out)
		return out, nil
	}
	if n := noticeFor(err); n != nil {
		return out, n
	}
	return out, &userNotice{text: "Sorry, my language model has been unavailable for a day, so I could not answer this message. Please ask again."}
}

// noticeFor turns a non-retryable respond failure into what the user is told.
func noticeFor(err error) *userNotice {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return nil
	}
	switch appErr.Type() {
	case activities.ErrLLMNotConfigured:
		return &userNotice{text: "I can't answer yet: no language model is configured for this assistant. " +
			"An operator needs to set it up (" + appErr.Message() + ")."}
	case activities.ErrLLMRejected:
		return &userNotice{text: "Sorry, the language model refused this request, so I can't answer it. " +
			"An operator can find the details in the conversation's history."}
	case activities.ErrBudgetExceeded, activities.ErrAllowanceUsed:
		// Billing refused the call before the model was asked; its details
		// are what the user is told ("" when this conversation already was
		// this month: then nothing is posted). No GetVersion: no history
		// before this change holds these failures, so none replays it.
		var text string
		if appErr.HasDetails() {
			_ = appErr.Details(&text)
		}
		if text == "" && appErr.Type() == activities.ErrBudgetExceeded {
			text = "I'm paused at the moment because this workspace has reached its AI budget, so I can't answer this message."
		}
		return &userNotice{text: text}
	}
	return nil
}

func limitNotice(o *OverLimit) string {
	who := "this channel"
	if o.Scope == "tenant" {
		who = "your organisation"
	}
	secs := int(o.RetryAfter.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return fmt.Sprintf("You're sending messages faster than the limit for %s (%d per minute), so I didn't answer that one. Please try again in %d seconds.",
		who, o.PerMinute, secs)
}

// deliver posts text into the thread (and records user, when given).
func (c *conversation) deliver(ctx workflow.Context, m Inbound, kind, text string, user *activities.UserMessage, provider, model string) error {
	in := activities.DeliverInput{Kind: kind, Text: text, User: user, Provider: provider, Model: model, ReceivedAt: m.ReceivedAt}
	if c.in.Channel == store.ChannelWhatsApp {
		in.ReplyTo = m.TS // the reply quotes the message it answers
	}
	return c.send(ctx, in)
}

// send delivers in (its conversation, channel, address and turn filled in
// here) through the Deliver activity.
func (c *conversation) send(ctx workflow.Context, in activities.DeliverInput) error {
	in.TenantID, in.ConversationID, in.WorkflowID = c.in.TenantID, c.s.ConversationID, workflow.GetInfo(ctx).WorkflowExecution.ID
	in.Channel, in.Address, in.Turn = c.in.Channel, c.in.Address, c.s.Turn
	return c.deliverInput(ctx, in)
}

// deliverInput runs Deliver; a channel that can no longer be posted to is
// logged, not a failure of the conversation.
func (c *conversation) deliverInput(ctx workflow.Context, in activities.DeliverInput) error {
	var out activities.DeliverOutput
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(time.Minute)), acts.Deliver, in).Get(ctx, &out)
	if err == nil && out.Held != "" {
		c.hold(out.Held)
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrChannelGone {
		// The workspace was disconnected or revoked the token: nobody can be
		// answered here. Record why and carry on; the next turn tries again.
		workflow.GetLogger(ctx).Warn("cannot post to the channel", "error", err)
		return nil
	}
	return err
}

// close marks the conversation closed after the idle timeout.
func (c *conversation) close(ctx workflow.Context) error {
	c.s.Status = store.ConversationClosed
	if err := workflow.UpsertTypedSearchAttributes(ctx, ConversationStatusKey.ValueSet(store.ConversationClosed)); err != nil {
		return fmt.Errorf("conversation: search attributes: %w", err)
	}
	if c.s.ConversationID == "" {
		return nil
	}
	if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions(30*time.Second)), acts.SetStatus,
		activities.StatusInput{TenantID: c.in.TenantID, ConversationID: c.s.ConversationID, Status: store.ConversationClosed}).Get(ctx, nil); err != nil {
		return err
	}
	c.summarize(ctx)
	return nil
}
