package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Invitation asks a person, by email, to join a tenant with a role. The link
// it is sent with carries a random token; only the token's hash is stored.
type Invitation struct {
	ID             uuid.UUID
	TenantID       uuid.UUID
	Email          string
	Role           string
	InvitedBy      *uuid.UUID
	InviterName    string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	SentAt         *time.Time
	SendCount      int
	AcceptedAt     *time.Time
	AcceptedUserID *uuid.UUID
	RevokedAt      *time.Time
}

// Invitation states, derived from the timestamps.
const (
	InvitationPending  = "pending"
	InvitationExpired  = "expired"
	InvitationAccepted = "accepted"
	InvitationRevoked  = "revoked"
)

// State says whether the invitation can still be used at now.
func (i Invitation) State(now time.Time) string {
	switch {
	case i.AcceptedAt != nil:
		return InvitationAccepted
	case i.RevokedAt != nil:
		return InvitationRevoked
	case !now.Before(i.ExpiresAt):
		return InvitationExpired
	}
	return InvitationPending
}

const invitationCols = `id, tenant_id, email, role, invited_by, inviter_name, created_at, expires_at, sent_at, send_count,
	accepted_at, accepted_user_id, revoked_at`

func scanInvitation(row pgx.Row) (Invitation, error) {
	var i Invitation
	err := row.Scan(&i.ID, &i.TenantID, &i.Email, &i.Role, &i.InvitedBy, &i.InviterName, &i.CreatedAt, &i.ExpiresAt,
		&i.SentAt, &i.SendCount, &i.AcceptedAt, &i.AcceptedUserID, &i.RevokedAt)
	return i, mapErr(err)
}

func collectInvitations(rows pgx.Rows, err error) ([]Invitation, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invitation, error) { return scanInvitation(r) })
}

// CreateInvitation stores an invitation with the hash of its token. A pending
// invitation for the same address in the tenant is a conflict
// (invitations_pending_email_key).
func (t *Tx) CreateInvitation(ctx context.Context, inv Invitation, tokenHash []byte) (Invitation, error) {
	out, err := scanInvitation(t.tx.QueryRow(ctx, `
		INSERT INTO invitations (tenant_id, email, role, token_hash, invited_by, inviter_name, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+invitationCols,
		t.scope(inv.TenantID), strings.ToLower(strings.TrimSpace(inv.Email)), inv.Role, tokenHash, inv.InvitedBy,
		inv.InviterName, inv.ExpiresAt))
	if err != nil {
		return Invitation{}, fmt.Errorf("store: create invitation: %w", err)
	}
	return out, nil
}

// GetInvitation returns an invitation visible in this scope.
func (t *Tx) GetInvitation(ctx context.Context, id uuid.UUID) (Invitation, error) {
	i, err := scanInvitation(t.tx.QueryRow(ctx, `SELECT `+invitationCols+` FROM invitations WHERE id = $1`, id))
	if err != nil {
		return Invitation{}, fmt.Errorf("store: get invitation: %w", err)
	}
	return i, nil
}

// GetInvitationByTokenHash finds the invitation a link names. The invitee is
// not signed in and the tenant is unknown until the token is found, so this
// runs in platform scope, like a sign-in lookup.
func (t *Tx) GetInvitationByTokenHash(ctx context.Context, hash []byte) (Invitation, error) {
	i, err := scanInvitation(t.tx.QueryRow(ctx, `SELECT `+invitationCols+` FROM invitations WHERE token_hash = $1`, hash))
	if err != nil {
		return Invitation{}, fmt.Errorf("store: get invitation by token: %w", err)
	}
	return i, nil
}

// ListOpenInvitations returns the invitations neither accepted nor revoked
// (expired ones included, so an admin can resend them), newest first.
func (t *Tx) ListOpenInvitations(ctx context.Context) ([]Invitation, error) {
	out, err := collectInvitations(t.tx.Query(ctx, `SELECT `+invitationCols+` FROM invitations
		WHERE accepted_at IS NULL AND revoked_at IS NULL ORDER BY created_at DESC, id`))
	if err != nil {
		return nil, fmt.Errorf("store: list invitations: %w", err)
	}
	return out, nil
}

// OpenInvitationFor returns the open invitation for an address, if any.
func (t *Tx) OpenInvitationFor(ctx context.Context, email string) (Invitation, error) {
	i, err := scanInvitation(t.tx.QueryRow(ctx, `SELECT `+invitationCols+` FROM invitations
		WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL`, strings.ToLower(strings.TrimSpace(email))))
	if err != nil {
		return Invitation{}, fmt.Errorf("store: open invitation for email: %w", err)
	}
	return i, nil
}

// ReissueInvitation gives an open invitation a new token and expiry; the old
// token stops working at once. ErrNotFound when it is not open.
func (t *Tx) ReissueInvitation(ctx context.Context, id uuid.UUID, tokenHash []byte, expiresAt time.Time) (Invitation, error) {
	i, err := scanInvitation(t.tx.QueryRow(ctx, `UPDATE invitations SET token_hash = $2, expires_at = $3, sent_at = NULL
		WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING `+invitationCols, id, tokenHash, expiresAt))
	if err != nil {
		return Invitation{}, fmt.Errorf("store: reissue invitation: %w", err)
	}
	return i, nil
}

// MarkInvitationSent records that the email went out.
func (t *Tx) MarkInvitationSent(ctx context.Context, id uuid.UUID) error {
	if _, err := t.tx.Exec(ctx, `UPDATE invitations SET sent_at = now(), send_count = send_count + 1 WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: mark invitation sent: %w", mapErr(err))
	}
	return nil
}

// RevokeInvitation withdraws an open invitation. ErrNotFound when it is not open.
func (t *Tx) RevokeInvitation(ctx context.Context, id uuid.UUID) (Invitation, error) {
	i, err := scanInvitation(t.tx.QueryRow(ctx, `UPDATE invitations SET revoked_at = now()
		WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING `+invitationCols, id))
	if err != nil {
		return Invitation{}, fmt.Errorf("store: revoke invitation: %w", err)
	}
	return i, nil
}

// ClaimInvitation marks an invitation accepted, once: only when the token
// still matches and it is neither accepted, revoked nor expired. Two
// concurrent claims cannot both succeed. ErrNotFound otherwise.
func (t *Tx) ClaimInvitation(ctx context.Context, id uuid.UUID, tokenHash []byte, userID uuid.UUID) (Invitation, error) {
	i, err := scanInvitation(t.tx.QueryRow(ctx, `UPDATE invitations SET accepted_at = now(), accepted_user_id = $3
		WHERE id = $1 AND token_hash = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
		RETURNING `+invitationCols, id, tokenHash, userID))
	if err != nil {
		return Invitation{}, fmt.Errorf("store: claim invitation: %w", err)
	}
	return i, nil
}

// EmailRegistered reports whether any account uses email. Accounts of every
// tenant count (emails are unique platform-wide), so run it in platform scope.
func (t *Tx) EmailRegistered(ctx context.Context, email string) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)`,
		strings.ToLower(strings.TrimSpace(email))).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: email registered: %w", mapErr(err))
	}
	return ok, nil
}
