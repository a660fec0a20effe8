package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/llmkeys"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/memory"
	"github.com/konstruct/konstruct/internal/secrets"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
	"github.com/konstruct/konstruct/internal/tools/httptool"
)

// Conversation holds the activities of ConversationWorkflow.
type Conversation struct {
	Store         *store.Store
	Secrets       *secrets.Box
	LLM           *llm.Pool
	LLMKeys       *llmkeys.Service  // tenants' own keys; nil: the platform's keys only
	Slack         *slack.Client     // Slack's outlet, unless Outlets has one
	Outlets       map[string]Outlet // per channel (store.Channel*); Slack defaults to SlackOutlet{Slack}
	Tools         *tools.Registry
	HTTPTools     *httptool.Client // runs the HTTP tools operators declare; nil: none
	Memory        *memory.Service  // nil: no long-term memory
	Links         Links            // where handoffs point staff (portal, Temporal Web UI)
	Billing       *billing.Service // budgets and plan allowances, checked before each model call; nil: none
	DefaultModels []string
	Metrics       *Metrics
	Logger        *slog.Logger
	// Media: the largest file FetchMedia reads (0: media.DefaultMaxBytes),
	// and the client for WhatsApp media (nil: WhatsApp files are refused).
	MediaMaxBytes int64
	WhatsAppMedia *whatsapp.MediaClient
}

func parseIDs(tenant, other string) (uuid.UUID, uuid.UUID, error) {
	t, err := uuid.Parse(tenant)
	if err != nil {
		return uuid.Nil, uuid.Nil, temporal.NewNonRetryableApplicationError("bad tenant ID "+tenant, "BadInput", err)
	}
	if other == "" {
		return t, uuid.Nil, nil
	}
	o, err := uuid.Parse(other)
	if err != nil {
		return uuid.Nil, uuid.Nil, temporal.NewNonRetryableApplicationError("bad ID "+other, "BadInput", err)
	}
	return t, o, nil
}

// logCtx attaches the workflow's identity to every log line of an activity.
func logCtx(ctx context.Context, tenantID, workflowID string) context.Context {
	return logging.With(ctx, slog.String("tenant_id", tenantID), slog.String("workflow_id", workflowID))
}

// Open records the conversation (once) and returns its recent history.
func (a *Conversation) Open(ctx context.Context, in OpenInput) (OpenOutput, error) {
	tenantID, agentID, err := parseIDs(in.TenantID, in.AgentID)
	if err != nil {
		return OpenOutput{}, err
	}
	var out OpenOutput
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		cv, err := tx.EnsureConversation(ctx, store.Conversation{AgentID: agentID, Channel: in.Channel,
			ExternalKey: in.ExternalKey, WorkflowID: in.WorkflowID, UserRef: in.UserRef})
		if err != nil {
			return err
		}
		out.ConversationID, out.Turns = cv.ID.String(), cv.Turns
		if run := activityRunID(ctx); run != "" {
			// Turns recorded by a lost attempt of this run's workflow task
			// are numbered again by its retry, not counted as earlier turns.
			if out.Turns, err = tx.OpenRun(ctx, cv.ID, run); err != nil {
				return err
			}
		}
		if out.Turns == 0 || in.HistoryWindow <= 0 {
			return nil
		}
		msgs, err := tx.RecentMessages(ctx, cv.ID, in.HistoryWindow)
		for _, m := range msgs {
			if (m.Role == "user" || m.Role == "assistant") && m.Turn <= out.Turns {
				out.History = append(out.History, Message{Role: m.Role, Content: m.Content, Author: m.Author, Turn: m.Turn})
			}
		}
		return err
	})
	if errors.Is(err, store.ErrReferenced) {
		// The agent (or tenant) was deleted after the webhook routed here.
		return OpenOutput{}, temporal.NewNonRetryableApplicationError("agent or tenant no longer exists", ErrChannelGone, err)
	}
	if err != nil {
		return OpenOutput{}, fmt.Errorf("activities: open: %w", err)
	}
	return out, nil
}

// Respond records the user's message (first call of a turn), loads the agent
// as it is now (so Agent Designer edits apply from the next turn), and asks
// its model chain for an answer. Unavailable models fail retryably; requests
// no model can serve fail for good with a typed error the workflow turns into
// a message for the user.
func (a *Conversation) Respond(ctx context.Context, in RespondInput) (RespondOutput, error) {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("agent_id", in.AgentID))
	tenantID, convID, err := parseIDs(in.TenantID, in.ConversationID)
	if err != nil {
		return RespondOutput{}, err
	}
	agentID, err := uuid.Parse(in.AgentID)
	if err != nil {
		return RespondOutput{}, temporal.NewNonRetryableApplicationError("bad agent ID", "BadInput", err)
	}
	var agent store.Agent
	var declared []*tools.Tool
	var keyRows []store.LLMKey
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if a.LLMKeys != nil {
			var err error
			if keyRows, err = tx.ListLLMKeys(ctx); err != nil {
				return err
			}
		}
		if in.User != nil {
			if _, err := tx.AddMessage(ctx, store.Message{ConversationID: convID, Turn: in.Turn, Role: "user",
				Content: in.User.Text, Author: in.User.Author, ExternalID: in.User.ExternalID,
				IdempotencyKey: in.WorkflowID + ":" + strconv.Itoa(in.Turn) + ":user"}); err != nil {
				return err
			}
		}
		if agent, err = tx.GetAgent(ctx, agentID); err != nil {
			return err
		}
		declared, err = a.loadHTTPTools(ctx, tx, tenantID, agentID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return RespondOutput{AgentStatus: AgentDeleted}, nil
	}
	if err != nil {
		return RespondOutput{}, fmt.Errorf("activities: respond: load agent: %w", err)
	}
	if agent.Status != store.AgentActive {
		return RespondOutput{AgentStatus: AgentInactive}, nil
	}
	rules := escalationRules(in, agent)
	if h := handoffFor(in, rules); h != nil {
		// A trigger fired on the user's message: a person takes over, and
		// no model is asked.
		a.Logger.InfoContext(ctx, "escalation triggered by the user's message", "trigger", h.Trigger, "turn", in.Turn)
		return RespondOutput{AgentStatus: AgentActive, Handoff: h, MaxFailedTurns: rules.MaxFailedTurns}, nil
	}

	var toolDefs []llm.ToolDef
	allowed := slices.Clone(agent.Tools)
	var specs []ToolSpec
	for _, name := range agent.Tools {
		if t, ok := a.Tools.Get(name); ok && !t.Automatic {
			toolDefs = append(toolDefs, llm.ToolDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
			specs = append(specs, specOf(t))
		}
	}
	// The operator's HTTP tools: each is a function of its own name and
	// schema, which a model uses far more reliably than one generic
	// "http_request" taking an endpoint and free-form arguments.
	for _, t := range declared {
		if _, builtin := a.Tools.Get(t.Name); builtin || slices.Contains(allowed, t.Name) {
			continue // a built-in's name is refused at declaration (and resolves to the built-in); never shadow one
		}
		toolDefs = append(toolDefs, llm.ToolDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
		specs = append(specs, specOf(t))
		allowed = append(allowed, t.Name)
	}
	if in.Escalation == EscalationOn && rules.Enabled && !slices.Contains(allowed, tools.EscalateToHumanTool) {
		// Offered with the agent's escalation (not in the cooldown after a
		// hand-back, nor in the agent's follow-up to it).
		if t, ok := a.Tools.Get(tools.EscalateToHumanTool); ok {
			toolDefs = append(toolDefs, llm.ToolDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
			specs = append(specs, specOf(t))
			allowed = append(allowed, t.Name)
		}
	}
	chain := agent.Models
	if len(chain) == 0 {
		chain = a.DefaultModels
	}
	imgs, imgRows, err := a.turnImages(ctx, tenantID, agentID, convID, chain, in, userText(in))
	if err != nil {
		return RespondOutput{}, err
	}
	req, budget := a.prompt(ctx, tenantID, convID, agent, chain, toolDefs, in, func(msgs []llm.Message) {
		attachImages(in.History, msgs, in.Turn, imgs, imgRows)
	})
	if in.FinalAnswer && len(req.Tools) > 0 {
		// The turn's tool rounds are used up: the model must answer with
		// what it has. The tools stay declared (a history holding tool calls
		// needs them at some providers); calls it makes anyway are ignored.
		req.System += "\n\nYou have used every tool call allowed for this message. Do not call any tool now: " +
			"answer the user with the information you already have, and say what you could not find out."
	}
	if req.MaxTokens == 0 {
		// Every request caps its answer: the budget's estimate counts on it.
		req.MaxTokens = memory.DefaultOutputTokens
	}
	keys, err := a.llmKeys(ctx, tenantID, keyRows)
	if err != nil {
		return RespondOutput{}, fmt.Errorf("activities: respond: %w", err)
	}
	callKey := in.WorkflowID + ":" + strconv.Itoa(in.Turn) + ":llm:" + strconv.Itoa(in.Call)
	if err := a.admit(ctx, in, tenantID, agentID, convID, callKey, chain, req, keys); err != nil {
		return RespondOutput{}, err
	}
	resp, err := a.LLM.CompleteWith(ctx, keys, chain, req)
	if err != nil {
		a.recordFailedCall(ctx, in, tenantID, agentID, convID, err)
		if a.Billing != nil {
			if rerr := a.Billing.Release(ctx, tenantID, callKey); rerr != nil {
				a.Logger.WarnContext(ctx, "budget reservation not released; it lapses on its own", "key", callKey, "error", rerr)
			}
		}
		return RespondOutput{}, classifyLLMError(err)
	}
	out := RespondOutput{AgentStatus: AgentActive, Text: resp.Content, Tools: allowed, ToolSpecs: specs, Provider: resp.Provider,
		Model: resp.Model, InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens,
		CostMicroUSD: resp.CostMicroUSD, Fallbacks: max(len(resp.Attempts)-1, 0), WindowTokens: budget.WindowTokens(),
		MaxFailedTurns: rules.MaxFailedTurns}
	for _, tc := range resp.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
	}
	var latency time.Duration
	if n := len(resp.Attempts); n > 0 {
		latency = resp.Attempts[n-1].Duration
	}
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := tx.AddUsage(ctx, store.Usage{AgentID: &agentID, ConversationID: &convID, Provider: resp.Provider,
			Model: resp.Model, InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens,
			CostMicroUSD: resp.CostMicroUSD, LatencyMS: int(latency.Milliseconds()), KeySource: resp.KeySource,
			IdempotencyKey: callKey}); err != nil {
			return err
		}
		if a.Billing != nil {
			// The usage row carries the actual cost into the budgets; the
			// estimate reserved before the call is released with it, once.
			if err := a.Billing.Settle(ctx, tx, callKey); err != nil {
				return err
			}
		}
		return tx.AppendAudit(ctx, llmCallAudit(in, agentID, convID, resp, latency))
	})
	if err != nil {
		return RespondOutput{}, fmt.Errorf("activities: respond: record usage: %w", err)
	}
	if a.Billing != nil {
		if err := a.Billing.AfterUsage(ctx, tenantID); err != nil {
			a.Logger.WarnContext(ctx, "budget alerts not checked", "error", err)
		}
	}
	a.Logger.DebugContext(ctx, "model answered", "agent_id", in.AgentID, "turn", in.Turn, "provider", resp.Provider,
		"model", resp.Model, "input_tokens", resp.Usage.InputTokens, "output_tokens", resp.Usage.OutputTokens)
	return out, nil
}

// admit asks billing whether the call may be made (the plan's monthly
// allowance on the turn's first call, then the budgets, reserving the
// call's estimated cost). A refusal fails the activity for good with the
// notice for the user as its details, and is recorded in the audit trail.
func (a *Conversation) admit(ctx context.Context, in RespondInput, tenantID, agentID, convID uuid.UUID, key string, chain []string, req llm.Request, keys llm.Keys) error {
	if a.Billing == nil {
		return nil
	}
	refusal, err := a.Billing.Admit(ctx, billing.Call{TenantID: tenantID, AgentID: agentID, ConversationID: convID, Key: key,
		TurnKey: in.WorkflowID + ":" + strconv.Itoa(in.Turn), FirstOfTurn: in.Call == 0, Chain: chain, Request: req,
		OwnKeys: ownKeyFor(keys, chain)})
	if err != nil {
		return fmt.Errorf("activities: respond: %w", err)
	}
	if refusal == nil {
		return nil
	}
	typ := ErrBudgetExceeded
	if refusal.Kind == billing.RefusedAllowance {
		typ = ErrAllowanceUsed
	}
	a.Logger.InfoContext(ctx, "model call refused by billing", "kind", refusal.Kind, "reason", refusal.Reason, "turn", in.Turn)
	if err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "agent:" + agentID.String(), Action: "billing.refused",
			TargetType: "conversation", TargetID: convID.String(), AgentID: &agentID, ConversationID: &convID,
			WorkflowID: in.WorkflowID, IdempotencyKey: key + ":refused",
			Data: map[string]any{"kind": refusal.Kind, "reason": refusal.Reason, "notified": refusal.Notice != ""}})
	}); err != nil {
		a.Logger.WarnContext(ctx, "billing refusal not audited", "error", err)
	}
	return temporal.NewNonRetryableApplicationError(refusal.Reason, typ, refusal, refusal.Notice)
}

// ownKeyFor reports whether the tenant has its own key for a provider of
// the chain.
func ownKeyFor(keys llm.Keys, chain []string) bool {
	for _, name := range chain {
		if provider, _, err := llm.ParseModel(name); err == nil {
			if _, ok := keys.Own[provider]; ok {
				return true
			}
		}
	}
	return false
}

// llmKeys says whose keys a tenant's model call may use: its own (rows, read
// in the caller's transaction) and the platform's where its plan allows.
func (a *Conversation) llmKeys(ctx context.Context, tenantID uuid.UUID, rows []store.LLMKey) (llm.Keys, error) {
	if a.LLMKeys == nil {
		return llm.Keys{}, nil
	}
	return a.LLMKeys.Keys(ctx, tenantID, rows)
}

// classifyLLMError decides whether Temporal should retry.
func classifyLLMError(err error) error {
	switch llm.KindOf(err) {
	case llm.KindNotConfigured:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrLLMNotConfigured, err)
	case llm.KindRequest, llm.KindAuth:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrLLMRejected, err)
	}
	return fmt.Errorf("activities: respond: %w", err)
}

func toLLM(history []Message) []llm.Message {
	out := make([]llm.Message, 0, len(history))
	for _, m := range history {
		lm := llm.Message{Role: llm.Role(m.Role), Content: m.Content, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			lm.ToolCalls = append(lm.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
		out = append(out, lm)
	}
	return out
}

// RunTool runs one tool the model asked for (a tool without side effects, as
// a local activity). A failing tool is reported to the model as text so it
// can recover — invalid arguments included; it is not an activity failure.
func (a *Conversation) RunTool(ctx context.Context, in ToolInput) (ToolOutput, error) {
	return a.runTool(ctx, in)
}

// invocation says who calls a tool. Its idempotency key comes from the
// workflow, turn and call index — never from the model's tool_call_id.
func invocation(in ToolInput) (tools.Invocation, error) {
	tenantID, agentID, err := parseIDs(in.TenantID, in.AgentID)
	if err != nil {
		return tools.Invocation{}, err
	}
	inv := tools.Invocation{TenantID: tenantID, AgentID: agentID, WorkflowID: in.WorkflowID, Turn: in.Turn, Call: in.Index}
	if in.ConversationID != "" {
		if inv.ConversationID, err = uuid.Parse(in.ConversationID); err != nil {
			return tools.Invocation{}, temporal.NewNonRetryableApplicationError("bad conversation ID", "BadInput", err)
		}
	}
	if in.WorkflowID != "" {
		inv.IdempotencyKey = tools.IdempotencyKey(in.WorkflowID, in.Turn, in.Index)
	}
	return inv, nil
}

// Deliver sends text to the conversation (the channel's outlet), exactly
// once per part whatever the retries, and records it. Each part's key
// (workflow ID, turn, kind, part) is claimed in Postgres before sending — in
// the transaction that loads the connection's token — and completed after; a
// pending claim left by a failed attempt is resolved by asking the channel
// (Outlet.Find) whether that part already went out.
func (a *Conversation) Deliver(ctx context.Context, in DeliverInput) (DeliverOutput, error) {
	ctx = logCtx(ctx, in.TenantID, in.WorkflowID)
	tenantID, convID, err := parseIDs(in.TenantID, in.ConversationID)
	if err != nil {
		return DeliverOutput{}, err
	}
	var out DeliverOutput
	var sent [][2]string // key, external ID of parts sent (or found) by this attempt
	turnKey := in.WorkflowID + ":" + strconv.Itoa(in.Turn)
	if in.Text != "" {
		outlet, err := a.outlet(in.Channel)
		if err != nil {
			return DeliverOutput{}, err
		}
		parts := outlet.Split(outboundText(in))
		conn, claims, err := a.claimParts(ctx, tenantID, convID, outlet, in, turnKey, len(parts))
		if err != nil {
			return DeliverOutput{}, err
		}
		for i, text := range parts {
			id, posted, err := a.postOnce(ctx, outlet, conn, in, claims[i], Part{Key: claims[i].Key, Kind: in.Kind, Index: i, Text: text, ReplyTo: in.ReplyTo})
			if err != nil {
				return DeliverOutput{}, err
			}
			out.ExternalIDs = append(out.ExternalIDs, id)
			if posted {
				sent = append(sent, [2]string{claims[i].Key, id})
			}
		}
		// A message sent by an earlier Deliver (Meta reporting one failure
		// twice sends the template once) was reported held by that one.
		if claims[0].Status != "sent" {
			if out.Held, err = a.held(ctx, tenantID, outlet, conn, in, claims[0].Key); err != nil {
				return DeliverOutput{}, err
			}
		}
	}
	// One transaction marks the parts sent and records the messages: a crash
	// before it leaves pending claims, which the retry resolves with Find.
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		for _, kv := range sent {
			if err := tx.CompleteOutbound(ctx, kv[0], kv[1]); err != nil {
				return err
			}
		}
		if in.User != nil {
			if _, err := tx.AddMessage(ctx, store.Message{ConversationID: convID, Turn: in.Turn, Role: "user",
				Content: in.User.Text, Author: in.User.Author, ExternalID: in.User.ExternalID,
				IdempotencyKey: turnKey + ":user"}); err != nil {
				return err
			}
		}
		if in.Text == "" {
			return nil
		}
		role := "assistant"
		switch in.Kind {
		case KindReply:
		case KindStaff:
			role = "staff"
		default:
			role = "system"
		}
		ext := ""
		if len(out.ExternalIDs) > 0 {
			ext = out.ExternalIDs[0]
		}
		_, err := tx.AddMessage(ctx, store.Message{ConversationID: convID, Turn: in.Turn, Role: role, Content: in.Text,
			Author: in.Author, ExternalID: ext, Provider: in.Provider, Model: in.Model, IdempotencyKey: turnKey + ":" + in.Kind})
		return err
	})
	if err != nil {
		return DeliverOutput{}, fmt.Errorf("activities: deliver: record: %w", err)
	}
	if in.Text != "" && in.Kind == KindReply && !in.ReceivedAt.IsZero() {
		a.Metrics.observeTurn(in.Channel, time.Since(in.ReceivedAt))
	}
	return out, nil
}

// held returns the text the user did not see because the channel's
// template went instead: this message's, when its first part (firstKey) went
// as the template; for a KindTemplate sent after Meta reported a part
// failed, the failed part's message, from its record.
func (a *Conversation) held(ctx context.Context, tenantID uuid.UUID, outlet Outlet, conn Connection, in DeliverInput, firstKey string) (string, error) {
	if in.Kind == KindTemplate {
		wf, turn, kind, _, ok := ParsePartKey(in.HeldKey)
		if !ok || !heldKind(kind) {
			return "", nil
		}
		var m store.Message
		err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
			var err error
			m, err = tx.GetMessageByKey(ctx, wf+":"+strconv.Itoa(turn)+":"+kind)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("activities: deliver: held message: %w", err)
		}
		return outboundText(DeliverInput{Kind: kind, Text: m.Content, Author: m.Author}), nil
	}
	stand, ok := outlet.(templateStandIn)
	if !ok || !heldKind(in.Kind) {
		return "", nil
	}
	template, err := stand.SentTemplate(ctx, conn, firstKey)
	if err != nil || !template {
		return "", err
	}
	return outboundText(in), nil
}

// claimParts loads the channel connection's token (when the channel has
// one) and claims the key of each of n parts (turn key, kind, part number)
// in one transaction.
func (a *Conversation) claimParts(ctx context.Context, tenantID, convID uuid.UUID, outlet Outlet, in DeliverInput, turnKey string, n int) (Connection, []store.Outbound, error) {
	var conn Connection
	connID := outlet.ConnectionID(in.Address)
	claims := make([]store.Outbound, n)
	err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if connID != "" {
			if conn.Row, err = tx.GetChannelByExternalID(ctx, in.Channel, connID); err != nil {
				return err
			}
		}
		for i := range claims {
			key := turnKey + ":" + in.Kind + ":" + strconv.Itoa(i)
			if claims[i], err = tx.ClaimOutbound(ctx, store.Outbound{Key: key, ConversationID: &convID, Channel: in.Channel}); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return Connection{}, nil, temporal.NewNonRetryableApplicationError("the "+in.Channel+" connection "+connID+" was removed", ErrChannelGone, err)
	}
	if err != nil {
		return Connection{}, nil, fmt.Errorf("activities: deliver: claim: %w", err)
	}
	if connID != "" {
		token, err := a.Secrets.Open(conn.Row.Secret, store.SecretAAD(tenantID, in.Channel, connID))
		if err != nil {
			return Connection{}, nil, temporal.NewNonRetryableApplicationError("the "+in.Channel+" token cannot be decrypted; reconnect the channel", ErrChannelGone, err)
		}
		conn.Token = string(token)
	}
	return conn, claims, nil
}

// postOnce sends one part unless an earlier attempt already did. It returns
// the part's external ID and whether the claim still needs completing.
func (a *Conversation) postOnce(ctx context.Context, outlet Outlet, conn Connection, in DeliverInput, claim store.Outbound, part Part) (string, bool, error) {
	if claim.Status == "sent" {
		a.Metrics.duplicateAvoided(in.Channel, "recorded")
		return claim.ExternalID, false, nil
	}
	if !claim.Fresh {
		// An earlier attempt claimed this key and then failed: it may have
		// sent before losing the response. Ask the channel before sending again.
		id, found, err := outlet.Find(ctx, conn, in.Address, part.Key)
		if err != nil {
			return "", false, err
		}
		if found {
			a.Metrics.duplicateAvoided(in.Channel, "found_in_thread")
			a.Logger.InfoContext(ctx, "part already sent by an earlier attempt", "key", part.Key, "external_id", id)
			return id, true, nil
		}
	}
	if info := activity.GetInfo(ctx); info.Attempt > 1 {
		a.Logger.InfoContext(ctx, "sending on a retry", "key", part.Key, "attempt", info.Attempt)
	}
	id, err := outlet.Post(ctx, conn, in.Address, part)
	if err != nil {
		return "", false, err
	}
	return id, true, nil
}

// SetStatus records a conversation's status (closed when idle).
func (a *Conversation) SetStatus(ctx context.Context, in StatusInput) error {
	tenantID, convID, err := parseIDs(in.TenantID, in.ConversationID)
	if err != nil {
		return err
	}
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.SetConversationStatus(ctx, convID, in.Status) })
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted with its tenant or agent: nothing left to mark
	}
	if err != nil {
		return fmt.Errorf("activities: set status: %w", err)
	}
	return nil
}

// activityRunID is the run ID of the workflow calling the activity ("" when
// called outside one).
func activityRunID(ctx context.Context) string {
	if !activity.IsActivity(ctx) {
		return ""
	}
	return activity.GetInfo(ctx).WorkflowExecution.RunID
}
