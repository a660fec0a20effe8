package portal

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/store"
)

// "Add to Slack": Slack's OAuth v2 install, from the portal.
//
// GET /slack/install picks the tenant and agent, remembers a random state
// in the signed-in session (one pending install per session, usable once,
// for slackStateTTL) and sends the browser to Slack's consent page with the
// manifest's bot scopes. Slack sends it back to GET /slack/oauth/callback
// with the state and a code (or error=access_denied); the callback checks
// the state against the session, trades the code for the bot token
// (oauth.v2.access) and connects the workspace to the agent through the
// designer, the same rules as connecting a workspace by hand.

const (
	keySlackOAuth = "slack_oauth"
	slackStateTTL = 10 * time.Minute
)

// slackPending is an install the session started.
type slackPending struct {
	State    string    `json:"state"`
	TenantID uuid.UUID `json:"tenant_id"`
	AgentID  uuid.UUID `json:"agent_id"`
	ReturnTo string    `json:"return_to"`
	Expires  time.Time `json:"expires"`
}

// slackOAuthEnabled reports whether this server can run "Add to Slack".
func (p *Portal) slackOAuthEnabled() bool { return p.d.Config.SlackClientID != "" }

// slackRedirectURI is where Slack sends the browser back: the manifest's
// redirect URL.
func (p *Portal) slackRedirectURI() string { return p.d.Config.PublicURL + "/slack/oauth/callback" }

// slackPageData is the data of the Slack pages: a result of an install, or
// how to connect without "Add to Slack".
type slackPageData struct {
	Status    int
	Kind      string // connected | denied | state | conflict | refused | unavailable | choose | setup
	Heading   string
	Message   string
	RetryURL  string // try the install again
	BackURL   string
	BackLabel string
	// setup: the server has no Slack client ID.
	Manifest    string
	PublicURL   string
	ChannelsURL string
}

func (p *Portal) slackPage(c *gin.Context, tenant *store.Tenant, d slackPageData) {
	p.render(c, d.Status, "slack", &Page{Title: d.Heading, Section: "channels", Tenant: tenant,
		Crumbs: []Crumb{{"Channels", d.ChannelsURL}, {"Add to Slack", ""}}, Data: &d})
}

// installTenant is the tenant an install is for: the viewer's own, or for a
// platform admin the one named by tenant_id.
func (p *Portal) installTenant(c *gin.Context, param string) (*store.Tenant, bool) {
	v := viewerOf(c)
	if v.Tenant != nil {
		if param != "" && param != v.Tenant.ID.String() {
			p.notFoundPage(c)
			return nil, false
		}
		return v.Tenant, true
	}
	id, err := uuid.Parse(param)
	if err != nil {
		p.renderError(c, http.StatusBadRequest, "Which organisation?",
			"Open the Channels page of the organisation you want to add Slack to, and press Add to Slack there.")
		return nil, false
	}
	t, err := p.d.Accounts.GetTenant(c.Request.Context(), id)
	if err != nil {
		p.fail(c, err)
		return nil, false
	}
	return &t, true
}

// slackInstall starts an install.
func (p *Portal) slackInstall(c *gin.Context) {
	tenant, ok := p.installTenant(c, c.Query("tenant_id"))
	if !ok {
		return
	}
	ctx := c.Request.Context()
	base := "/t/" + tenant.ID.String()
	if !p.slackOAuthEnabled() {
		p.slackPage(c, tenant, slackPageData{Status: http.StatusOK, Kind: "setup", Heading: "Add to Slack is not set up on this server",
			Manifest: slack.Manifest(p.d.Config.PublicURL), PublicURL: p.d.Config.PublicURL, ChannelsURL: base + "/channels"})
		return
	}
	agentID, err := uuid.Parse(c.Query("agent_id"))
	if err != nil {
		list, lerr := p.d.Designer.List(ctx, tenant.ID)
		if lerr != nil {
			p.fail(c, lerr)
			return
		}
		if len(list) != 1 {
			msg := "Choose the agent that answers in Slack, then press Add to Slack."
			if len(list) == 0 {
				msg = "Design an agent first: Slack messages need an agent to answer them."
			}
			p.back(c, base+"/channels#add-to-slack", "info", msg)
			return
		}
		agentID = list[0].ID
	}
	if _, err := p.d.Designer.Get(ctx, tenant.ID, agentID); err != nil {
		p.fail(c, err)
		return
	}
	returnTo := localNext(c.Query("return_to"))
	if returnTo != base && !strings.HasPrefix(returnTo, base+"/") && !strings.HasPrefix(returnTo, base+"?") {
		returnTo = base + "/channels"
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	pending := slackPending{State: base64.RawURLEncoding.EncodeToString(b), TenantID: tenant.ID, AgentID: agentID,
		ReturnTo: returnTo, Expires: time.Now().Add(slackStateTTL)}
	raw, _ := json.Marshal(pending)
	p.sessions.Put(ctx, keySlackOAuth, string(raw))
	to, err := slack.AuthorizeURL(p.d.Config.SlackAPIURL, p.d.Config.SlackClientID, slack.BotScopes(), p.slackRedirectURI(), pending.State)
	if err != nil {
		p.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, to)
}

// slackCallback finishes an install Slack sent back.
func (p *Portal) slackCallback(c *gin.Context) {
	ctx := c.Request.Context()
	v := viewerOf(c)
	tenant := v.Tenant // the page's shell; replaced by the install's tenant once known
	state := c.Query("state")
	var pending slackPending
	raw := p.sessions.GetString(ctx, keySlackOAuth)
	matched := raw != "" && json.Unmarshal([]byte(raw), &pending) == nil && state != "" &&
		subtle.ConstantTimeCompare([]byte(state), []byte(pending.State)) == 1
	channels := "/"
	if tenant != nil {
		channels = "/t/" + tenant.ID.String() + "/channels"
	}
	if !matched {
		// Forged, replayed (the state was used), or from another browser:
		// nothing is exchanged. A pending install of this session stays.
		p.d.Logger.WarnContext(ctx, "slack install refused: unknown state", "has_pending", raw != "", "has_state", state != "")
		p.slackPage(c, tenant, slackPageData{Status: http.StatusBadRequest, Kind: "state",
			Heading: "This Slack installation could not be verified",
			Message: "The link Slack sent you back with does not belong to an installation started in this browser, " +
				"or it was used already. Nothing was connected. Start again from the Channels page.",
			BackURL: channels, BackLabel: "Back to channels", ChannelsURL: channels})
		return
	}
	p.sessions.Remove(ctx, keySlackOAuth) // single-use, whatever happens next
	if v.Tenant != nil && v.Tenant.ID != pending.TenantID {
		p.notFoundPage(c)
		return
	}
	if tenant == nil {
		t, err := p.d.Accounts.GetTenant(ctx, pending.TenantID)
		if err != nil {
			p.fail(c, err)
			return
		}
		tenant = &t
	}
	base := "/t/" + tenant.ID.String()
	retry := "/slack/install?" + url.Values{"tenant_id": {tenant.ID.String()}, "agent_id": {pending.AgentID.String()},
		"return_to": {pending.ReturnTo}}.Encode()
	page := slackPageData{RetryURL: retry, BackURL: pending.ReturnTo, BackLabel: "Back", ChannelsURL: base + "/channels"}
	if strings.HasPrefix(pending.ReturnTo, base+"/onboarding") {
		page.BackLabel = "Back to setup"
	}
	switch {
	case time.Now().After(pending.Expires):
		page.Status, page.Kind, page.Heading = http.StatusBadRequest, "state", "The Slack installation took too long"
		page.Message = "For your security an installation must be finished within 10 minutes of starting it. Nothing was connected. Try again."
		p.slackPage(c, tenant, page)
		return
	case c.Query("error") == "access_denied":
		page.Status, page.Kind, page.Heading = http.StatusOK, "denied", "Slack was not connected"
		page.Message = "You cancelled on Slack's page, so Konstruct was not added to the workspace and nothing changed. " +
			"When you are ready, try again; you need to be allowed to install apps in the workspace."
		p.slackPage(c, tenant, page)
		return
	case c.Query("error") != "":
		page.Status, page.Kind, page.Heading = http.StatusBadRequest, "refused", "Slack did not complete the installation"
		page.Message = "Slack answered “" + truncate(c.Query("error"), 80) + "”. Nothing was connected. Try again."
		p.slackPage(c, tenant, page)
		return
	case c.Query("code") == "":
		page.Status, page.Kind, page.Heading = http.StatusBadRequest, "refused", "Slack did not complete the installation"
		page.Message = "Slack sent you back without an installation code. Nothing was connected. Try again."
		p.slackPage(c, tenant, page)
		return
	}
	conn, err := p.d.Designer.InstallSlack(ctx, v.Principal, tenant.ID, designer.SlackInstall{
		ClientID: p.d.Config.SlackClientID, ClientSecret: p.d.Config.SlackClientSecret,
		Code: c.Query("code"), RedirectURI: p.slackRedirectURI(), AgentID: pending.AgentID})
	var fields apperr.Fields
	switch e := apperr.From(err); {
	case err == nil:
	case e.Status == http.StatusConflict:
		page.Status, page.Kind, page.Heading = http.StatusConflict, "conflict", "This Slack workspace belongs to another organisation"
		page.Message = "The workspace you chose is already connected to another Konstruct organisation, so it was not connected here. " +
			"Choose another workspace on Slack's page, or ask that organisation to disconnect it first."
		p.slackPage(c, tenant, page)
		return
	case errors.As(err, &fields):
		page.Status, page.Kind, page.Heading = http.StatusUnprocessableEntity, "refused", "Slack did not complete the installation"
		page.Message = capitalise(fields[0].Message) + ". Nothing was connected. Try again."
		p.slackPage(c, tenant, page)
		return
	case e.Status == http.StatusServiceUnavailable:
		page.Status, page.Kind, page.Heading = http.StatusServiceUnavailable, "unavailable", "Slack could not be reached"
		page.Message = "Konstruct could not reach Slack to finish the installation. Nothing was connected. Try again in a moment."
		p.slackPage(c, tenant, page)
		return
	default:
		p.fail(c, err)
		return
	}
	if err := p.d.Onboarding.ChannelConnected(ctx, tenant.ID, store.ChannelSlack); err != nil {
		p.d.Logger.WarnContext(ctx, "record the channel step", "err", err)
	}
	agentName := "your agent"
	if a, err := p.d.Designer.Get(ctx, tenant.ID, conn.AgentID); err == nil {
		agentName = a.Name
	}
	p.back(c, pending.ReturnTo, "success", "Connected the Slack workspace "+channelName(conn)+" to "+agentName+
		". Mention the bot in a channel or send it a direct message, and "+agentName+" answers in the thread.")
}
