package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// APIToken is a bearer token's record; the token itself is never stored.
type APIToken struct {
	ID         uuid.UUID
	TenantID   *uuid.UUID
	UserID     uuid.UUID
	Name       string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

const tokenCols = `id, tenant_id, user_id, name, created_at, expires_at, last_used_at, revoked_at`

func scanToken(row pgx.Row) (APIToken, error) {
	var k APIToken
	err := row.Scan(&k.ID, &k.TenantID, &k.UserID, &k.Name, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt, &k.RevokedAt)
	return k, mapErr(err)
}

// CreateAPIToken stores the SHA-256 of a new token for user.
func (t *Tx) CreateAPIToken(ctx context.Context, user User, name string, hash []byte, expiresAt *time.Time) (APIToken, error) {
	k, err := scanToken(t.tx.QueryRow(ctx, `
		INSERT INTO api_tokens (tenant_id, user_id, name, token_hash, expires_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+tokenCols,
		user.TenantID, user.ID, name, hash, expiresAt))
	if err != nil {
		return APIToken{}, fmt.Errorf("store: create api token: %w", err)
	}
	return k, nil
}

// LookupAPIToken finds a live (unrevoked, unexpired) token by hash, with its
// user, and records its use. Run in platform scope: the tenant is unknown
// until the token is found.
func (t *Tx) LookupAPIToken(ctx context.Context, hash []byte) (APIToken, User, error) {
	var k APIToken
	var u User
	err := t.tx.QueryRow(ctx, `
		UPDATE api_tokens k SET last_used_at = now()
		FROM users u
		WHERE k.token_hash = $1 AND u.id = k.user_id
		  AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
		  AND u.disabled_at IS NULL
		RETURNING k.id, k.tenant_id, k.user_id, k.name, k.created_at, k.expires_at, k.last_used_at, k.revoked_at,
		          u.id, u.tenant_id, u.email, u.name, u.password_hash, u.role, u.created_at, u.last_login_at, u.disabled_at`,
		hash).Scan(&k.ID, &k.TenantID, &k.UserID, &k.Name, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt, &k.RevokedAt,
		&u.ID, &u.TenantID, &u.Email, &u.Name, &u.PasswordHash, &u.Role, &u.CreatedAt, &u.LastLoginAt, &u.DisabledAt)
	if err != nil {
		return APIToken{}, User{}, fmt.Errorf("store: lookup api token: %w", mapErr(err))
	}
	return k, u, nil
}

// ListAPITokens lists a user's tokens, newest first.
func (t *Tx) ListAPITokens(ctx context.Context, userID uuid.UUID) ([]APIToken, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: list api tokens: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIToken, error) { return scanToken(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list api tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken marks a token revoked; it stops working at once.
func (t *Tx) RevokeAPIToken(ctx context.Context, id uuid.UUID) error {
	tag, err := t.tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: revoke api token: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: revoke api token: %w", ErrNotFound)
	}
	return nil
}
