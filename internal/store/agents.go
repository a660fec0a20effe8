package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Agent is an AI employee as its tenant designed it.
type Agent struct {
	ID           uuid.UUID
	TenantID     uuid.UUID
	Name         string
	Role         string
	Persona      string
	SystemPrompt string
	Models       []string // ordered provider/model fallback chain; empty: platform default
	Tools        []string
	Escalation   Escalation
	KBTopK       int    // chunks kb_search returns; 0 on create takes the default (5)
	Status       string // active | inactive
	// BusinessFunction is what the agent does for the business (declared in
	// the Agent Designer): on WhatsApp, Meta's policy limits it to that.
	BusinessFunction string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Escalation holds when a conversation is handed to a human. Stored as jsonb;
// the agent service validates it against a JSON schema before it gets here.
type Escalation struct {
	// Keywords in a user's message that hand the conversation to a human.
	Keywords []string `json:"keywords,omitempty"`
	// After this many turns in a row where the model could not answer, hand off.
	MaxFailedTurns int `json:"max_failed_turns,omitempty"`
	// What the user is told when handed off.
	HandoffMessage string `json:"handoff_message,omitempty"`
	// Where support staff are notified (a Slack channel ID), if anywhere.
	NotifyChannel string `json:"notify_channel,omitempty"`
	// Enabled switches escalation on or off; absent, it is on when a rule
	// (keywords, max_failed_turns) is set, as documents written before the
	// switch existed meant.
	Enabled *bool `json:"enabled,omitempty"`
	// UserRequest: the user asking for a person hands off (absent: yes).
	UserRequest *bool `json:"user_request,omitempty"`
	// OnError: a model chain that stays unavailable or refuses, or the
	// budget's hard stop, hands off (absent: yes).
	OnError *bool `json:"on_error,omitempty"`
	// CooldownMinutes after a conversation came back from people, during
	// which only the user asking again hands it off (absent: 10).
	CooldownMinutes *int `json:"cooldown_minutes,omitempty"`
}

// DefaultKBTopK is how many chunks kb_search returns unless the agent says.
const DefaultKBTopK = 5

// Agent statuses.
const (
	AgentActive   = "active"
	AgentInactive = "inactive"
)

const agentCols = `id, tenant_id, name, role, persona, system_prompt, models, tools, escalation, kb_top_k, status, created_at, updated_at,
	business_function`

func scanAgent(row pgx.Row) (Agent, error) {
	var a Agent
	err := row.Scan(&a.ID, &a.TenantID, &a.Name, &a.Role, &a.Persona, &a.SystemPrompt, &a.Models, &a.Tools,
		&a.Escalation, &a.KBTopK, &a.Status, &a.CreatedAt, &a.UpdatedAt, &a.BusinessFunction)
	return a, mapErr(err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CreateAgent inserts an agent in the transaction's tenant.
func (t *Tx) CreateAgent(ctx context.Context, a Agent) (Agent, error) {
	if a.Status == "" {
		a.Status = AgentActive
	}
	if a.KBTopK == 0 {
		a.KBTopK = DefaultKBTopK
	}
	out, err := scanAgent(t.tx.QueryRow(ctx, `
		INSERT INTO agents (tenant_id, name, role, persona, system_prompt, models, tools, escalation, status, kb_top_k, business_function)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING `+agentCols,
		t.scope(a.TenantID), a.Name, a.Role, a.Persona, a.SystemPrompt, nonNil(a.Models), nonNil(a.Tools), a.Escalation, a.Status, a.KBTopK,
		a.BusinessFunction))
	if err != nil {
		return Agent{}, fmt.Errorf("store: create agent: %w", err)
	}
	return out, nil
}

// GetAgent returns an agent visible in this scope.
func (t *Tx) GetAgent(ctx context.Context, id uuid.UUID) (Agent, error) {
	a, err := scanAgent(t.tx.QueryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE id = $1`, id))
	if err != nil {
		return Agent{}, fmt.Errorf("store: get agent: %w", err)
	}
	return a, nil
}

// ListAgents returns the agents visible in this scope, oldest first.
func (t *Tx) ListAgents(ctx context.Context) ([]Agent, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+agentCols+` FROM agents ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list agents: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Agent, error) { return scanAgent(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list agents: %w", err)
	}
	return out, nil
}

// UpdateAgent replaces an agent's editable fields.
func (t *Tx) UpdateAgent(ctx context.Context, a Agent) (Agent, error) {
	out, err := scanAgent(t.tx.QueryRow(ctx, `
		UPDATE agents SET name = $2, role = $3, persona = $4, system_prompt = $5, models = $6, tools = $7,
			escalation = $8, status = $9, kb_top_k = coalesce(nullif($10, 0), kb_top_k), business_function = $11, updated_at = now()
		WHERE id = $1 RETURNING `+agentCols,
		a.ID, a.Name, a.Role, a.Persona, a.SystemPrompt, nonNil(a.Models), nonNil(a.Tools), a.Escalation, a.Status, a.KBTopK,
		a.BusinessFunction))
	if err != nil {
		return Agent{}, fmt.Errorf("store: update agent: %w", err)
	}
	return out, nil
}

// DeleteAgent removes an agent. It fails with ErrReferenced while a channel
// connection still routes to it.
func (t *Tx) DeleteAgent(ctx context.Context, id uuid.UUID) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM agents WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete agent: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: delete agent: %w", ErrNotFound)
	}
	return nil
}
