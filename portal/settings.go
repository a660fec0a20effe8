package portal

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

func (p *Portal) settings(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	p.settingsPage(c, tenant, http.StatusOK, nil, "")
}

func (p *Portal) settingsUpdate(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	name := c.PostForm("name")
	t, err := p.d.Accounts.RenameTenant(c.Request.Context(), viewerOf(c).Principal, tenant.ID, name)
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.settingsPage(c, tenant, http.StatusUnprocessableEntity, &Form{Values: map[string]string{"name": name}, Errors: fields}, "")
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, "/t/"+tenant.ID.String()+"/settings", "success", "The organisation is now called "+t.Name+".")
	}
}

func str(m map[string]any, k string) string {
	if v, ok := m[k].(string); ok {
		return v
	}
	return ""
}

// describe puts an audit event into words.
func describe(e store.AuditEvent) string {
	d := e.Data
	switch e.Action {
	case "tenant.signup":
		return "created the organisation " + str(d, "name")
	case "tenant.create":
		return "created the organisation " + str(d, "name")
	case "tenant.rename":
		return "renamed the organisation from " + str(d, "from") + " to " + str(d, "to")
	case "tenant.suspend":
		return "suspended the organisation"
	case "tenant.reactivate":
		return "reactivated the organisation"
	case "tenant.limits_change":
		return "changed the organisation's rate limits"
	case "agent.create":
		return "created the agent " + str(d, "name")
	case "agent.update":
		return "edited the agent " + str(d, "name")
	case "agent.activate":
		return "activated the agent " + str(d, "name")
	case "agent.deactivate":
		return "deactivated the agent " + str(d, "name")
	case "agent.delete":
		return "deleted the agent " + str(d, "name")
	case "invitation.create":
		return "invited " + str(d, "email") + " as " + roleWord(str(d, "role"))
	case "invitation.resend":
		return "resent the invitation to " + str(d, "email")
	case "invitation.revoke":
		return "revoked the invitation to " + str(d, "email")
	case "invitation.accept":
		return "accepted the invitation and joined as " + roleWord(str(d, "role"))
	case "user.role_change":
		return "changed " + str(d, "email") + " from " + roleWord(str(d, "from")) + " to " + roleWord(str(d, "to"))
	case "user.remove":
		return "removed " + str(d, "email") + " from the team"
	case "user.create":
		return "added " + str(d, "email") + " as " + roleWord(str(d, "role"))
	case "user.password_change":
		return "changed their password"
	case "user.profile_update":
		return "updated their profile"
	case "auth.sign_in":
		return "signed in"
	case "auth.sign_out":
		return "signed out"
	case "auth.token.issue":
		return "created an API token"
	case "channel.connect":
		return "connected a " + channelLabel(str(d, "kind")) + " channel"
	case "llm_key.add":
		return "added the organisation's own " + llm.ProviderLabel(str(d, "provider")) + " key"
	case "llm_key.rotate":
		return "replaced the organisation's own " + llm.ProviderLabel(str(d, "provider")) + " key"
	case "llm_key.remove":
		return "removed the organisation's own " + llm.ProviderLabel(str(d, "provider")) + " key"
	case "onboarding.complete":
		return "finished setting up the organisation"
	case "channel.disconnect":
		return "disconnected the " + channelLabel(str(d, "kind")) + " channel " + str(d, "external_id")
	case "support.update":
		return "changed the support settings (Slack channel " + firstOf(str(d, "slack_channel_id"), "none") + ")"
	}
	return e.Action
}

func roleWord(role string) string {
	switch role {
	case store.RoleCustomerAdmin:
		return "Admin"
	case store.RoleCustomerOperator:
		return "Operator"
	case store.RolePlatformAdmin:
		return "Platform admin"
	}
	return role
}
