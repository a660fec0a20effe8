package v1

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

type tenantJSON struct {
	ID                   string `json:"id"`
	Name                 string `json:"name"`
	Status               string `json:"status"`
	RateLimitPerMinute   *int   `json:"rate_limit_per_minute"`
	ChannelRatePerMinute *int   `json:"channel_rate_per_minute"`
	CreatedAt            string `json:"created_at"`
	UpdatedAt            string `json:"updated_at"`
}

func tenantOut(t store.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID.String(), Name: t.Name, Status: t.Status, RateLimitPerMinute: t.RateLimitPerMinute,
		ChannelRatePerMinute: t.ChannelRatePerMinute, CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt)}
}

func validTenantName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", apperr.Invalid("name", "is required")
	case len([]rune(name)) > 200:
		return "", apperr.Invalid("name", "must be at most 200 characters")
	case strings.ContainsRune(name, 0):
		// Postgres text cannot hold NUL: refuse it here rather than fail there.
		return "", apperr.Invalid("name", "contains invalid characters")
	}
	return name, nil
}

func (a *API) listTenants(c *gin.Context) error {
	var out []tenantJSON
	err := a.Store.WithPlatform(c.Request.Context(), func(tx *store.Tx) error {
		ts, err := tx.ListTenants(c.Request.Context())
		for _, t := range ts {
			out = append(out, tenantOut(t))
		}
		return err
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"tenants": nonNilSlice(out)})
	return nil
}

func (a *API) createTenant(c *gin.Context) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	name, err := validTenantName(req.Name)
	if err != nil {
		return err
	}
	var t store.Tenant
	err = a.Store.WithPlatform(c.Request.Context(), func(tx *store.Tx) error {
		if t, err = tx.CreateTenant(c.Request.Context(), uuid.Nil, name); err != nil {
			return err
		}
		return tx.AppendAudit(c.Request.Context(), store.AuditEvent{TenantID: &t.ID, Actor: actor(c),
			Action: "tenant.create", TargetType: "tenant", TargetID: t.ID.String(), Data: map[string]any{"name": name}})
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, tenantOut(t))
	return nil
}

func (a *API) getTenant(c *gin.Context) error {
	id, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var t store.Tenant
	err = a.Store.WithTenant(c.Request.Context(), id, func(tx *store.Tx) error {
		t, err = tx.GetTenant(c.Request.Context(), id)
		return err
	})
	if err != nil {
		return notFoundAs(err, "tenant")
	}
	c.JSON(http.StatusOK, tenantOut(t))
	return nil
}

type tenantPatch struct {
	Name                 *string `json:"name"`
	Status               *string `json:"status"`
	RateLimitPerMinute   *int    `json:"rate_limit_per_minute"`
	ChannelRatePerMinute *int    `json:"channel_rate_per_minute"`
}

// updateTenant renames a tenant or changes its limits. Suspending and rate
// limits are the platform's call, not the customer's.
func (a *API) updateTenant(c *gin.Context) error {
	id, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req tenantPatch
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	isPlatform := principal(c).Role == store.RolePlatformAdmin
	var patch store.TenantPatch
	if req.Name != nil {
		name, err := validTenantName(*req.Name)
		if err != nil {
			return err
		}
		patch.Name = &name
	}
	if req.Status != nil {
		if !isPlatform {
			return apperr.Forbidden("only a platform admin can suspend or reactivate a tenant")
		}
		if *req.Status != store.TenantActive && *req.Status != store.TenantSuspended {
			return apperr.Invalid("status", "must be active or suspended")
		}
		patch.Status = req.Status
	}
	for _, lim := range []struct {
		field string
		v     *int
	}{{"rate_limit_per_minute", req.RateLimitPerMinute}, {"channel_rate_per_minute", req.ChannelRatePerMinute}} {
		field, v := lim.field, lim.v
		if v == nil {
			continue
		}
		if !isPlatform {
			return apperr.Forbidden("only a platform admin can change rate limits")
		}
		if *v < 1 || *v > 1_000_000 {
			return apperr.Invalid(field, "must be between 1 and 1000000")
		}
	}
	if req.RateLimitPerMinute != nil {
		patch.RateLimitPerMinute = &req.RateLimitPerMinute
	}
	if req.ChannelRatePerMinute != nil {
		patch.ChannelRatePerMinute = &req.ChannelRatePerMinute
	}
	var t store.Tenant
	err = a.Store.WithTenant(c.Request.Context(), id, func(tx *store.Tx) error {
		if t, err = tx.UpdateTenant(c.Request.Context(), id, patch); err != nil {
			return err
		}
		return tx.AppendAudit(c.Request.Context(), store.AuditEvent{Actor: actor(c), Action: "tenant.update",
			TargetType: "tenant", TargetID: id.String()})
	})
	if err != nil {
		return notFoundAs(err, "tenant")
	}
	c.JSON(http.StatusOK, tenantOut(t))
	return nil
}

func (a *API) deleteTenant(c *gin.Context) error {
	id, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	err = a.Store.WithPlatform(c.Request.Context(), func(tx *store.Tx) error {
		if err := tx.DeleteTenant(c.Request.Context(), id); err != nil {
			return err
		}
		return tx.AppendAudit(c.Request.Context(), store.AuditEvent{TenantID: &id, Actor: actor(c),
			Action: "tenant.delete", TargetType: "tenant", TargetID: id.String()})
	})
	if err != nil {
		return notFoundAs(err, "tenant")
	}
	c.Status(http.StatusNoContent)
	return nil
}

// requireTenant answers 404 for a tenant that does not exist. Only a
// platform admin can name one (the guard answers 404 to anyone else for a
// tenant not theirs), and row-level security alone would show it as empty.
func requireTenant(ctx context.Context, tx *store.Tx, id uuid.UUID) error {
	if _, err := tx.GetTenant(ctx, id); err != nil {
		return notFoundAs(err, "tenant")
	}
	return nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
