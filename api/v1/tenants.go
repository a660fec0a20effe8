package v1

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
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

func (a *API) listTenants(c *gin.Context) error {
	list, err := a.Accounts.ListTenants(c.Request.Context())
	if err != nil {
		return err
	}
	out := make([]tenantJSON, 0, len(list))
	for _, t := range list {
		out = append(out, tenantOut(t.Tenant))
	}
	c.JSON(http.StatusOK, gin.H{"tenants": out})
	return nil
}

func (a *API) createTenant(c *gin.Context) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	t, err := a.Accounts.CreateTenant(c.Request.Context(), principal(c), req.Name)
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
	t, err := a.Accounts.GetTenant(c.Request.Context(), id)
	if err != nil {
		return err
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

// updateTenant renames a tenant, suspends or reactivates it, or changes its
// limits; the service says who may change what.
func (a *API) updateTenant(c *gin.Context) error {
	id, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req tenantPatch
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	up := store.TenantPatch{Name: req.Name, Status: req.Status}
	// null, like an absent field, leaves a limit alone.
	if req.RateLimitPerMinute != nil {
		up.RateLimitPerMinute = &req.RateLimitPerMinute
	}
	if req.ChannelRatePerMinute != nil {
		up.ChannelRatePerMinute = &req.ChannelRatePerMinute
	}
	t, err := a.Accounts.UpdateTenant(c.Request.Context(), principal(c), id, up)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, tenantOut(t))
	return nil
}

func (a *API) deleteTenant(c *gin.Context) error {
	id, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	if err := a.Accounts.DeleteTenantUnconfirmed(c.Request.Context(), principal(c), id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
