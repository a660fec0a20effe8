package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
)

// Which of an agent's escalation rules a Respond applies (RespondInput.Escalation).
const (
	// EscalationOn: every trigger on the user's message, and escalate_to_human offered.
	EscalationOn = "on"
	// EscalationCooldown: the conversation came back from people recently;
	// only the user asking for a person again hands it off.
	EscalationCooldown = "cooldown"
	// EscalationOff: no trigger and no tool (the agent's follow-up after a hand-back).
	EscalationOff = "off"
)

// Handoff is an escalation trigger that fired, and why.
type Handoff struct {
	Trigger string `json:"trigger"` // store.Trigger*
	Reason  string `json:"reason"`
}

// Links are where a handoff points staff: the conversation's escalation in
// the portal and its workflow in the Temporal Web UI.
type Links struct {
	PublicURL     string // KONSTRUCT_PUBLIC_URL
	TemporalUIURL string
	Namespace     string
}

// Escalation is the portal page of an escalation.
func (l Links) Escalation(tenantID string, id uuid.UUID) string {
	if l.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(l.PublicURL, "/") + "/t/" + tenantID + "/escalations/" + id.String()
}

// Conversation is the portal page of a conversation (its transcript, with
// the images the user sent).
func (l Links) Conversation(tenantID string, id uuid.UUID) string {
	if l.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(l.PublicURL, "/") + "/t/" + tenantID + "/conversations/" + id.String()
}

// Workflow is a workflow's page in the Temporal Web UI.
func (l Links) Workflow(workflowID string) string {
	if l.TemporalUIURL == "" {
		return ""
	}
	return strings.TrimRight(l.TemporalUIURL, "/") + "/namespaces/" + url.PathEscape(l.Namespace) + "/workflows/" + url.PathEscape(workflowID)
}

func escalationRules(in RespondInput, agent store.Agent) escalation.Rules {
	r := escalation.RulesOf(agent.Escalation)
	if in.Escalation == "" || in.Escalation == EscalationOff {
		r.Enabled = false // a history from before escalation, or the follow-up to a hand-back
	}
	if !r.Enabled {
		r.MaxFailedTurns = 0
	}
	return r
}

// handoffFor checks the triggers on the user's message of a turn's first
// call: the agent's keywords (not in the cooldown), then the user asking for
// a person.
func handoffFor(in RespondInput, r escalation.Rules) *Handoff {
	if in.User == nil || !r.Enabled {
		return nil
	}
	if in.Escalation == EscalationOn && r.Allows(store.TriggerKeyword) {
		if k, ok := escalation.MatchKeyword(in.User.Text, r.Keywords); ok {
			return &Handoff{Trigger: store.TriggerKeyword, Reason: "The user's message contains the keyword “" + k + "”."}
		}
	}
	if r.Allows(store.TriggerUserRequest) && escalation.AsksForHuman(in.User.Text) {
		return &Handoff{Trigger: store.TriggerUserRequest, Reason: "The user asked to talk to a person."}
	}
	return nil
}

// outboundText is what the user sees of a delivery: a support person's
// reply says who wrote it.
func outboundText(in DeliverInput) string {
	if in.Kind == KindStaff && in.Author != "" {
		return in.Author + ": " + in.Text
	}
	return in.Text
}

// StartEscalationInput hands a conversation to people.
type StartEscalationInput struct {
	TenantID       string `json:"tenant_id"`
	AgentID        string `json:"agent_id"`
	ConversationID string `json:"conversation_id"`
	WorkflowID     string `json:"workflow_id"`
	Channel        string `json:"channel"`
	UserRef        string `json:"user_ref,omitempty"`
	Seq            int    `json:"seq"` // the conversation's n-th escalation: the record's key
	Turn           int    `json:"turn"`
	Trigger        string `json:"trigger"`
	Reason         string `json:"reason"`
}

// StartEscalationOutput says whether the agent's rules let the escalation
// start, and what the workflow needs to run it.
type StartEscalationOutput struct {
	Started        bool          `json:"started"`
	EscalationID   string        `json:"escalation_id,omitempty"`
	HandoffMessage string        `json:"handoff_message,omitempty"`
	FirstResponse  time.Duration `json:"first_response,omitempty"` // page staff again after this long without a reply
	HandBack       time.Duration `json:"hand_back,omitempty"`      // then give the conversation back to the agent
	Cooldown       time.Duration `json:"cooldown,omitempty"`
}

// EscalationKey is the record key of a conversation's seq-th escalation.
func EscalationKey(workflowID string, seq int) string {
	return workflowID + ":escalation:" + strconv.Itoa(seq)
}

// StartEscalation records an escalation (once per conversation and sequence
// number) if the agent's rules allow its trigger, with the tenant's SLA,
// and marks the conversation escalated. It is audited as escalation.started.
func (a *Conversation) StartEscalation(ctx context.Context, in StartEscalationInput) (StartEscalationOutput, error) {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("agent_id", in.AgentID))
	tenantID, convID, err := parseIDs(in.TenantID, in.ConversationID)
	if err != nil {
		return StartEscalationOutput{}, err
	}
	_, agentID, err := parseIDs(in.TenantID, in.AgentID)
	if err != nil {
		return StartEscalationOutput{}, err
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		reason = "The assistant handed the conversation to a person."
	}
	var out StartEscalationOutput
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		agent, err := tx.GetAgent(ctx, agentID)
		if err != nil {
			return err
		}
		rules := escalation.RulesOf(agent.Escalation)
		if !rules.Allows(in.Trigger) {
			return nil
		}
		settings, err := tx.GetSupportSettings(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		firstDue, backDue := now.Add(settings.FirstResponse), now.Add(settings.HandBack)
		h, err := tx.CreateHandoff(ctx, store.Handoff{ConversationID: convID, AgentID: agentID, WorkflowID: in.WorkflowID,
			IdempotencyKey: EscalationKey(in.WorkflowID, in.Seq), Trigger: in.Trigger, Reason: summary(reason, 1900),
			Channel: in.Channel, UserRef: in.UserRef, FirstResponseDueAt: &firstDue, HandBackDueAt: &backDue})
		if err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, escalationAudit(h, "agent:"+agentID.String(), store.AuditEscalationStarted, "started",
			map[string]any{"trigger": in.Trigger, "reason": h.Reason, "turn": in.Turn, "channel": in.Channel, "user_ref": in.UserRef,
				"first_response_seconds": int(settings.FirstResponse.Seconds()), "hand_back_seconds": int(settings.HandBack.Seconds())})); err != nil {
			return err
		}
		out = StartEscalationOutput{Started: true, EscalationID: h.ID.String(), HandoffMessage: rules.HandoffMessage,
			FirstResponse: settings.FirstResponse, HandBack: settings.HandBack, Cooldown: rules.Cooldown}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return StartEscalationOutput{}, nil // the agent was deleted: nobody to hand over to
	}
	if err != nil {
		return StartEscalationOutput{}, fmt.Errorf("activities: start escalation: %w", err)
	}
	if out.Started {
		a.Logger.InfoContext(ctx, "conversation handed to people", "escalation_id", out.EscalationID, "trigger", in.Trigger)
	}
	return out, nil
}

// escalationAudit is a handoff step's audit event, keyed by the escalation
// and the step so a retried activity writes it once.
func escalationAudit(h store.Handoff, actor, action, step string, data map[string]any) store.AuditEvent {
	agentID, convID := h.AgentID, h.ConversationID
	if data == nil {
		data = map[string]any{}
	}
	data["escalation_id"] = h.ID.String()
	return store.AuditEvent{Actor: actor, Action: action, TargetType: "escalation", TargetID: h.ID.String(),
		AgentID: &agentID, ConversationID: &convID, WorkflowID: h.WorkflowID,
		IdempotencyKey: h.IdempotencyKey + ":" + step, Data: data}
}

// NotifyStaffInput asks for the handoff's context pack and its Slack message.
type NotifyStaffInput struct {
	TenantID       string  `json:"tenant_id"`
	AgentID        string  `json:"agent_id"`
	ConversationID string  `json:"conversation_id"`
	WorkflowID     string  `json:"workflow_id"`
	EscalationID   string  `json:"escalation_id"`
	Address        Address `json:"address"` // the conversation's; its Slack workspace serves when the tenant set none
}

// NotifyStaffOutput says whether staff were told in Slack, or why not.
type NotifyStaffOutput struct {
	Posted  bool   `json:"posted"`
	Problem string `json:"problem,omitempty"`
}

// summaryTimeout bounds the model's summary: the handoff never waits long on it.
const summaryTimeout = 20 * time.Second

// handoffSummarySystem instructs the model that writes a handoff's summary.
const handoffSummarySystem = "You hand a customer conversation over to a human support colleague. Summarise it for them " +
	"in at most 80 words: who the user is (if known), what they want, what the assistant already answered or tried, and " +
	"what is still open. Plain sentences, no greeting, no commentary."

// NotifyStaff builds the handoff's context pack — a summary (by the agent's
// model, bounded in time; the last messages when the model cannot write
// one), the tools the agent tried and the knowledge it used — stores it, and
// posts the handoff in the tenant's support Slack channel (an agent's
// notify_channel overrides the channel) with Take it and Resolve buttons,
// and the recent transcript in its thread. A handoff Slack refuses (the bot
// is not in the channel, no channel set) is recorded on the escalation and
// audited, and the portal's queue still has it: this activity fails only
// for what a retry can fix.
func (a *Conversation) NotifyStaff(ctx context.Context, in NotifyStaffInput) (NotifyStaffOutput, error) {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("escalation_id", in.EscalationID))
	tenantID, escID, err := parseIDs(in.TenantID, in.EscalationID)
	if err != nil {
		return NotifyStaffOutput{}, err
	}
	var (
		h        store.Handoff
		agent    store.Agent
		settings store.SupportSettings
		msgs     []store.Message
		toolEvs  []store.AuditEvent
		sources  []store.Source
	)
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if h, err = tx.GetHandoff(ctx, escID); err != nil {
			return err
		}
		if agent, err = tx.GetAgent(ctx, h.AgentID); err != nil {
			return err
		}
		if settings, err = tx.GetSupportSettings(ctx); err != nil {
			return err
		}
		if msgs, err = tx.ListMessages(ctx, h.ConversationID); err != nil {
			return err
		}
		escalation.OrderTurns(msgs)
		if toolEvs, err = tx.ListAuditEvents(ctx, store.AuditFilter{Types: []string{store.AuditToolCall}, ConversationID: &h.ConversationID}); err != nil {
			return err
		}
		sources, err = tx.ListSources(ctx, h.ConversationID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return NotifyStaffOutput{}, nil // deleted with its tenant or agent
	}
	if err != nil {
		return NotifyStaffOutput{}, fmt.Errorf("activities: notify staff: load: %w", err)
	}
	if h.SummarySource == "" {
		h.Summary, h.SummarySource = a.handoffSummary(ctx, tenantID, h, agent, msgs)
		h.Context = contextPack(toolEvs, sources)
		if err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
			return tx.SetHandoffContext(ctx, h.ID, h.Summary, h.SummarySource, h.Context)
		}); err != nil {
			return NotifyStaffOutput{}, fmt.Errorf("activities: notify staff: context: %w", err)
		}
	}

	team, channel, problem := supportTarget(h, escalation.RulesOf(agent.Escalation), settings, in.Address)
	if problem != "" {
		return a.notifyFailed(ctx, tenantID, h, problem)
	}
	conn, err := a.supportConn(ctx, tenantID, team)
	if err != nil {
		if p := slackProblem(err, team, channel); p != "" {
			return a.notifyFailed(ctx, tenantID, h, p)
		}
		return NotifyStaffOutput{}, err
	}
	text, blocks := slack.HandoffBlocks(a.handoffView(tenantID, h, agent, ""))
	rootTS, err := a.postSupport(ctx, tenantID, h, conn, channel, "", h.IdempotencyKey+":handoff", text, blocks, false)
	if err != nil {
		if p := slackProblem(err, team, channel); p != "" {
			return a.notifyFailed(ctx, tenantID, h, p)
		}
		return NotifyStaffOutput{}, err
	}
	if err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		return tx.SetHandoffSlack(ctx, h.ID, team, channel, rootTS)
	}); err != nil {
		return NotifyStaffOutput{}, fmt.Errorf("activities: notify staff: record thread: %w", err)
	}
	h.SlackTeamID, h.SlackChannelID, h.SlackTS = team, channel, rootTS
	if t := recentTranscript(msgs, 12); t != "" {
		if _, err := a.postSupport(ctx, tenantID, h, conn, channel, rootTS, h.IdempotencyKey+":transcript", t, nil, false); err != nil {
			if slackProblem(err, team, channel) == "" {
				return NotifyStaffOutput{}, err
			}
			a.Logger.WarnContext(ctx, "handoff transcript not posted", "err", err)
		}
	}
	if err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		return tx.AppendAudit(ctx, escalationAudit(h, "agent:"+h.AgentID.String(), store.AuditEscalationNotified, "notified",
			map[string]any{"slack_team_id": team, "slack_channel_id": channel, "slack_ts": rootTS, "summary_source": h.SummarySource}))
	}); err != nil {
		return NotifyStaffOutput{}, fmt.Errorf("activities: notify staff: audit: %w", err)
	}
	return NotifyStaffOutput{Posted: true}, nil
}

// notifyFailed records why staff were not told in Slack.
func (a *Conversation) notifyFailed(ctx context.Context, tenantID uuid.UUID, h store.Handoff, problem string) (NotifyStaffOutput, error) {
	a.Logger.WarnContext(ctx, "handoff not posted in Slack", "problem", problem)
	err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := tx.SetHandoffNotifyError(ctx, h.ID, problem); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, escalationAudit(h, "agent:"+h.AgentID.String(), store.AuditEscalationNotifyFailed, "notify_failed",
			map[string]any{"problem": problem}))
	})
	if err != nil {
		return NotifyStaffOutput{}, fmt.Errorf("activities: notify staff: record problem: %w", err)
	}
	return NotifyStaffOutput{Problem: problem}, nil
}

// supportTarget picks where a handoff is posted: the tenant's support
// workspace (else the conversation's own Slack workspace) and the agent's
// notify_channel (else the tenant's support channel). A handoff already
// posted stays where it is.
func supportTarget(h store.Handoff, rules escalation.Rules, s store.SupportSettings, addr Address) (team, channel, problem string) {
	if h.SlackTS != "" {
		return h.SlackTeamID, h.SlackChannelID, ""
	}
	team = s.SlackTeamID
	if team == "" {
		team = addr.TeamID
	}
	channel = rules.NotifyChannel
	if channel == "" {
		channel = s.SlackChannelID
	}
	switch {
	case channel == "":
		return "", "", "No support Slack channel is set, so staff were not told in Slack: set one in Settings → Support " +
			"(or the agent's notify channel). The escalation waits in the portal's Escalations queue."
	case team == "":
		return "", "", "No Slack workspace is set for support handoffs (this conversation is not on Slack): choose one in Settings → Support."
	}
	return team, channel, ""
}

// slackProblem explains a Slack refusal an operator must fix, or "" when
// the error may pass with a retry.
func slackProblem(err error, team, channel string) string {
	if errors.Is(err, store.ErrNotFound) {
		return "The Slack workspace " + team + " is not connected to this organisation any more: connect it on the Channels page, or choose another in Settings → Support."
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == ErrChannelGone {
		return "The Slack connection of workspace " + team + " cannot be used (" + appErr.Message() + "): reconnect it on the Channels page."
	}
	if !slack.IsPermanent(err) {
		return ""
	}
	switch code := slack.ErrorCode(err); code {
	case "not_in_channel":
		return "The Konstruct bot is not a member of the support channel " + channel + " in workspace " + team +
			", so Slack refused the handoff (not_in_channel): invite the bot there (/invite @your-bot in that channel)."
	case "channel_not_found":
		return "Slack has no channel " + channel + " that the bot can see in workspace " + team +
			" (channel_not_found): check the channel ID in Settings → Support, and invite the bot if it is private."
	case "is_archived":
		return "The support channel " + channel + " is archived (is_archived): choose another in Settings → Support."
	case "invalid_auth", "not_authed", "token_revoked", "account_inactive":
		return "The bot token of workspace " + team + " no longer works (" + code + "): reconnect the workspace on the Channels page."
	case "":
		return "Slack refused the handoff: " + err.Error()
	default:
		return "Slack refused the handoff (" + code + ")."
	}
}

// supportConn opens the bot token of the support workspace.
func (a *Conversation) supportConn(ctx context.Context, tenantID uuid.UUID, team string) (Connection, error) {
	var conn Connection
	err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		conn.Row, err = tx.GetChannelByExternalID(ctx, store.ChannelSlack, team)
		return err
	})
	if err != nil {
		return Connection{}, err
	}
	token, err := a.Secrets.Open(conn.Row.Secret, store.SecretAAD(tenantID, store.ChannelSlack, team))
	if err != nil {
		return Connection{}, temporal.NewNonRetryableApplicationError("the Slack token cannot be decrypted", ErrChannelGone, err)
	}
	conn.Token = string(token)
	return conn, nil
}

// postSupport posts into the support channel (a thread when threadTS is
// set) exactly once per key: claimed in Postgres before posting, completed
// after; a pending claim left by a failed attempt is looked up in Slack
// before posting again. Slack's errors come back as they are, for
// slackProblem.
func (a *Conversation) postSupport(ctx context.Context, tenantID uuid.UUID, h store.Handoff, conn Connection, channel, threadTS,
	key, text string, blocks slack.Blocks, broadcast bool) (string, error) {
	var claim store.Outbound
	convID := h.ConversationID
	if err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		claim, err = tx.ClaimOutbound(ctx, store.Outbound{Key: key, ConversationID: &convID, Channel: store.ChannelSlack})
		return err
	}); err != nil {
		return "", fmt.Errorf("activities: support post: claim: %w", err)
	}
	if claim.Status == "sent" {
		return claim.ExternalID, nil
	}
	var ts string
	found := false
	if !claim.Fresh {
		var err error
		if threadTS == "" {
			ts, found, err = a.Slack.FindInChannel(ctx, conn.Token, channel, key)
		} else {
			ts, found, err = a.Slack.FindByKey(ctx, conn.Token, channel, threadTS, key)
		}
		if err != nil {
			return "", err
		}
	}
	if !found {
		msg := slack.Outbound{Channel: channel, ThreadTS: threadTS, Text: text, Key: key, Blocks: blocks, Broadcast: broadcast}
		var err error
		if ts, err = a.Slack.PostMessage(ctx, conn.Token, msg); err != nil {
			return "", err
		}
	}
	if err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.CompleteOutbound(ctx, key, ts) }); err != nil {
		return "", fmt.Errorf("activities: support post: complete: %w", err)
	}
	return ts, nil
}

// handoffView is what the handoff message shows of h.
func (a *Conversation) handoffView(tenantID uuid.UUID, h store.Handoff, agent store.Agent, ended string) slack.Handoff {
	v := slack.Handoff{EscalationID: h.ID.String(), Agent: agent.Name, Reason: h.Reason, UserRef: h.UserRef, Channel: h.Channel,
		Since: h.CreatedAt, Summary: h.Summary, ByModel: h.SummarySource == "model",
		PortalURL: a.Links.Escalation(tenantID.String(), h.ID), WorkflowURL: a.Links.Workflow(h.WorkflowID), Ended: ended}
	for _, t := range h.Context.Tools {
		v.Tools = append(v.Tools, fmt.Sprintf("%s (%s: %s)", t.Name, plural(t.Calls, "call", "calls"), t.Outcomes))
	}
	for _, s := range h.Context.Sources {
		v.Sources = append(v.Sources, s.Citation)
	}
	return v
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// handoffSummary asks the agent's model chain for a summary of the
// conversation, within summaryTimeout; when no model answers (or the chain
// refuses), the last messages stand in, so the handoff never waits on a
// model that is down.
func (a *Conversation) handoffSummary(ctx context.Context, tenantID uuid.UUID, h store.Handoff, agent store.Agent, msgs []store.Message) (string, string) {
	fallback := recentTranscript(msgs, 6)
	transcript := summaryTranscript(msgs, 3000)
	if transcript == "" {
		return fallback, "transcript"
	}
	chain := agent.Models
	if len(chain) == 0 {
		chain = a.DefaultModels
	}
	sctx, cancel := context.WithTimeout(ctx, summaryTimeout)
	defer cancel()
	resp, err := a.LLM.Complete(sctx, chain, llm.Request{System: handoffSummarySystem,
		Messages: []llm.Message{{Role: llm.RoleUser, Content: transcript}}, MaxTokens: 300})
	text := ""
	if err == nil {
		text = strings.TrimSpace(resp.Content)
	}
	if text == "" {
		a.Logger.WarnContext(ctx, "no model wrote the handoff summary; the last messages stand in", "err", err)
		return fallback, "transcript"
	}
	var latency int64
	if n := len(resp.Attempts); n > 0 {
		latency = resp.Attempts[n-1].Duration.Milliseconds()
	}
	key := h.IdempotencyKey + ":llm:summary"
	agentID, convID := h.AgentID, h.ConversationID
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := tx.AddUsage(ctx, store.Usage{AgentID: &agentID, ConversationID: &convID, Provider: resp.Provider,
			Model: resp.Model, InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens,
			CostMicroUSD: resp.CostMicroUSD, LatencyMS: int(latency), IdempotencyKey: key}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "agent:" + agentID.String(), Action: store.AuditLLMCall,
			TargetType: "model", TargetID: resp.Provider + "/" + resp.Model, AgentID: &agentID, ConversationID: &convID,
			WorkflowID: h.WorkflowID, IdempotencyKey: key,
			Data: map[string]any{"outcome": AuditOutcomeOK, "purpose": "handoff_summary", "provider": resp.Provider,
				"model": resp.Model, "input_tokens": resp.Usage.InputTokens, "output_tokens": resp.Usage.OutputTokens,
				"cost_micro_usd": resp.CostMicroUSD, "latency_ms": latency, "escalation_id": h.ID.String()}})
	})
	if err != nil {
		a.Logger.WarnContext(ctx, "usage of the handoff summary not recorded", "err", err)
	}
	return summary(text, 4000), "model"
}

// recentTranscript renders the last n messages of the conversation for
// staff (Slack mrkdwn, escaped).
func recentTranscript(msgs []store.Message, n int) string {
	var lines []string
	for _, m := range msgs {
		who := ""
		switch m.Role {
		case "user":
			who = "User"
			if m.Author != "" {
				who = "User " + m.Author
			}
		case "assistant":
			who = "Agent"
		case "staff":
			who = "Support"
			if m.Author != "" {
				who = m.Author + " (support)"
			}
		case "system":
			who = "Notice"
		default:
			continue
		}
		lines = append(lines, "*"+slack.Escape(who)+":* "+slack.Escape(summary(strings.Join(strings.Fields(m.Content), " "), 400)))
	}
	if len(lines) == 0 {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "Recent messages:\n" + strings.Join(lines, "\n")
}

// contextPack lists the tools the agent called in the conversation (by
// name, with their outcomes) and the knowledge chunks it was given.
func contextPack(toolEvs []store.AuditEvent, sources []store.Source) store.HandoffContext {
	var c store.HandoffContext
	byName := map[string]int{}
	outcomes := map[string][]string{}
	for i := len(toolEvs) - 1; i >= 0; i-- { // oldest first
		e := toolEvs[i]
		name, _ := e.Data["tool"].(string)
		if name == "" {
			name = e.TargetID
		}
		if name == "" || name == tools.EscalateToHumanTool {
			continue
		}
		idx, ok := byName[name]
		if !ok {
			idx = len(c.Tools)
			byName[name] = idx
			c.Tools = append(c.Tools, store.HandoffTool{Name: name})
		}
		c.Tools[idx].Calls++
		if o, _ := e.Data["outcome"].(string); o != "" && !slices.Contains(outcomes[name], o) {
			outcomes[name] = append(outcomes[name], o)
		}
	}
	for i := range c.Tools {
		c.Tools[i].Outcomes = strings.Join(outcomes[c.Tools[i].Name], ", ")
	}
	seen := map[string]bool{}
	for _, s := range sources {
		cite := s.Citation()
		if seen[cite] {
			continue
		}
		seen[cite] = true
		c.Sources = append(c.Sources, store.HandoffSource{Citation: cite, DocumentID: s.DocumentID, ChunkID: s.ChunkID, Turn: s.Turn})
	}
	return c
}

// RelayInput relays an end user's message to the people who own the conversation.
type RelayInput struct {
	TenantID       string      `json:"tenant_id"`
	ConversationID string      `json:"conversation_id"`
	WorkflowID     string      `json:"workflow_id"`
	EscalationID   string      `json:"escalation_id"`
	Turn           int         `json:"turn"`
	User           UserMessage `json:"user"` // its text marks the files it came with ("[image: …]")
	// Files says the message came with files (FetchMedia's markers are in
	// the text; the images are stored): the thread note links to the portal,
	// which shows them.
	Files bool `json:"files,omitempty"`
}

// RelayToStaff records a message the end user wrote while people own the
// conversation (no model is asked) and relays it into the handoff's Slack
// thread, exactly once. The portal shows it from the record, with the
// images it came with; the thread note links there.
func (a *Conversation) RelayToStaff(ctx context.Context, in RelayInput) error {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("escalation_id", in.EscalationID))
	tenantID, convID, err := parseIDs(in.TenantID, in.ConversationID)
	if err != nil {
		return err
	}
	_, escID, err := parseIDs(in.TenantID, in.EscalationID)
	if err != nil {
		return err
	}
	turnKey := in.WorkflowID + ":" + strconv.Itoa(in.Turn)
	var h store.Handoff
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if _, err := tx.AddMessage(ctx, store.Message{ConversationID: convID, Turn: in.Turn, Role: "user", Content: in.User.Text,
			Author: in.User.Author, ExternalID: in.User.ExternalID, IdempotencyKey: turnKey + ":user"}); err != nil {
			return err
		}
		var err error
		if h, err = tx.GetHandoff(ctx, escID); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, escalationAudit(h, "end_user:"+in.User.Author, store.AuditEscalationUserMessage,
			"user:"+strconv.Itoa(in.Turn), map[string]any{"turn": in.Turn, "text": summary(in.User.Text, 500)}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("activities: relay to staff: %w", err)
	}
	who := "User"
	if in.User.Author != "" {
		who = "User " + in.User.Author
	}
	note := "*" + slack.Escape(who) + ":* " + slack.Escape(in.User.Text)
	if u := a.Links.Conversation(in.TenantID, convID); in.Files && u != "" {
		note += "\n<" + u + "|See what they sent in the portal>"
	}
	a.threadNote(ctx, tenantID, h, turnKey+":relay", note, false)
	return nil
}

// threadNote posts text in the handoff's Slack thread, if it has one. Slack
// refusing it for good is logged (the portal has everything); a transient
// failure is retried inside the activity's own retries by the caller's
// error — here it is logged too, since the record is what counts.
func (a *Conversation) threadNote(ctx context.Context, tenantID uuid.UUID, h store.Handoff, key, text string, broadcast bool) {
	if h.SlackTS == "" {
		return
	}
	conn, err := a.supportConn(ctx, tenantID, h.SlackTeamID)
	if err == nil {
		_, err = a.postSupport(ctx, tenantID, h, conn, h.SlackChannelID, h.SlackTS, key, text, nil, broadcast)
	}
	if err != nil {
		a.Logger.WarnContext(ctx, "could not post in the handoff thread", "key", key, "err", err)
	}
}

// StaffActionInput records what a staff member did.
type StaffActionInput struct {
	TenantID       string                 `json:"tenant_id"`
	ConversationID string                 `json:"conversation_id"`
	WorkflowID     string                 `json:"workflow_id"`
	Action         escalation.StaffAction `json:"action"`
}

// StaffActionOutput names who acted, as the end user is shown.
type StaffActionOutput struct {
	Author string `json:"author"`
}

// RecordStaffAction records a staff reply or claim on the escalation: its
// first response (or claim) moves it to human and names its assignee; it is
// audited; a reply written in the portal or over the API is copied into the
// Slack thread, and a claim is announced there. A Slack user is named by
// their Slack profile.
func (a *Conversation) RecordStaffAction(ctx context.Context, in StaffActionInput) (StaffActionOutput, error) {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("escalation_id", in.Action.EscalationID))
	tenantID, escID, err := parseIDs(in.TenantID, in.Action.EscalationID)
	if err != nil {
		return StaffActionOutput{}, err
	}
	var h store.Handoff
	if err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		h, err = tx.GetHandoff(ctx, escID)
		return err
	}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return StaffActionOutput{Author: "Support"}, nil
		}
		return StaffActionOutput{}, fmt.Errorf("activities: staff action: %w", err)
	}
	act := in.Action
	author := a.staffName(ctx, tenantID, act)
	step := act.Kind + ":" + act.EventID
	action := store.AuditEscalationStaffMessage
	data := map[string]any{"source": act.Source, "author": author, "author_ref": act.AuthorRef}
	if act.Kind == escalation.ActionReply {
		data["text"] = summary(act.Text, 500)
	} else {
		action = store.AuditEscalationClaimed
	}
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := tx.MarkHandoffHuman(ctx, h.ID, author, act.Kind == escalation.ActionReply); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, escalationAudit(h, staffActor(act), action, step, data))
	})
	if err != nil {
		return StaffActionOutput{}, fmt.Errorf("activities: staff action: record: %w", err)
	}
	switch {
	case act.Kind == escalation.ActionClaim:
		a.threadNote(ctx, tenantID, h, h.IdempotencyKey+":"+step, ":raising_hand: *"+slack.Escape(author)+"* took this conversation.", false)
	case act.Source != escalation.SourceSlack:
		a.threadNote(ctx, tenantID, h, h.IdempotencyKey+":"+step, "*"+slack.Escape(author)+"* (in the portal): "+slack.Escape(act.Text), false)
	}
	return StaffActionOutput{Author: author}, nil
}

func staffActor(act escalation.StaffAction) string {
	if act.AuthorRef != "" {
		return act.AuthorRef
	}
	return "staff"
}

// staffName is the name the end user sees for a staff member: the name the
// action carries, else their Slack profile's, else "Support".
func (a *Conversation) staffName(ctx context.Context, tenantID uuid.UUID, act escalation.StaffAction) string {
	if act.Author != "" {
		return act.Author
	}
	ref, ok := strings.CutPrefix(act.AuthorRef, "slack:")
	team, user, ok2 := strings.Cut(ref, ":")
	if !ok || !ok2 {
		return "Support"
	}
	conn, err := a.supportConn(ctx, tenantID, team)
	if err == nil {
		var name string
		if name, err = a.Slack.UserName(ctx, conn.Token, user); err == nil {
			return name
		}
	}
	a.Logger.WarnContext(ctx, "slack user's name not found; calling them Support", "user", user, "err", err)
	return "Support"
}

// PageInput pages staff again about an escalation nobody answered.
type PageInput struct {
	TenantID     string        `json:"tenant_id"`
	WorkflowID   string        `json:"workflow_id"`
	EscalationID string        `json:"escalation_id"`
	Page         int           `json:"page"`
	Waited       time.Duration `json:"waited"`
}

// PageStaff records that the first-response time passed and pages staff
// again: a message in the handoff's thread that is also sent to the channel,
// with @here.
func (a *Conversation) PageStaff(ctx context.Context, in PageInput) error {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("escalation_id", in.EscalationID))
	tenantID, escID, err := parseIDs(in.TenantID, in.EscalationID)
	if err != nil {
		return err
	}
	var h store.Handoff
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if h, err = tx.GetHandoff(ctx, escID); err != nil {
			return err
		}
		if err := tx.MarkHandoffPaged(ctx, h.ID, in.Page); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, escalationAudit(h, "system", store.AuditEscalationPaged, "page:"+strconv.Itoa(in.Page),
			map[string]any{"page": in.Page, "waited_seconds": int(in.Waited.Seconds())}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("activities: page staff: %w", err)
	}
	link := ""
	if u := a.Links.Escalation(in.TenantID, h.ID); u != "" {
		link = " or <" + u + "|open it in the portal>"
	}
	a.threadNote(ctx, tenantID, h, h.IdempotencyKey+":page:"+strconv.Itoa(in.Page),
		"<!here> :alarm_clock: Nobody has answered this user for "+waited(in.Waited)+". Reply in this thread"+link+
			". Reason for the handoff: "+slack.Escape(h.Reason), true)
	return nil
}

func waited(d time.Duration) string {
	switch {
	case d < time.Minute:
		return plural(int(d.Seconds()), "second", "seconds")
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute", "minutes")
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// EndEscalationInput ends an escalation: resolved by staff, or handed back
// when nobody answered in time.
type EndEscalationInput struct {
	TenantID     string        `json:"tenant_id"`
	WorkflowID   string        `json:"workflow_id"`
	EscalationID string        `json:"escalation_id"`
	State        string        `json:"state"` // store.EscalationResolved or store.EscalationHandedBack
	By           string        `json:"by,omitempty"`
	ByRef        string        `json:"by_ref,omitempty"`
	Source       string        `json:"source,omitempty"`
	Waited       time.Duration `json:"waited,omitempty"` // handed back: how long nobody answered
}

// EndEscalation records the end of an escalation and the conversation's
// return to its agent (escalation.resolved, then escalation.handed_back),
// says so in the Slack thread, and replaces the handoff message's buttons
// with the outcome.
func (a *Conversation) EndEscalation(ctx context.Context, in EndEscalationInput) error {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("escalation_id", in.EscalationID))
	tenantID, escID, err := parseIDs(in.TenantID, in.EscalationID)
	if err != nil {
		return err
	}
	var h store.Handoff
	var agent store.Agent
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if h, err = tx.EndHandoff(ctx, escID, in.State, in.By); err != nil {
			return err
		}
		if agent, err = tx.GetAgent(ctx, h.AgentID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		reason := "sla"
		if in.State == store.EscalationResolved {
			reason = "resolved"
			if err := tx.AppendAudit(ctx, escalationAudit(h, firstOf(in.ByRef, "staff"), store.AuditEscalationResolved, "resolved",
				map[string]any{"by": in.By, "source": in.Source})); err != nil {
				return err
			}
		}
		return tx.AppendAudit(ctx, escalationAudit(h, "system", store.AuditEscalationHandedBack, "handed_back",
			map[string]any{"reason": reason, "waited_seconds": int(in.Waited.Seconds())}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("activities: end escalation: %w", err)
	}
	ended := "Resolved by " + firstOf(h.ResolvedBy, in.By, "support") + ": the assistant has the conversation again."
	note := ":white_check_mark: *" + slack.Escape(firstOf(h.ResolvedBy, in.By, "Support")) + "* resolved this. The assistant has the conversation again."
	if h.State == store.EscalationHandedBack {
		ended = "Nobody answered within " + waited(in.Waited) + ": handed back to the assistant."
		note = ":hourglass: Nobody answered within " + waited(in.Waited) + ", so the user was told and the assistant has the conversation again."
	}
	a.threadNote(ctx, tenantID, h, h.IdempotencyKey+":end", note, false)
	if h.SlackTS != "" {
		conn, err := a.supportConn(ctx, tenantID, h.SlackTeamID)
		if err == nil {
			text, blocks := slack.HandoffBlocks(a.handoffView(tenantID, h, agent, ended))
			err = a.Slack.UpdateMessage(ctx, conn.Token, h.SlackChannelID, h.SlackTS, text, blocks)
		}
		if err != nil {
			a.Logger.WarnContext(ctx, "could not update the handoff message", "err", err)
		}
	}
	return nil
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
