package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Roles, from most to least powerful.
const (
	RolePlatformAdmin    = "platform_admin"
	RoleCustomerAdmin    = "customer_admin"
	RoleCustomerOperator = "customer_operator"
)

// User is a person who signs in to the portal or the API.
type User struct {
	ID           uuid.UUID
	TenantID     *uuid.UUID // nil for platform admins
	Email        string
	Name         string
	PasswordHash string
	Role         string
	CreatedAt    time.Time
	LastLoginAt  *time.Time
	DisabledAt   *time.Time
}

const userCols = `id, tenant_id, email, name, password_hash, role, created_at, last_login_at, disabled_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.Name, &u.PasswordHash, &u.Role, &u.CreatedAt, &u.LastLoginAt, &u.DisabledAt)
	return u, mapErr(err)
}

// CreateUser inserts a user; the email is stored lower-cased. A tenant-scoped
// transaction always creates the user in its own tenant.
func (t *Tx) CreateUser(ctx context.Context, u User) (User, error) {
	if t.tenantID != uuid.Nil {
		tid := t.tenantID
		u.TenantID = &tid
	}
	if u.ID == uuid.Nil {
		u.ID = uuid.New()
	}
	out, err := scanUser(t.tx.QueryRow(ctx, `
		INSERT INTO users (id, tenant_id, email, name, password_hash, role)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+userCols,
		u.ID, u.TenantID, strings.ToLower(strings.TrimSpace(u.Email)), u.Name, u.PasswordHash, u.Role))
	if err != nil {
		return User{}, fmt.Errorf("store: create user: %w", err)
	}
	return out, nil
}

// GetUser returns a user visible in this scope.
func (t *Tx) GetUser(ctx context.Context, id uuid.UUID) (User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return User{}, fmt.Errorf("store: get user: %w", err)
	}
	return u, nil
}

// GetUserByEmail finds a user by email, case-insensitively. Sign-in uses it
// in platform scope, before any tenant is known.
func (t *Tx) GetUserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE email = $1`,
		strings.ToLower(strings.TrimSpace(email))))
	if err != nil {
		return User{}, fmt.Errorf("store: get user by email: %w", err)
	}
	return u, nil
}

// ListUsers returns the users visible in this scope, by email.
func (t *Tx) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return out, nil
}

// CountUsersWithRole counts the users holding role in this scope.
func (t *Tx) CountUsersWithRole(ctx context.Context, role string) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = $1`, role).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count users: %w", mapErr(err))
	}
	return n, nil
}

// UserPatch holds the fields an update may change; nil leaves a field alone.
type UserPatch struct {
	Name         *string
	PasswordHash *string
	Role         *string
	Disabled     *bool
}

// UpdateUser applies a patch.
func (t *Tx) UpdateUser(ctx context.Context, id uuid.UUID, p UserPatch) (User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `
		UPDATE users SET
			name = coalesce($2, name),
			password_hash = coalesce($3, password_hash),
			role = coalesce($4, role),
			disabled_at = CASE WHEN $5::boolean IS NULL THEN disabled_at
			                   WHEN $5 THEN coalesce(disabled_at, now()) ELSE NULL END
		WHERE id = $1 RETURNING `+userCols, id, p.Name, p.PasswordHash, p.Role, p.Disabled))
	if err != nil {
		return User{}, fmt.Errorf("store: update user: %w", err)
	}
	return u, nil
}

// TouchLogin records a successful sign-in.
func (t *Tx) TouchLogin(ctx context.Context, id uuid.UUID) error {
	if _, err := t.tx.Exec(ctx, `UPDATE users SET last_login_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: touch login: %w", mapErr(err))
	}
	return nil
}

// DeleteUser removes a user.
func (t *Tx) DeleteUser(ctx context.Context, id uuid.UUID) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete user: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: delete user: %w", ErrNotFound)
	}
	return nil
}
