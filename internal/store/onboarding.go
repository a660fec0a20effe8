package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Onboarding is a tenant's progress through the setup stepper.
type Onboarding struct {
	TenantID      uuid.UUID
	AgentID       *uuid.UUID // the agent the stepper configures
	Channel       string     // how the channel step was done: slack, whatsapp or portal ("" not yet)
	ChannelDoneAt *time.Time
	AgentDoneAt   *time.Time
	CompletedAt   *time.Time
	UpdatedAt     time.Time
}

const onboardingCols = `tenant_id, agent_id, coalesce(channel, ''), channel_done_at, agent_done_at, completed_at, updated_at`

// GetOnboarding returns the tenant's progress; a tenant that has not started
// gets the zero progress (not an error).
func (t *Tx) GetOnboarding(ctx context.Context, tenantID uuid.UUID) (Onboarding, error) {
	var o Onboarding
	err := t.tx.QueryRow(ctx, `SELECT `+onboardingCols+` FROM onboarding WHERE tenant_id = $1`, tenantID).
		Scan(&o.TenantID, &o.AgentID, &o.Channel, &o.ChannelDoneAt, &o.AgentDoneAt, &o.CompletedAt, &o.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Onboarding{TenantID: tenantID}, nil
	}
	if err != nil {
		return Onboarding{}, fmt.Errorf("store: get onboarding: %w", mapErr(err))
	}
	return o, nil
}

// OnboardingChange is what one step records; nil fields are left alone.
type OnboardingChange struct {
	AgentID   *uuid.UUID
	Channel   string // sets the channel step done with this channel ("" leaves it)
	AgentDone bool
	Completed bool
}

// UpdateOnboarding records a step of the tenant's setup. A step's time is
// kept from the first time it was done.
func (t *Tx) UpdateOnboarding(ctx context.Context, tenantID uuid.UUID, c OnboardingChange) error {
	_, err := t.tx.Exec(ctx, `
		INSERT INTO onboarding AS o (tenant_id, agent_id, channel, channel_done_at, agent_done_at, completed_at)
		VALUES ($1, $2, NULLIF($3, ''), CASE WHEN $3 <> '' THEN now() END,
		        CASE WHEN $4 THEN now() END, CASE WHEN $5 THEN now() END)
		ON CONFLICT (tenant_id) DO UPDATE SET
			agent_id = coalesce($2, o.agent_id),
			channel = coalesce(NULLIF($3, ''), o.channel),
			channel_done_at = CASE WHEN $3 <> '' THEN coalesce(o.channel_done_at, now()) ELSE o.channel_done_at END,
			agent_done_at = CASE WHEN $4 THEN coalesce(o.agent_done_at, now()) ELSE o.agent_done_at END,
			completed_at = CASE WHEN $5 THEN coalesce(o.completed_at, now()) ELSE o.completed_at END,
			updated_at = now()`,
		t.scope(tenantID), c.AgentID, c.Channel, c.AgentDone, c.Completed)
	if err != nil {
		return fmt.Errorf("store: update onboarding: %w", mapErr(err))
	}
	return nil
}

// HasReply reports whether an agent of the tenant has answered on channel
// ("" any channel but the portal's test chat); agentID nil: any agent.
func (t *Tx) HasReply(ctx context.Context, channel string, agentID *uuid.UUID) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM conversations c JOIN messages m ON m.tenant_id = c.tenant_id AND m.conversation_id = c.id
		WHERE (c.channel = $1 OR ($1 = '' AND c.channel <> 'portal')) AND m.role = 'assistant'
		  AND ($2::uuid IS NULL OR c.agent_id = $2))`, channel, agentID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: has reply: %w", mapErr(err))
	}
	return ok, nil
}

// GetConversationByKey finds the conversation of a channel thread.
func (t *Tx) GetConversationByKey(ctx context.Context, channel, externalKey string) (Conversation, error) {
	c, err := scanConversation(t.tx.QueryRow(ctx, `SELECT `+conversationCols+` FROM conversations
		WHERE channel = $1 AND external_key = $2`, channel, externalKey))
	if err != nil {
		return Conversation{}, fmt.Errorf("store: get conversation by key: %w", err)
	}
	return c, nil
}
