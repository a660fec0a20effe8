package store

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Conversation statuses.
const (
	ConversationActive    = "active"
	ConversationEscalated = "escalated"
	ConversationClosed    = "closed"
)

// Conversation is one thread with an agent; its workflow holds the live state.
type Conversation struct {
	ID             uuid.UUID
	TenantID       uuid.UUID
	AgentID        uuid.UUID
	Channel        string
	ExternalKey    string
	WorkflowID     string
	UserRef        string
	Status         string
	Turns          int
	CreatedAt      time.Time
	LastActivityAt time.Time
}

const conversationCols = `id, tenant_id, agent_id, channel, external_key, workflow_id, user_ref, status, turns, created_at, last_activity_at`

func scanConversation(row pgx.Row) (Conversation, error) {
	var c Conversation
	err := row.Scan(&c.ID, &c.TenantID, &c.AgentID, &c.Channel, &c.ExternalKey, &c.WorkflowID, &c.UserRef, &c.Status,
		&c.Turns, &c.CreatedAt, &c.LastActivityAt)
	return c, mapErr(err)
}

// EnsureConversation returns the conversation for a workflow, creating it on
// first use and reopening it if it was closed. Idempotent, so a retried
// activity is harmless.
func (t *Tx) EnsureConversation(ctx context.Context, c Conversation) (Conversation, error) {
	out, err := scanConversation(t.tx.QueryRow(ctx, `
		INSERT INTO conversations (tenant_id, agent_id, channel, external_key, workflow_id, user_ref)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (workflow_id) DO UPDATE SET
			-- A closed thread that gets a new message is open again.
			status = CASE WHEN conversations.status = 'closed' THEN 'active' ELSE conversations.status END
		RETURNING `+conversationCols,
		t.scope(c.TenantID), c.AgentID, c.Channel, c.ExternalKey, c.WorkflowID, c.UserRef))
	if err != nil {
		return Conversation{}, fmt.Errorf("store: ensure conversation: %w", err)
	}
	return out, nil
}

// GetConversation returns a conversation visible in this scope.
func (t *Tx) GetConversation(ctx context.Context, id uuid.UUID) (Conversation, error) {
	c, err := scanConversation(t.tx.QueryRow(ctx, `SELECT `+conversationCols+` FROM conversations WHERE id = $1`, id))
	if err != nil {
		return Conversation{}, fmt.Errorf("store: get conversation: %w", err)
	}
	return c, nil
}

// ListConversations returns conversations by last activity, newest first.
func (t *Tx) ListConversations(ctx context.Context, limit int) ([]Conversation, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := t.tx.Query(ctx, `SELECT `+conversationCols+` FROM conversations
		ORDER BY last_activity_at DESC, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list conversations: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) { return scanConversation(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list conversations: %w", err)
	}
	return out, nil
}

// SetConversationStatus records a status change (escalated, closed, active).
func (t *Tx) SetConversationStatus(ctx context.Context, id uuid.UUID, status string) error {
	tag, err := t.tx.Exec(ctx, `UPDATE conversations SET status = $2, last_activity_at = now() WHERE id = $1`, id, status)
	if err != nil {
		return fmt.Errorf("store: set conversation status: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: set conversation status: %w", ErrNotFound)
	}
	return nil
}

// Message is one utterance in a conversation.
type Message struct {
	ID             uuid.UUID
	TenantID       uuid.UUID
	ConversationID uuid.UUID
	Turn           int
	Role           string // user | assistant | system | tool
	Content        string
	Author         string
	ExternalID     string
	Provider       string
	Model          string
	IdempotencyKey string
	CreatedAt      time.Time
}

const messageCols = `id, tenant_id, conversation_id, turn, role, content, author, external_id, provider, model, idempotency_key, created_at`

func scanMessage(row pgx.Row) (Message, error) {
	var m Message
	err := row.Scan(&m.ID, &m.TenantID, &m.ConversationID, &m.Turn, &m.Role, &m.Content, &m.Author, &m.ExternalID,
		&m.Provider, &m.Model, &m.IdempotencyKey, &m.CreatedAt)
	return m, mapErr(err)
}

// OpenRun returns the conversation's turn count as workflow run runID first
// saw it: the current count on the run's first call, the same number on any
// later call of that run (a retried workflow task re-running its Open after
// turns were recorded), so the run numbers its turns the same way each time.
func (t *Tx) OpenRun(ctx context.Context, convID uuid.UUID, runID string) (int, error) {
	var turns int
	err := t.tx.QueryRow(ctx, `
		UPDATE conversations
		SET opened_turns = CASE WHEN opened_by_run = $2 THEN opened_turns ELSE turns END, opened_by_run = $2
		WHERE id = $1 RETURNING opened_turns`, convID, runID).Scan(&turns)
	if err != nil {
		return 0, fmt.Errorf("store: open run: %w", mapErr(err))
	}
	return turns, nil
}

// AddMessage records a message once per idempotency key and advances the
// conversation's turn count and activity time. A repeated key is a no-op that
// returns inserted=false.
func (t *Tx) AddMessage(ctx context.Context, m Message) (inserted bool, err error) {
	tag, err := t.tx.Exec(ctx, `
		INSERT INTO messages (tenant_id, conversation_id, turn, role, content, author, external_id, provider, model, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (tenant_id, idempotency_key) DO NOTHING`,
		t.scope(m.TenantID), m.ConversationID, m.Turn, m.Role, m.Content, m.Author, m.ExternalID, m.Provider, m.Model, m.IdempotencyKey)
	if err != nil {
		return false, fmt.Errorf("store: add message: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if _, err := t.tx.Exec(ctx, `UPDATE conversations SET turns = greatest(turns, $2), last_activity_at = now() WHERE id = $1`,
		m.ConversationID, m.Turn); err != nil {
		return false, fmt.Errorf("store: add message: touch conversation: %w", mapErr(err))
	}
	return true, nil
}

// GetMessageByKey returns the message recorded under idempotency key, or
// ErrNotFound.
func (t *Tx) GetMessageByKey(ctx context.Context, key string) (Message, error) {
	m, err := scanMessage(t.tx.QueryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE idempotency_key = $1`, key))
	if err != nil {
		return Message{}, fmt.Errorf("store: get message %s: %w", key, err)
	}
	return m, nil
}

// ListMessages returns a conversation's messages in order.
func (t *Tx) ListMessages(ctx context.Context, conversationID uuid.UUID) ([]Message, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+messageCols+` FROM messages WHERE conversation_id = $1
		ORDER BY turn, created_at, id`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("store: list messages: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list messages: %w", err)
	}
	return out, nil
}

// RecentMessages returns the last n messages of a conversation, oldest first.
func (t *Tx) RecentMessages(ctx context.Context, conversationID uuid.UUID, n int) ([]Message, error) {
	rows, err := t.tx.Query(ctx, `SELECT * FROM (
		SELECT `+messageCols+` FROM messages WHERE conversation_id = $1
		ORDER BY turn DESC, created_at DESC, id DESC LIMIT $2) m
		ORDER BY turn, created_at, id`, conversationID, n)
	if err != nil {
		return nil, fmt.Errorf("store: recent messages: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, fmt.Errorf("store: recent messages: %w", err)
	}
	return out, nil
}

// Usage is one LLM call's tokens and cost.
type Usage struct {
	TenantID       uuid.UUID
	AgentID        *uuid.UUID
	ConversationID *uuid.UUID
	Provider       string
	Model          string
	InputTokens    int
	OutputTokens   int
	CostMicroUSD   int64
	LatencyMS      int
	IdempotencyKey string
	// KeySource says whose key paid: KeyPlatform ("" means it) or KeyTenant.
	KeySource string
	CreatedAt time.Time
}

// Whose key paid for a model call (llm_usage.key_source).
const (
	KeyPlatform = "platform"
	KeyTenant   = "tenant"
)

// AddUsage records an LLM call once per idempotency key.
func (t *Tx) AddUsage(ctx context.Context, u Usage) error {
	_, err := t.tx.Exec(ctx, `
		INSERT INTO llm_usage (tenant_id, agent_id, conversation_id, provider, model, input_tokens, output_tokens,
			cost_micro_usd, latency_ms, idempotency_key, key_source)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (tenant_id, idempotency_key) DO NOTHING`,
		t.scope(u.TenantID), u.AgentID, u.ConversationID, u.Provider, u.Model, u.InputTokens, u.OutputTokens,
		u.CostMicroUSD, u.LatencyMS, u.IdempotencyKey, cmp.Or(u.KeySource, KeyPlatform))
	if err != nil {
		return fmt.Errorf("store: add usage: %w", mapErr(err))
	}
	return nil
}

// UsageTotals sums tokens and cost since a time.
type UsageTotals struct {
	Calls        int
	InputTokens  int64
	OutputTokens int64
	CostMicroUSD int64
}

// SumUsage adds up the usage visible in this scope since a time.
func (t *Tx) SumUsage(ctx context.Context, since time.Time) (UsageTotals, error) {
	var u UsageTotals
	err := t.tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
		coalesce(sum(cost_micro_usd), 0) FROM llm_usage WHERE created_at >= $1`, since).
		Scan(&u.Calls, &u.InputTokens, &u.OutputTokens, &u.CostMicroUSD)
	if err != nil {
		return UsageTotals{}, fmt.Errorf("store: sum usage: %w", mapErr(err))
	}
	return u, nil
}
