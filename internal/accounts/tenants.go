package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
)

// The platform admin's tenant lifecycle. Callers have checked the permission
// (tenants:write); these run in platform scope.

// ListTenants returns every tenant with its sizes.
func (s *Service) ListTenants(ctx context.Context) ([]store.TenantSummary, error) {
	var out []store.TenantSummary
	err := s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListTenantSummaries(ctx)
		return err
	})
	return out, err
}

// GetTenant returns one tenant, in its own scope.
func (s *Service) GetTenant(ctx context.Context, id uuid.UUID) (store.Tenant, error) {
	var t store.Tenant
	err := s.Store.WithTenant(ctx, id, func(tx *store.Tx) error {
		var err error
		t, err = tx.GetTenant(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Tenant{}, notFound(err, "organisation")
	}
	return t, err
}

// CreateTenant creates an empty tenant; its first admin is then invited.
func (s *Service) CreateTenant(ctx context.Context, actor authz.Principal, name string) (store.Tenant, error) {
	name, msg := NormaliseText(name, MaxTenantName, true)
	if msg != "" {
		return store.Tenant{}, apperr.Fields{apperr.Invalid("name", msg)}
	}
	var t store.Tenant
	err := s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		if t, err = tx.CreateTenant(ctx, uuid.Nil, name); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{TenantID: &t.ID, Actor: Actor(actor), Action: "tenant.create",
			TargetType: "tenant", TargetID: t.ID.String(), Data: map[string]any{"name": name}})
	})
	if err != nil {
		return store.Tenant{}, fmt.Errorf("accounts: create tenant: %w", err)
	}
	return t, nil
}

// RenameTenant renames a tenant. A customer admin may rename its own.
func (s *Service) RenameTenant(ctx context.Context, actor authz.Principal, id uuid.UUID, name string) (store.Tenant, error) {
	name, msg := NormaliseText(name, MaxTenantName, true)
	if msg != "" {
		return store.Tenant{}, apperr.Fields{apperr.Invalid("name", msg)}
	}
	var t store.Tenant
	err := s.Store.WithTenant(ctx, id, func(tx *store.Tx) error {
		cur, err := tx.GetTenant(ctx, id)
		if err != nil {
			return notFound(err, "organisation")
		}
		if t, err = tx.UpdateTenant(ctx, id, store.TenantPatch{Name: &name}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: Actor(actor), Action: "tenant.rename", TargetType: "tenant",
			TargetID: id.String(), Data: map[string]any{"from": cur.Name, "to": name}})
	})
	return t, err
}

// SetTenantStatus suspends or reactivates a tenant. A suspended tenant's
// people cannot sign in, and their sessions end at their next request.
func (s *Service) SetTenantStatus(ctx context.Context, actor authz.Principal, id uuid.UUID, status string) (store.Tenant, error) {
	if status != store.TenantActive && status != store.TenantSuspended {
		return store.Tenant{}, apperr.Fields{apperr.Invalid("status", "must be active or suspended")}
	}
	if actor.Role != store.RolePlatformAdmin {
		return store.Tenant{}, apperr.Forbidden("only a platform admin can suspend or reactivate an organisation")
	}
	var t store.Tenant
	err := s.Store.WithTenant(ctx, id, func(tx *store.Tx) error {
		cur, err := tx.GetTenant(ctx, id)
		if err != nil {
			return notFound(err, "organisation")
		}
		if t, err = tx.UpdateTenant(ctx, id, store.TenantPatch{Status: &status}); err != nil {
			return err
		}
		if cur.Status == status {
			return nil
		}
		action := "tenant.suspend"
		if status == store.TenantActive {
			action = "tenant.reactivate"
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: Actor(actor), Action: action, TargetType: "tenant", TargetID: id.String()})
	})
	return t, err
}

// DeleteTenant deletes a tenant and everything it owns, once confirm repeats
// its name exactly. The audit trail stays.
func (s *Service) DeleteTenant(ctx context.Context, actor authz.Principal, id uuid.UUID, confirm string) error {
	return s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetTenant(ctx, id)
		if err != nil {
			return notFound(err, "organisation")
		}
		if strings.TrimSpace(confirm) != cur.Name {
			return apperr.Fields{apperr.Invalid("confirm", "type the organisation's name exactly as shown to confirm")}
		}
		if err := tx.DeleteTenant(ctx, id); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{TenantID: &id, Actor: Actor(actor), Action: "tenant.delete",
			TargetType: "tenant", TargetID: id.String(), Data: map[string]any{"name": cur.Name}})
	})
}
