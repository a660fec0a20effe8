package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Read models for the admin portal: summaries and breakdowns that would take
// several round trips through the per-aggregate methods.

// TenantSummary is a tenant with the sizes a platform admin scans for.
type TenantSummary struct {
	Tenant
	Users         int
	Agents        int
	Conversations int
	LastActivity  *time.Time
}

// ListTenantSummaries returns every tenant visible in this scope with counts,
// newest first. Platform scope shows all tenants.
func (t *Tx) ListTenantSummaries(ctx context.Context) ([]TenantSummary, error) {
	rows, err := t.tx.Query(ctx, `SELECT t.id, t.name, t.status, t.rate_limit_per_minute, t.channel_rate_per_minute,
			t.created_at, t.updated_at,
			(SELECT count(*) FROM users u WHERE u.tenant_id = t.id),
			(SELECT count(*) FROM agents a WHERE a.tenant_id = t.id),
			(SELECT count(*) FROM conversations c WHERE c.tenant_id = t.id),
			(SELECT max(c.last_activity_at) FROM conversations c WHERE c.tenant_id = t.id)
		FROM tenants t ORDER BY t.created_at DESC, t.id`)
	if err != nil {
		return nil, fmt.Errorf("store: list tenant summaries: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TenantSummary, error) {
		var s TenantSummary
		err := r.Scan(&s.ID, &s.Name, &s.Status, &s.RateLimitPerMinute, &s.ChannelRatePerMinute, &s.CreatedAt, &s.UpdatedAt,
			&s.Users, &s.Agents, &s.Conversations, &s.LastActivity)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list tenant summaries: %w", mapErr(err))
	}
	return out, nil
}

// PlatformCounts sizes the platform (or, in tenant scope, the tenant).
type PlatformCounts struct {
	Tenants, ActiveTenants, Users, Agents, Conversations int
}

// CountPlatform counts what is visible in this scope.
func (t *Tx) CountPlatform(ctx context.Context) (PlatformCounts, error) {
	var c PlatformCounts
	err := t.tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM tenants WHERE status = 'active'),
		(SELECT count(*) FROM users), (SELECT count(*) FROM agents), (SELECT count(*) FROM conversations)`).
		Scan(&c.Tenants, &c.ActiveTenants, &c.Users, &c.Agents, &c.Conversations)
	if err != nil {
		return PlatformCounts{}, fmt.Errorf("store: count platform: %w", mapErr(err))
	}
	return c, nil
}

// AgentWithTenant is an agent with its tenant's name, for cross-tenant lists.
type AgentWithTenant struct {
	Agent
	TenantName string
}

// ListAgentsWithTenant returns agents visible in this scope with their
// tenant's name, most recently changed first.
func (t *Tx) ListAgentsWithTenant(ctx context.Context, limit int) ([]AgentWithTenant, error) {
	if limit <= 0 || limit > 1000 {
		limit = 500
	}
	rows, err := t.tx.Query(ctx, `SELECT a.id, a.tenant_id, a.name, a.role, a.persona, a.system_prompt, a.models, a.tools,
			a.escalation, a.status, a.created_at, a.updated_at, t.name
		FROM agents a JOIN tenants t ON t.id = a.tenant_id ORDER BY a.updated_at DESC, a.id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list agents with tenant: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AgentWithTenant, error) {
		var a AgentWithTenant
		err := r.Scan(&a.ID, &a.TenantID, &a.Name, &a.Role, &a.Persona, &a.SystemPrompt, &a.Models, &a.Tools,
			&a.Escalation, &a.Status, &a.CreatedAt, &a.UpdatedAt, &a.TenantName)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list agents with tenant: %w", mapErr(err))
	}
	return out, nil
}

// UserWithTenant is a user with its tenant's name ("" for platform admins).
type UserWithTenant struct {
	User
	TenantName string
}

// ListUsersWithTenant returns users visible in this scope with their tenant's
// name: platform admins first, then by tenant and email.
func (t *Tx) ListUsersWithTenant(ctx context.Context, limit int) ([]UserWithTenant, error) {
	if limit <= 0 || limit > 1000 {
		limit = 500
	}
	rows, err := t.tx.Query(ctx, `SELECT u.id, u.tenant_id, u.email, u.name, u.password_hash, u.role, u.created_at,
			u.last_login_at, u.disabled_at, coalesce(t.name, '')
		FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id
		ORDER BY (u.tenant_id IS NOT NULL), t.name, u.email LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list users with tenant: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UserWithTenant, error) {
		var u UserWithTenant
		err := r.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &u.PasswordHash, &u.Role, &u.CreatedAt, &u.LastLoginAt,
			&u.DisabledAt, &u.TenantName)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list users with tenant: %w", mapErr(err))
	}
	return out, nil
}

// ConversationCounts counts conversations by status.
type ConversationCounts struct {
	Active, Escalated, Closed int
}

// Total is every conversation.
func (c ConversationCounts) Total() int { return c.Active + c.Escalated + c.Closed }

// CountConversations counts the conversations visible in this scope by status.
func (t *Tx) CountConversations(ctx context.Context) (ConversationCounts, error) {
	var c ConversationCounts
	err := t.tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'escalated'),
		count(*) FILTER (WHERE status = 'closed') FROM conversations`).Scan(&c.Active, &c.Escalated, &c.Closed)
	if err != nil {
		return ConversationCounts{}, fmt.Errorf("store: count conversations: %w", mapErr(err))
	}
	return c, nil
}

// ConversationFilter narrows a conversation list; zero values match all.
type ConversationFilter struct {
	Status  string
	AgentID uuid.UUID
	Limit   int
}

// FilterConversations lists conversations by last activity, newest first.
func (t *Tx) FilterConversations(ctx context.Context, f ConversationFilter) ([]Conversation, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	var agent *uuid.UUID
	if f.AgentID != uuid.Nil {
		agent = &f.AgentID
	}
	rows, err := t.tx.Query(ctx, `SELECT `+conversationCols+` FROM conversations
		WHERE ($1 = '' OR status = $1) AND ($2::uuid IS NULL OR agent_id = $2)
		ORDER BY last_activity_at DESC, id LIMIT $3`, f.Status, agent, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: filter conversations: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) { return scanConversation(r) })
	if err != nil {
		return nil, fmt.Errorf("store: filter conversations: %w", err)
	}
	return out, nil
}

// UsageRow is usage summed over one group (a day, a model or an agent).
type UsageRow struct {
	Day       time.Time  // by day
	Provider  string     // by model
	Model     string     // by model
	AgentID   *uuid.UUID // by agent (nil: calls outside an agent)
	AgentName string     // by agent
	UsageTotals
}

func collectUsage(rows pgx.Rows, err error, scan func(pgx.CollectableRow, *UsageRow) error) ([]UsageRow, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsageRow, error) {
		var u UsageRow
		err := scan(r, &u)
		return u, err
	})
}

// UsageByDay sums usage per UTC day since a time, oldest first, with a row
// for every day including the empty ones.
func (t *Tx) UsageByDay(ctx context.Context, since time.Time) ([]UsageRow, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT d.day, count(u.id), coalesce(sum(u.input_tokens), 0), coalesce(sum(u.output_tokens), 0),
		       coalesce(sum(u.cost_micro_usd), 0)
		FROM generate_series(date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC'),
		                     date_trunc('day', now() AT TIME ZONE 'UTC'), interval '1 day') AS d(day)
		LEFT JOIN llm_usage u ON u.created_at >= $1 AND date_trunc('day', u.created_at AT TIME ZONE 'UTC') = d.day
		GROUP BY d.day ORDER BY d.day`, since)
	out, err := collectUsage(rows, err, func(r pgx.CollectableRow, u *UsageRow) error {
		return r.Scan(&u.Day, &u.Calls, &u.InputTokens, &u.OutputTokens, &u.CostMicroUSD)
	})
	if err != nil {
		return nil, fmt.Errorf("store: usage by day: %w", err)
	}
	return out, nil
}

// UsageByModel sums usage per provider/model since a time, costliest first.
func (t *Tx) UsageByModel(ctx context.Context, since time.Time) ([]UsageRow, error) {
	rows, err := t.tx.Query(ctx, `SELECT provider, model, count(*), sum(input_tokens), sum(output_tokens), sum(cost_micro_usd)
		FROM llm_usage WHERE created_at >= $1 GROUP BY provider, model ORDER BY 6 DESC, 3 DESC, 1, 2`, since)
	out, err := collectUsage(rows, err, func(r pgx.CollectableRow, u *UsageRow) error {
		return r.Scan(&u.Provider, &u.Model, &u.Calls, &u.InputTokens, &u.OutputTokens, &u.CostMicroUSD)
	})
	if err != nil {
		return nil, fmt.Errorf("store: usage by model: %w", err)
	}
	return out, nil
}

// UsageByAgent sums usage per agent since a time, costliest first.
func (t *Tx) UsageByAgent(ctx context.Context, since time.Time) ([]UsageRow, error) {
	rows, err := t.tx.Query(ctx, `SELECT u.agent_id, coalesce(a.name, ''), count(*), sum(u.input_tokens), sum(u.output_tokens),
			sum(u.cost_micro_usd)
		FROM llm_usage u LEFT JOIN agents a ON a.id = u.agent_id
		WHERE u.created_at >= $1 GROUP BY u.agent_id, a.name ORDER BY 6 DESC, 3 DESC, 2`, since)
	out, err := collectUsage(rows, err, func(r pgx.CollectableRow, u *UsageRow) error {
		return r.Scan(&u.AgentID, &u.AgentName, &u.Calls, &u.InputTokens, &u.OutputTokens, &u.CostMicroUSD)
	})
	if err != nil {
		return nil, fmt.Errorf("store: usage by agent: %w", err)
	}
	return out, nil
}
