package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Escalation states: the row's copy of the conversation workflow's mode, and
// how an escalation ended.
const (
	EscalationWaiting    = "waiting_for_human"
	EscalationHuman      = "human"
	EscalationResolved   = "resolved"    // a staff member resolved it
	EscalationHandedBack = "handed_back" // nobody answered within the hand-back time
)

// EscalationOpen reports whether an escalation in state is still owned by
// people (waiting for one or handled by one).
func EscalationOpen(state string) bool { return state == EscalationWaiting || state == EscalationHuman }

// Escalation triggers.
const (
	TriggerKeyword     = "keyword"
	TriggerUserRequest = "user_request"
	TriggerFailedTurns = "failed_turns"
	TriggerTool        = "tool"
	TriggerError       = "error"
	TriggerBudget      = "budget"
)

// Audit actions of the handoff steps (the audit API's type filter
// "escalation." selects them all).
const (
	AuditEscalationPrefix       = "escalation."
	AuditEscalationStarted      = "escalation.started"
	AuditEscalationNotified     = "escalation.notified"      // the handoff was posted in Slack
	AuditEscalationNotifyFailed = "escalation.notify_failed" // it could not be (bot not in the channel, ...)
	AuditEscalationPaged        = "escalation.paged"
	AuditEscalationUserMessage  = "escalation.user_message" // the end user wrote while a person owned the conversation
	AuditEscalationStaffMessage = "escalation.staff_message"
	AuditEscalationClaimed      = "escalation.claimed"
	AuditEscalationResolved     = "escalation.resolved"
	AuditEscalationHandedBack   = "escalation.handed_back"
)

// Handoff is one escalation of a conversation to the tenant's support staff
// (a row of escalations). The conversation workflow owns its state; this
// record is what the portal, the REST API and the Slack thread read.
type Handoff struct {
	ID                 uuid.UUID
	TenantID           uuid.UUID
	ConversationID     uuid.UUID
	AgentID            uuid.UUID
	WorkflowID         string
	IdempotencyKey     string
	State              string
	Trigger            string
	Reason             string
	Summary            string
	SummarySource      string // "model", "transcript" or "" (not written yet)
	Context            HandoffContext
	Channel            string
	UserRef            string
	SlackTeamID        string
	SlackChannelID     string
	SlackTS            string
	NotifyError        string
	Assignee           string
	ResolvedBy         string
	FirstResponseDueAt *time.Time
	HandBackDueAt      *time.Time
	PageCount          int
	PagedAt            *time.Time
	CreatedAt          time.Time
	ClaimedAt          *time.Time
	FirstResponseAt    *time.Time
	EndedAt            *time.Time
}

// HandoffContext is the context pack's structured part: what the agent tried.
type HandoffContext struct {
	Tools   []HandoffTool   `json:"tools,omitempty"`
	Sources []HandoffSource `json:"sources,omitempty"`
}

// HandoffTool is a tool the agent called in the conversation.
type HandoffTool struct {
	Name     string `json:"name"`
	Calls    int    `json:"calls"`
	Outcomes string `json:"outcomes"` // e.g. "ok", "ok, error"
}

// HandoffSource is a knowledge chunk the agent was given.
type HandoffSource struct {
	Citation   string     `json:"citation"`
	DocumentID *uuid.UUID `json:"document_id,omitempty"`
	ChunkID    *uuid.UUID `json:"chunk_id,omitempty"`
	Turn       int        `json:"turn"`
}

// WaitingTime is how long the user waited for a person: until the first
// staff reply, or until now (or the end) while nobody answered.
func (h Handoff) WaitingTime(now time.Time) time.Duration {
	end := now
	switch {
	case h.FirstResponseAt != nil:
		end = *h.FirstResponseAt
	case h.EndedAt != nil:
		end = *h.EndedAt
	}
	return max(end.Sub(h.CreatedAt), 0)
}

const handoffCols = `id, tenant_id, conversation_id, agent_id, workflow_id, idempotency_key, state, trigger, reason,
	summary, summary_source, context, channel, user_ref, slack_team_id, slack_channel_id, slack_ts, notify_error,
	assignee, resolved_by, first_response_due_at, hand_back_due_at, page_count, paged_at, created_at, claimed_at,
	first_response_at, ended_at`

func scanHandoff(row pgx.Row) (Handoff, error) {
	var h Handoff
	var ctxJSON []byte
	err := row.Scan(&h.ID, &h.TenantID, &h.ConversationID, &h.AgentID, &h.WorkflowID, &h.IdempotencyKey, &h.State,
		&h.Trigger, &h.Reason, &h.Summary, &h.SummarySource, &ctxJSON, &h.Channel, &h.UserRef, &h.SlackTeamID,
		&h.SlackChannelID, &h.SlackTS, &h.NotifyError, &h.Assignee, &h.ResolvedBy, &h.FirstResponseDueAt,
		&h.HandBackDueAt, &h.PageCount, &h.PagedAt, &h.CreatedAt, &h.ClaimedAt, &h.FirstResponseAt, &h.EndedAt)
	if err != nil {
		return Handoff{}, mapErr(err)
	}
	if len(ctxJSON) > 0 {
		if err := json.Unmarshal(ctxJSON, &h.Context); err != nil {
			return Handoff{}, fmt.Errorf("store: decode escalation context: %w", err)
		}
	}
	return h, nil
}

// CreateHandoff records an escalation once per idempotency key and marks its
// conversation escalated. A repeated key returns the existing row.
func (t *Tx) CreateHandoff(ctx context.Context, h Handoff) (Handoff, error) {
	out, err := scanHandoff(t.tx.QueryRow(ctx, `
		INSERT INTO escalations (tenant_id, conversation_id, agent_id, workflow_id, idempotency_key, trigger, reason,
			channel, user_ref, first_response_due_at, hand_back_due_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
		RETURNING `+handoffCols,
		t.scope(h.TenantID), h.ConversationID, h.AgentID, h.WorkflowID, h.IdempotencyKey, h.Trigger, h.Reason,
		h.Channel, h.UserRef, h.FirstResponseDueAt, h.HandBackDueAt))
	if err != nil {
		return Handoff{}, fmt.Errorf("store: create escalation: %w", err)
	}
	if out.State == EscalationWaiting || out.State == EscalationHuman {
		if _, err := t.tx.Exec(ctx, `UPDATE conversations SET status = 'escalated', last_activity_at = now() WHERE id = $1`,
			out.ConversationID); err != nil {
			return Handoff{}, fmt.Errorf("store: create escalation: mark conversation: %w", mapErr(err))
		}
	}
	return out, nil
}

// GetHandoff returns an escalation visible in this scope.
func (t *Tx) GetHandoff(ctx context.Context, id uuid.UUID) (Handoff, error) {
	h, err := scanHandoff(t.tx.QueryRow(ctx, `SELECT `+handoffCols+` FROM escalations WHERE id = $1`, id))
	if err != nil {
		return Handoff{}, fmt.Errorf("store: get escalation: %w", err)
	}
	return h, nil
}

// HandoffByThread finds the escalation whose Slack handoff message is
// channelID/threadTS (staff reply in its thread).
func (t *Tx) HandoffByThread(ctx context.Context, channelID, threadTS string) (Handoff, error) {
	h, err := scanHandoff(t.tx.QueryRow(ctx, `SELECT `+handoffCols+` FROM escalations
		WHERE tenant_id = $1 AND slack_channel_id = $2 AND slack_ts = $3 AND slack_ts <> ''`, t.tenantID, channelID, threadTS))
	if err != nil {
		return Handoff{}, fmt.Errorf("store: escalation by thread: %w", err)
	}
	return h, nil
}

// HandoffFilter narrows a list of escalations; zero values match all.
type HandoffFilter struct {
	States         []string
	ConversationID *uuid.UUID
	Limit          int // 1..500; default 100
}

// ListHandoffs returns escalations, open ones first (oldest waiting first,
// as a queue is worked), then the ended ones newest first.
func (t *Tx) ListHandoffs(ctx context.Context, f HandoffFilter) ([]Handoff, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := t.tx.Query(ctx, `SELECT `+handoffCols+` FROM escalations
		WHERE ($1::text[] IS NULL OR state = ANY($1)) AND ($2::uuid IS NULL OR conversation_id = $2)
		ORDER BY (ended_at IS NULL) DESC,
		         CASE WHEN ended_at IS NULL THEN created_at END ASC,
		         created_at DESC, id
		LIMIT $3`, nilIfEmpty(f.States), f.ConversationID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: list escalations: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Handoff, error) { return scanHandoff(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list escalations: %w", err)
	}
	return out, nil
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// HandoffCounts counts escalations by state.
type HandoffCounts struct {
	Waiting, Human, Resolved, HandedBack int
}

// CountHandoffs counts the escalations visible in this scope by state.
func (t *Tx) CountHandoffs(ctx context.Context) (HandoffCounts, error) {
	var c HandoffCounts
	err := t.tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'waiting_for_human'),
		count(*) FILTER (WHERE state = 'human'), count(*) FILTER (WHERE state = 'resolved'),
		count(*) FILTER (WHERE state = 'handed_back') FROM escalations`).Scan(&c.Waiting, &c.Human, &c.Resolved, &c.HandedBack)
	if err != nil {
		return HandoffCounts{}, fmt.Errorf("store: count escalations: %w", mapErr(err))
	}
	return c, nil
}

// SetHandoffContext stores the context pack (summary and what the agent tried).
func (t *Tx) SetHandoffContext(ctx context.Context, id uuid.UUID, summary, source string, c HandoffContext) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("store: escalation context: %w", err)
	}
	return t.execOne(ctx, "set escalation context",
		`UPDATE escalations SET summary = $2, summary_source = $3, context = $4 WHERE id = $1`, id, summary, source, raw)
}

// SetHandoffSlack records where the handoff was posted in Slack.
func (t *Tx) SetHandoffSlack(ctx context.Context, id uuid.UUID, teamID, channelID, ts string) error {
	return t.execOne(ctx, "set escalation slack",
		`UPDATE escalations SET slack_team_id = $2, slack_channel_id = $3, slack_ts = $4, notify_error = '' WHERE id = $1`,
		id, teamID, channelID, ts)
}

// SetHandoffNotifyError records why staff could not be told in Slack.
func (t *Tx) SetHandoffNotifyError(ctx context.Context, id uuid.UUID, msg string) error {
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	return t.execOne(ctx, "set escalation notify error", `UPDATE escalations SET notify_error = $2 WHERE id = $1`, id, msg)
}

// MarkHandoffPaged counts a page of staff (the first-response time passed).
func (t *Tx) MarkHandoffPaged(ctx context.Context, id uuid.UUID, pages int) error {
	return t.execOne(ctx, "mark escalation paged",
		`UPDATE escalations SET page_count = greatest(page_count, $2), paged_at = coalesce(paged_at, now()) WHERE id = $1`, id, pages)
}

// MarkHandoffHuman records that a person took the conversation: a staff
// reply (firstResponse) or a claim. The first of each is kept; the assignee
// is the first to claim or reply.
func (t *Tx) MarkHandoffHuman(ctx context.Context, id uuid.UUID, who string, firstResponse bool) error {
	return t.execOne(ctx, "mark escalation human", `
		UPDATE escalations SET
			state = CASE WHEN state = 'waiting_for_human' THEN 'human' ELSE state END,
			assignee = CASE WHEN assignee = '' THEN $2 ELSE assignee END,
			claimed_at = coalesce(claimed_at, now()),
			first_response_at = CASE WHEN $3 THEN coalesce(first_response_at, now()) ELSE first_response_at END
		WHERE id = $1`, id, who, firstResponse)
}

// EndHandoff records the end of an escalation (resolved or handed back) and
// puts its conversation back to active. Ending an ended escalation changes
// nothing (a retried activity).
func (t *Tx) EndHandoff(ctx context.Context, id uuid.UUID, state, by string) (Handoff, error) {
	h, err := scanHandoff(t.tx.QueryRow(ctx, `
		UPDATE escalations SET state = CASE WHEN ended_at IS NULL THEN $2 ELSE state END,
			resolved_by = CASE WHEN ended_at IS NULL THEN $3 ELSE resolved_by END,
			ended_at = coalesce(ended_at, now())
		WHERE id = $1 RETURNING `+handoffCols, id, state, by))
	if err != nil {
		return Handoff{}, fmt.Errorf("store: end escalation: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE conversations SET status = 'active', last_activity_at = now()
		WHERE id = $1 AND status = 'escalated'`, h.ConversationID); err != nil {
		return Handoff{}, fmt.Errorf("store: end escalation: conversation: %w", mapErr(err))
	}
	return h, nil
}

func (t *Tx) execOne(ctx context.Context, op, sql string, args ...any) error {
	tag, err := t.tx.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", op, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	return nil
}

// SupportSettings are a tenant's escalation settings.
type SupportSettings struct {
	TenantID       uuid.UUID
	SlackTeamID    string // a connected workspace; "" lets the conversation's own workspace serve
	SlackChannelID string // where handoffs are posted; an agent's notify_channel overrides it
	FirstResponse  time.Duration
	HandBack       time.Duration
	UpdatedAt      time.Time
	Saved          bool // false: the defaults, never saved
}

// Default SLA of a tenant that set none.
const (
	DefaultFirstResponse = 15 * time.Minute
	DefaultHandBack      = 2 * time.Hour
)

// GetSupportSettings returns the tenant's settings, or the defaults.
func (t *Tx) GetSupportSettings(ctx context.Context) (SupportSettings, error) {
	s := SupportSettings{TenantID: t.tenantID, FirstResponse: DefaultFirstResponse, HandBack: DefaultHandBack}
	var first, back int
	err := t.tx.QueryRow(ctx, `SELECT slack_team_id, slack_channel_id, first_response_seconds, hand_back_seconds, updated_at
		FROM support_settings WHERE tenant_id = $1`, t.tenantID).Scan(&s.SlackTeamID, &s.SlackChannelID, &first, &back, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return SupportSettings{}, fmt.Errorf("store: get support settings: %w", mapErr(err))
	}
	s.FirstResponse, s.HandBack, s.Saved = time.Duration(first)*time.Second, time.Duration(back)*time.Second, true
	return s, nil
}

// PutSupportSettings stores the tenant's settings.
func (t *Tx) PutSupportSettings(ctx context.Context, s SupportSettings) (SupportSettings, error) {
	var first, back int
	out := SupportSettings{TenantID: t.scope(s.TenantID), Saved: true}
	err := t.tx.QueryRow(ctx, `
		INSERT INTO support_settings (tenant_id, slack_team_id, slack_channel_id, first_response_seconds, hand_back_seconds)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id) DO UPDATE SET slack_team_id = EXCLUDED.slack_team_id,
			slack_channel_id = EXCLUDED.slack_channel_id, first_response_seconds = EXCLUDED.first_response_seconds,
			hand_back_seconds = EXCLUDED.hand_back_seconds, updated_at = now()
		RETURNING slack_team_id, slack_channel_id, first_response_seconds, hand_back_seconds, updated_at`,
		out.TenantID, s.SlackTeamID, s.SlackChannelID, int(s.FirstResponse/time.Second), int(s.HandBack/time.Second)).
		Scan(&out.SlackTeamID, &out.SlackChannelID, &first, &back, &out.UpdatedAt)
	if err != nil {
		return SupportSettings{}, fmt.Errorf("store: put support settings: %w", mapErr(err))
	}
	out.FirstResponse, out.HandBack = time.Duration(first)*time.Second, time.Duration(back)*time.Second
	return out, nil
}
