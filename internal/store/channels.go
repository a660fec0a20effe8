package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Channel kinds.
const (
	ChannelSlack    = "slack"
	ChannelWhatsApp = "whatsapp"
	// ChannelPortal is the portal's test chat: no connection, no token; its
	// replies are the messages Deliver records.
	ChannelPortal = "portal"
)

// ChannelConnection routes a Slack workspace or WhatsApp number to an agent.
type ChannelConnection struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	AgentID     uuid.UUID
	Kind        string
	ExternalID  string // Slack team ID or WhatsApp phone-number ID
	DisplayName string
	BotUserID   string
	Secret      []byte // secrets.Box ciphertext; never leaves the server in clear
	Status      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// WhatsApp: the WhatsApp Business Account of the number, and the approved
	// template sent when a reply falls outside the 24-hour window (both or
	// neither; an empty name on connect keeps the current one).
	WABAID           string
	TemplateName     string
	TemplateLanguage string
	// TokenError is set when the channel refused the stored token (WhatsApp
	// code 190): the operator must connect again with a new one.
	TokenError   string
	TokenErrorAt *time.Time
}

const channelCols = `id, tenant_id, agent_id, kind, external_id, display_name, bot_user_id, secret, status, created_at, updated_at,
	waba_id, template_name, template_language, token_error, token_error_at`

func scanChannel(row pgx.Row) (ChannelConnection, error) {
	var c ChannelConnection
	err := row.Scan(&c.ID, &c.TenantID, &c.AgentID, &c.Kind, &c.ExternalID, &c.DisplayName, &c.BotUserID, &c.Secret,
		&c.Status, &c.CreatedAt, &c.UpdatedAt, &c.WABAID, &c.TemplateName, &c.TemplateLanguage, &c.TokenError, &c.TokenErrorAt)
	return c, mapErr(err)
}

// UpsertChannelConnection connects an external workspace or number to an
// agent, or re-points and re-keys the tenant's existing connection (a repeated
// OAuth install). A workspace already connected to another tenant is a conflict:
// RLS hides that row, so the insert hits the unique key instead of updating it.
func (t *Tx) UpsertChannelConnection(ctx context.Context, c ChannelConnection) (ChannelConnection, error) {
	out, err := scanChannel(t.tx.QueryRow(ctx, `
		INSERT INTO channel_connections (tenant_id, agent_id, kind, external_id, display_name, bot_user_id, secret,
			waba_id, template_name, template_language)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (kind, external_id) DO UPDATE SET
			agent_id = EXCLUDED.agent_id, display_name = EXCLUDED.display_name,
			bot_user_id = EXCLUDED.bot_user_id, secret = EXCLUDED.secret, status = 'active', updated_at = now(),
			waba_id = EXCLUDED.waba_id,
			template_name = CASE WHEN EXCLUDED.template_name = '' THEN channel_connections.template_name ELSE EXCLUDED.template_name END,
			template_language = CASE WHEN EXCLUDED.template_name = '' THEN channel_connections.template_language ELSE EXCLUDED.template_language END,
			-- A new token: whatever was wrong with the old one no longer is.
			token_error = '', token_error_at = NULL
		WHERE channel_connections.tenant_id = EXCLUDED.tenant_id
		RETURNING `+channelCols,
		t.scope(c.TenantID), c.AgentID, c.Kind, c.ExternalID, c.DisplayName, c.BotUserID, c.Secret,
		c.WABAID, c.TemplateName, c.TemplateLanguage))
	if err != nil {
		// The conflicting row belongs to another tenant: RLS refuses the update
		// path (or the WHERE filters it out). Report it as the conflict it is.
		if errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) {
			return ChannelConnection{}, fmt.Errorf("store: connect channel: %w", &ConstraintError{
				Kind: ErrConflict, Constraint: "channel_connections_kind_external_id_key", Err: err})
		}
		return ChannelConnection{}, fmt.Errorf("store: connect channel: %w", err)
	}
	return out, nil
}

// GetChannelByExternalID finds the connection for an inbound webhook. Webhook
// routing runs it in platform scope: the external ID is how the tenant is found.
func (t *Tx) GetChannelByExternalID(ctx context.Context, kind, externalID string) (ChannelConnection, error) {
	c, err := scanChannel(t.tx.QueryRow(ctx,
		`SELECT `+channelCols+` FROM channel_connections WHERE kind = $1 AND external_id = $2`, kind, externalID))
	if err != nil {
		return ChannelConnection{}, fmt.Errorf("store: get channel %s/%s: %w", kind, externalID, err)
	}
	return c, nil
}

// GetChannel returns a connection visible in this scope.
func (t *Tx) GetChannel(ctx context.Context, id uuid.UUID) (ChannelConnection, error) {
	c, err := scanChannel(t.tx.QueryRow(ctx, `SELECT `+channelCols+` FROM channel_connections WHERE id = $1`, id))
	if err != nil {
		return ChannelConnection{}, fmt.Errorf("store: get channel: %w", err)
	}
	return c, nil
}

// ListChannels returns the connections visible in this scope.
func (t *Tx) ListChannels(ctx context.Context) ([]ChannelConnection, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+channelCols+` FROM channel_connections ORDER BY kind, created_at`)
	if err != nil {
		return nil, fmt.Errorf("store: list channels: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChannelConnection, error) { return scanChannel(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list channels: %w", err)
	}
	return out, nil
}

// SetChannelTemplate sets (or, with both empty, clears) the template a
// WhatsApp connection sends outside the 24-hour window.
func (t *Tx) SetChannelTemplate(ctx context.Context, id uuid.UUID, name, language string) (ChannelConnection, error) {
	c, err := scanChannel(t.tx.QueryRow(ctx, `UPDATE channel_connections SET template_name = $2, template_language = $3,
		updated_at = now() WHERE id = $1 RETURNING `+channelCols, id, name, language))
	if err != nil {
		return ChannelConnection{}, fmt.Errorf("store: set channel template: %w", err)
	}
	return c, nil
}

// MarkChannelTokenError records that the channel refused the token sealed
// as secret. first is true only for the call that found that token still
// unmarked, so the operator is told once, not at every failed send; a send
// with a token the operator has since replaced marks nothing.
func (t *Tx) MarkChannelTokenError(ctx context.Context, id uuid.UUID, secret []byte, reason string) (first bool, err error) {
	tag, err := t.tx.Exec(ctx, `UPDATE channel_connections SET token_error = left($2, 1000), token_error_at = now(),
		updated_at = now() WHERE id = $1 AND token_error_at IS NULL AND secret = $3`, id, reason, secret)
	if err != nil {
		return false, fmt.Errorf("store: mark channel token error: %w", mapErr(err))
	}
	return tag.RowsAffected() == 1, nil
}

// CountAgentChannels counts the connections of kind that route to an agent.
func (t *Tx) CountAgentChannels(ctx context.Context, agentID uuid.UUID, kind string) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM channel_connections WHERE agent_id = $1 AND kind = $2`,
		agentID, kind).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count agent channels: %w", mapErr(err))
	}
	return n, nil
}

// DeleteChannel disconnects a workspace or number.
func (t *Tx) DeleteChannel(ctx context.Context, id uuid.UUID) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM channel_connections WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete channel: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: delete channel: %w", ErrNotFound)
	}
	return nil
}

// SecretAAD is the associated data that binds a connection's encrypted token
// to its tenant and workspace: a ciphertext copied to another row won't open.
func SecretAAD(tenantID uuid.UUID, kind, externalID string) []byte {
	return []byte("channel-token:" + tenantID.String() + ":" + kind + ":" + externalID)
}
