package portal

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

type teamData struct {
	Members     []store.User
	Invitations []store.Invitation
	Roles       []string
	Admins      int
	TTLHours    int
}

func (p *Portal) teamPage(c *gin.Context, tenant *store.Tenant, status int, form *Form) {
	ctx := c.Request.Context()
	d := teamData{Roles: accounts.TenantRoles, TTLHours: int(p.d.Invitations.TTL.Hours())}
	if d.TTLHours == 0 {
		d.TTLHours = 72
	}
	var err error
	if d.Members, err = p.d.Accounts.ListUsers(ctx, tenant.ID); err != nil {
		p.fail(c, err)
		return
	}
	for _, m := range d.Members {
		if m.Role == store.RoleCustomerAdmin {
			d.Admins++
		}
	}
	pg := &Page{Title: "Team", Section: "team", Tenant: tenant, Form: form, Data: &d}
	p.fill(c, pg)
	if pg.Can("read", "invitations") {
		if d.Invitations, err = p.d.Invitations.List(ctx, tenant.ID); err != nil {
			p.fail(c, err)
			return
		}
	}
	p.render(c, status, "team", pg)
}

func (p *Portal) team(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	p.teamPage(c, tenant, http.StatusOK, nil)
}

func (p *Portal) teamURL(t *store.Tenant) string { return "/t/" + t.ID.String() + "/users" }

func (p *Portal) invite(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	email, role := c.PostForm("email"), c.PostForm("role")
	out, err := p.d.Invitations.Invite(c.Request.Context(), viewerOf(c).Principal, tenant.ID, email, role)
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.teamPage(c, tenant, http.StatusUnprocessableEntity, &Form{Values: map[string]string{"email": email, "role": role}, Errors: fields})
	case err != nil:
		p.fail(c, err)
	case !out.Delivered:
		p.back(c, p.teamURL(tenant), "error", "The invitation to "+out.Invitation.Email+
			" was created, but the email could not be sent. Check the mail settings, then use Resend.")
	default:
		p.back(c, p.teamURL(tenant), "success", "Invitation sent to "+out.Invitation.Email+
			". The link works once and expires in "+plural(int(out.Invitation.ExpiresAt.Sub(out.Invitation.CreatedAt).Hours()+0.5), "hour", "hours")+".")
	}
}

// invitationInView resolves the tenant and the invitation named in the path;
// when it returns false the response (a 404 page) is written. Another
// tenant's invitation is a plain 404.
func (p *Portal) invitationInView(c *gin.Context) (*store.Tenant, uuid.UUID, bool) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return nil, uuid.Nil, false
	}
	id, ok := pathUUID(c, "invitation_id")
	if !ok {
		p.notFoundPage(c)
		return nil, uuid.Nil, false
	}
	if _, err := p.d.Invitations.Get(c.Request.Context(), tenant.ID, id); err != nil {
		p.fail(c, err)
		return nil, uuid.Nil, false
	}
	return tenant, id, true
}

func (p *Portal) inviteResend(c *gin.Context) {
	tenant, id, ok := p.invitationInView(c)
	if !ok {
		return
	}
	out, err := p.d.Invitations.Resend(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id)
	switch {
	case err != nil && apperr.From(err).Status == http.StatusNotFound:
		p.back(c, p.teamURL(tenant), "error", "That invitation is no longer pending: it was accepted or revoked.")
	case err != nil:
		p.fail(c, err)
	case !out.Delivered:
		p.back(c, p.teamURL(tenant), "error", "A new link for "+out.Invitation.Email+" was issued (the old one no longer works), but the email could not be sent.")
	default:
		p.back(c, p.teamURL(tenant), "success", "A new invitation was sent to "+out.Invitation.Email+". The previous link no longer works.")
	}
}

func (p *Portal) inviteRevoke(c *gin.Context) {
	tenant, id, ok := p.invitationInView(c)
	if !ok {
		return
	}
	inv, err := p.d.Invitations.Revoke(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id)
	switch {
	case err != nil && apperr.From(err).Status == http.StatusNotFound:
		p.back(c, p.teamURL(tenant), "error", "That invitation is no longer pending: it was accepted or revoked.")
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, p.teamURL(tenant), "success", "The invitation to "+inv.Email+" was revoked; its link no longer works.")
	}
}

func (p *Portal) userRole(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "user_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	role := c.PostForm("role")
	u, err := p.d.Accounts.UpdateUser(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id, accounts.UserUpdate{Role: &role})
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.back(c, p.teamURL(tenant), "error", "Choose Admin or Operator.")
	case err != nil && apperr.From(err).Status == http.StatusConflict:
		p.back(c, p.teamURL(tenant), "error", capitalise(apperr.From(err).Message)+".")
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, p.teamURL(tenant), "success", displayName(u)+" is now "+article(accounts.RoleLabel(u.Role))+".")
	}
}

func (p *Portal) userRemove(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "user_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	ctx := c.Request.Context()
	u, err := p.d.Accounts.GetUser(ctx, tenant.ID, id)
	if err == nil {
		err = p.d.Accounts.RemoveUser(ctx, viewerOf(c).Principal, tenant.ID, id)
	}
	switch {
	case err != nil && apperr.From(err).Status == http.StatusConflict:
		p.back(c, p.teamURL(tenant), "error", capitalise(apperr.From(err).Message)+".")
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, p.teamURL(tenant), "success", displayName(u)+" was removed from "+tenant.Name+" and signed out.")
	}
}

func displayName(u store.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

func article(role string) string {
	switch role {
	case "Admin", "Operator":
		return "an " + role
	}
	return "a " + role
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	if r[0] >= 'a' && r[0] <= 'z' {
		r[0] -= 'a' - 'A'
	}
	return string(r)
}
