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

// The tenant lifecycle, for the portal and the REST API. Callers have checked
// the route's permission (tenants:write, or tenant:write for a customer
// admin's own tenant); the rules beyond it live here: only a platform admin
// suspends a tenant or changes its rate limits, and the portal's delete needs
// the name typed.

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
		return store.Tenant{}, notFound(err, "tenant")
	}
	return t, err
}

// RequireTenant answers 404 for a tenant that does not exist, inside a
// transaction in its scope. Only a platform admin can name such a tenant (the
// route guard answers 404 to anyone else for a tenant not theirs), and
// row-level security alone would show it as empty.
func RequireTenant(ctx context.Context, tx *store.Tx, id uuid.UUID) error {
	if _, err := tx.GetTenant(ctx, id); err != nil {
		return notFound(err, "tenant")
	}
	return nil
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

// MaxRatePerMinute bounds a tenant's rate limits.
const MaxRatePerMinute = 1_000_000

// checkTenantPatch validates a change to a tenant (its name normalised) and
// whether actor may make it: a customer admin may rename its own tenant, but
// suspending it and changing its rate limits are the platform's call. The
// first problem is returned: field errors as apperr.Fields.
func checkTenantPatch(actor authz.Principal, up store.TenantPatch) (store.TenantPatch, error) {
	isPlatform := actor.Role == store.RolePlatformAdmin
	if up.Name != nil {
		name, msg := NormaliseText(*up.Name, MaxTenantName, true)
		if msg != "" {
			return up, apperr.Fields{apperr.Invalid("name", msg)}
		}
		up.Name = &name
	}
	if up.Status != nil {
		if !isPlatform {
			return up, apperr.Forbidden("only a platform admin can suspend or reactivate a tenant")
		}
		if *up.Status != store.TenantActive && *up.Status != store.TenantSuspended {
			return up, apperr.Fields{apperr.Invalid("status", "must be active or suspended")}
		}
	}
	for _, lim := range []struct {
		field string
		v     **int
	}{{"rate_limit_per_minute", up.RateLimitPerMinute}, {"channel_rate_per_minute", up.ChannelRatePerMinute}} {
		if lim.v == nil {
			continue
		}
		if !isPlatform {
			return up, apperr.Forbidden("only a platform admin can change rate limits")
		}
		if v := *lim.v; v != nil && (*v < 1 || *v > MaxRatePerMinute) {
			return up, apperr.Fields{apperr.Invalid(lim.field, fmt.Sprintf("must be between 1 and %d", MaxRatePerMinute))}
		}
	}
	return up, nil
}

// UpdateTenant renames a tenant, suspends or reactivates it, or changes its
// rate limits (nil fields stay; a limit set to nil goes back to the platform's
// default), in one transaction with an audit event for each change. A
// suspended tenant's people cannot sign in, and their sessions end at their
// next request.
func (s *Service) UpdateTenant(ctx context.Context, actor authz.Principal, id uuid.UUID, up store.TenantPatch) (store.Tenant, error) {
	up, err := checkTenantPatch(actor, up)
	if err != nil {
		return store.Tenant{}, err
	}
	var t store.Tenant
	err = s.Store.WithTenant(ctx, id, func(tx *store.Tx) error {
		cur, err := tx.GetTenant(ctx, id)
		if err != nil {
			return notFound(err, "tenant")
		}
		if t, err = tx.UpdateTenant(ctx, id, up); err != nil {
			return err
		}
		var events []store.AuditEvent
		if t.Name != cur.Name {
			events = append(events, store.AuditEvent{Action: "tenant.rename", Data: map[string]any{"from": cur.Name, "to": t.Name}})
		}
		if t.Status != cur.Status {
			action := "tenant.suspend"
			if t.Status == store.TenantActive {
				action = "tenant.reactivate"
			}
			events = append(events, store.AuditEvent{Action: action})
		}
		if !sameLimit(t.RateLimitPerMinute, cur.RateLimitPerMinute) || !sameLimit(t.ChannelRatePerMinute, cur.ChannelRatePerMinute) {
			events = append(events, store.AuditEvent{Action: "tenant.limits_change", Data: map[string]any{
				"rate_limit_per_minute": t.RateLimitPerMinute, "channel_rate_per_minute": t.ChannelRatePerMinute}})
		}
		for _, e := range events {
			e.Actor, e.TargetType, e.TargetID = Actor(actor), "tenant", id.String()
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	return t, err
}

func sameLimit(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// RenameTenant renames a tenant. A customer admin may rename its own.
func (s *Service) RenameTenant(ctx context.Context, actor authz.Principal, id uuid.UUID, name string) (store.Tenant, error) {
	return s.UpdateTenant(ctx, actor, id, store.TenantPatch{Name: &name})
}

// SetTenantStatus suspends or reactivates a tenant (platform admins only).
func (s *Service) SetTenantStatus(ctx context.Context, actor authz.Principal, id uuid.UUID, status string) (store.Tenant, error) {
	return s.UpdateTenant(ctx, actor, id, store.TenantPatch{Status: &status})
}

// DeleteTenant deletes a tenant and everything it owns, once confirm repeats
// its name exactly (the portal asks for it). The audit trail stays.
func (s *Service) DeleteTenant(ctx context.Context, actor authz.Principal, id uuid.UUID, confirm string) error {
	return s.deleteTenant(ctx, actor, id, func(cur store.Tenant) error {
		if strings.TrimSpace(confirm) != cur.Name {
			return apperr.Fields{apperr.Invalid("confirm", "type the organisation's name exactly as shown to confirm")}
		}
		return nil
	})
}

// DeleteTenantUnconfirmed deletes a tenant without a typed confirmation, for
// callers whose request is itself the confirmation (DELETE on the API).
func (s *Service) DeleteTenantUnconfirmed(ctx context.Context, actor authz.Principal, id uuid.UUID) error {
	return s.deleteTenant(ctx, actor, id, func(store.Tenant) error { return nil })
}

func (s *Service) deleteTenant(ctx context.Context, actor authz.Principal, id uuid.UUID, confirm func(store.Tenant) error) error {
	return s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetTenant(ctx, id)
		if err != nil {
			return notFound(err, "tenant")
		}
		if err := confirm(cur); err != nil {
			return err
		}
		if err := tx.DeleteTenant(ctx, id); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{TenantID: &id, Actor: Actor(actor), Action: "tenant.delete",
			TargetType: "tenant", TargetID: id.String(), Data: map[string]any{"name": cur.Name}})
	})
}
