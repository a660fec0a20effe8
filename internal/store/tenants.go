package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Tenant is a customer business.
type Tenant struct {
	ID                   uuid.UUID
	Name                 string
	Status               string // active | suspended
	RateLimitPerMinute   *int   // nil: the platform default
	ChannelRatePerMinute *int
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// Tenant statuses.
const (
	TenantActive    = "active"
	TenantSuspended = "suspended"
)

const tenantCols = `id, name, status, rate_limit_per_minute, channel_rate_per_minute, created_at, updated_at`

func scanTenant(row pgx.Row) (Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Name, &t.Status, &t.RateLimitPerMinute, &t.ChannelRatePerMinute, &t.CreatedAt, &t.UpdatedAt)
	return t, mapErr(err)
}

// CreateTenant inserts a tenant. In a tenant-scoped transaction the ID must be
// the transaction's tenant (sign-up picks the ID first); in platform scope a
// zero ID gets a fresh one.
func (t *Tx) CreateTenant(ctx context.Context, id uuid.UUID, name string) (Tenant, error) {
	id = t.scope(id)
	if id == uuid.Nil {
		id = uuid.New()
	}
	ten, err := scanTenant(t.tx.QueryRow(ctx,
		`INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING `+tenantCols, id, name))
	if err != nil {
		return Tenant{}, fmt.Errorf("store: create tenant: %w", err)
	}
	return ten, nil
}

// GetTenant returns one tenant visible in this scope.
func (t *Tx) GetTenant(ctx context.Context, id uuid.UUID) (Tenant, error) {
	ten, err := scanTenant(t.tx.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = $1`, id))
	if err != nil {
		return Tenant{}, fmt.Errorf("store: get tenant: %w", err)
	}
	return ten, nil
}

// ListTenants returns every tenant visible in this scope, newest first.
func (t *Tx) ListTenants(ctx context.Context) ([]Tenant, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+tenantCols+` FROM tenants ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list tenants: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list tenants: %w", err)
	}
	return out, nil
}

// TenantPatch holds the fields an update may change; nil leaves a field alone.
type TenantPatch struct {
	Name                 *string
	Status               *string
	RateLimitPerMinute   **int
	ChannelRatePerMinute **int
}

// UpdateTenant applies a patch and returns the tenant as stored.
func (t *Tx) UpdateTenant(ctx context.Context, id uuid.UUID, p TenantPatch) (Tenant, error) {
	cur, err := t.GetTenant(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	if p.Name != nil {
		cur.Name = *p.Name
	}
	if p.Status != nil {
		cur.Status = *p.Status
	}
	if p.RateLimitPerMinute != nil {
		cur.RateLimitPerMinute = *p.RateLimitPerMinute
	}
	if p.ChannelRatePerMinute != nil {
		cur.ChannelRatePerMinute = *p.ChannelRatePerMinute
	}
	ten, err := scanTenant(t.tx.QueryRow(ctx, `
		UPDATE tenants SET name = $2, status = $3, rate_limit_per_minute = $4, channel_rate_per_minute = $5, updated_at = now()
		WHERE id = $1 RETURNING `+tenantCols,
		id, cur.Name, cur.Status, cur.RateLimitPerMinute, cur.ChannelRatePerMinute))
	if err != nil {
		return Tenant{}, fmt.Errorf("store: update tenant: %w", err)
	}
	return ten, nil
}

// DeleteTenant removes a tenant and, by cascade, everything it owns (the
// audit trail stays).
func (t *Tx) DeleteTenant(ctx context.Context, id uuid.UUID) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete tenant: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: delete tenant: %w", ErrNotFound)
	}
	return nil
}
