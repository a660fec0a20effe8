package portal

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

// Platform admin pages: every tenant, agent and user across the platform.

type adminOverviewData struct {
	Counts  store.PlatformCounts
	Recent  []store.TenantSummary
	Conv    store.ConversationCounts
	Usage30 store.UsageTotals
}

func (p *Portal) adminOverview(c *gin.Context) {
	ctx := c.Request.Context()
	var d adminOverviewData
	err := p.d.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		if d.Counts, err = tx.CountPlatform(ctx); err != nil {
			return err
		}
		if d.Conv, err = tx.CountConversations(ctx); err != nil {
			return err
		}
		if d.Usage30, err = tx.SumUsage(ctx, p.now().AddDate(0, 0, -30)); err != nil {
			return err
		}
		list, err := tx.ListTenantSummaries(ctx)
		if len(list) > 6 {
			list = list[:6]
		}
		d.Recent = list
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, http.StatusOK, "admin/overview", &Page{Title: "Platform overview", Section: "admin", Data: &d})
}

type adminTenantsData struct {
	Tenants []store.TenantSummary
}

func (p *Portal) adminTenantsPage(c *gin.Context, status int, form *Form) {
	list, err := p.d.Accounts.ListTenants(c.Request.Context())
	if err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, status, "admin/tenants", &Page{Title: "Organisations", Section: "admin-tenants", Form: form,
		Data: &adminTenantsData{Tenants: list}})
}

func (p *Portal) adminTenants(c *gin.Context) { p.adminTenantsPage(c, http.StatusOK, nil) }

func (p *Portal) adminCreateTenant(c *gin.Context) {
	name := c.PostForm("name")
	t, err := p.d.Accounts.CreateTenant(c.Request.Context(), viewerOf(c).Principal, name)
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.adminTenantsPage(c, http.StatusUnprocessableEntity, &Form{Values: map[string]string{"name": name}, Errors: fields})
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, "/t/"+t.ID.String()+"/users", "success", t.Name+" was created. Invite its first admin below.")
	}
}

func (p *Portal) adminRenameTenant(c *gin.Context) {
	id, ok := pathUUID(c, "tenant_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	t, err := p.d.Accounts.RenameTenant(c.Request.Context(), viewerOf(c).Principal, id, c.PostForm("name"))
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.back(c, "/admin/tenants/"+id.String(), "error", "The new name "+fields[0].Message+".")
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, "/admin/tenants/"+id.String(), "success", "Renamed to "+t.Name+".")
	}
}

func (p *Portal) adminTenantStatus(c *gin.Context) {
	id, ok := pathUUID(c, "tenant_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	t, err := p.d.Accounts.SetTenantStatus(c.Request.Context(), viewerOf(c).Principal, id, c.PostForm("status"))
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.back(c, "/admin/tenants/"+id.String(), "error", "Choose whether to suspend or reactivate the organisation.")
	case err != nil:
		p.fail(c, err)
	case t.Status == store.TenantSuspended:
		p.back(c, "/admin/tenants/"+id.String(), "success", t.Name+" is suspended: its people are signed out and cannot sign in.")
	default:
		p.back(c, "/admin/tenants/"+id.String(), "success", t.Name+" is active again; its people can sign in.")
	}
}

type adminTenantData struct {
	Tenant store.TenantSummary
}

// adminTenant is a platform admin's page for one organisation: rename,
// suspend or reactivate, delete.
func (p *Portal) adminTenant(c *gin.Context) {
	t, ok := p.tenantSummary(c)
	if !ok {
		return
	}
	p.render(c, http.StatusOK, "admin/tenant", &Page{Title: t.Name, Section: "admin-tenants",
		Crumbs: []Crumb{{"Organisations", "/admin/tenants"}, {t.Name, ""}}, Form: &Form{Values: map[string]string{"name": t.Name}},
		Data: &adminTenantData{Tenant: t}})
}

type deleteTenantData struct {
	Tenant  store.TenantSummary
	Confirm string
}

func (p *Portal) tenantSummary(c *gin.Context) (store.TenantSummary, bool) {
	id, ok := pathUUID(c, "tenant_id")
	if !ok {
		p.notFoundPage(c)
		return store.TenantSummary{}, false
	}
	list, err := p.d.Accounts.ListTenants(c.Request.Context())
	if err != nil {
		p.fail(c, err)
		return store.TenantSummary{}, false
	}
	for _, t := range list {
		if t.ID == id {
			return t, true
		}
	}
	p.notFoundPage(c)
	return store.TenantSummary{}, false
}

func (p *Portal) adminDeleteTenantPage(c *gin.Context) {
	t, ok := p.tenantSummary(c)
	if !ok {
		return
	}
	p.render(c, http.StatusOK, "admin/delete_tenant", &Page{Title: "Delete " + t.Name, Section: "admin-tenants",
		Crumbs: []Crumb{{"Organisations", "/admin/tenants"}, {t.Name, "/admin/tenants/" + t.ID.String()}, {"Delete", ""}}, Data: &deleteTenantData{Tenant: t}})
}

func (p *Portal) adminDeleteTenant(c *gin.Context) {
	t, ok := p.tenantSummary(c)
	if !ok {
		return
	}
	confirm := c.PostForm("confirm")
	err := p.d.Accounts.DeleteTenant(c.Request.Context(), viewerOf(c).Principal, t.ID, confirm)
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.render(c, http.StatusUnprocessableEntity, "admin/delete_tenant", &Page{Title: "Delete " + t.Name, Section: "admin-tenants",
			Crumbs: []Crumb{{"Organisations", "/admin/tenants"}, {t.Name, "/admin/tenants/" + t.ID.String()}, {"Delete", ""}},
			Form:   &Form{Values: map[string]string{"confirm": confirm}, Errors: fields}, Data: &deleteTenantData{Tenant: t, Confirm: confirm}})
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, "/admin/tenants", "success", t.Name+" and everything it owned were deleted. The audit trail keeps a record.")
	}
}

type adminAgentsData struct {
	Agents []store.AgentWithTenant
}

func (p *Portal) adminAgents(c *gin.Context) {
	ctx := c.Request.Context()
	var d adminAgentsData
	err := p.d.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		d.Agents, err = tx.ListAgentsWithTenant(ctx, 500)
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, http.StatusOK, "admin/agents", &Page{Title: "All agents", Section: "admin-agents", Data: &d})
}

type adminUsersData struct {
	Users []store.UserWithTenant
}

func (p *Portal) adminUsers(c *gin.Context) {
	ctx := c.Request.Context()
	var d adminUsersData
	err := p.d.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		d.Users, err = tx.ListUsersWithTenant(ctx, 500)
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, http.StatusOK, "admin/users", &Page{Title: "All users", Section: "admin-users", Data: &d})
}
