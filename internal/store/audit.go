package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AuditEvent is one entry of the append-only audit trail.
type AuditEvent struct {
	ID         int64
	TenantID   *uuid.UUID // nil for platform-level events
	Actor      string     // "user:<id>", "system", "slack:<user>"
	Action     string     // "agent.create", "auth.token", ...
	TargetType string
	TargetID   string
	Data       map[string]any
	CreatedAt  time.Time
}

// AppendAudit adds an event. In a tenant transaction the event belongs to it.
func (t *Tx) AppendAudit(ctx context.Context, e AuditEvent) error {
	if t.tenantID != uuid.Nil {
		tid := t.tenantID
		e.TenantID = &tid
	}
	if e.Data == nil {
		e.Data = map[string]any{}
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO audit_events (tenant_id, actor, action, target_type, target_id, data)
		VALUES ($1, $2, $3, $4, $5, $6)`, e.TenantID, e.Actor, e.Action, e.TargetType, e.TargetID, e.Data)
	if err != nil {
		return fmt.Errorf("store: append audit %s: %w", e.Action, mapErr(err))
	}
	return nil
}

// ListAudit returns the newest events visible in this scope.
func (t *Tx) ListAudit(ctx context.Context, limit int) ([]AuditEvent, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := t.tx.Query(ctx, `SELECT id, tenant_id, actor, action, target_type, target_id, data, created_at
		FROM audit_events ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, &e.TenantID, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &e.Data, &e.CreatedAt)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	return out, nil
}
