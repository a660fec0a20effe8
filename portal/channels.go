package portal

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/store"
)

type channelListData struct {
	Channels   []store.ChannelConnection
	Agents     []store.Agent // the choices of the Connect Slack form
	AgentNames map[string]string
	PublicURL  string
	// WhatsApp numbers are connected by the setup wizard (whatsapp_setup.go);
	// this page says when the server lacks what WhatsApp needs.
	WhatsAppMissing []missingSetting
	SlackOAuth      bool   // "Add to Slack" is set up on this server
	Manifest        string // the Slack app manifest, filled in for this server
}

// channelsPage renders the Channels page: the connections and, for those who
// may change them, the form that connects a Slack workspace (form carries
// what was submitted and its errors; never the bot token).
func (p *Portal) channelsPage(c *gin.Context, tenant *store.Tenant, status int, form *Form) {
	ctx := c.Request.Context()
	d := channelListData{AgentNames: map[string]string{}, PublicURL: p.d.Config.PublicURL, WhatsAppMissing: p.whatsAppMissing(),
		SlackOAuth: p.slackOAuthEnabled(), Manifest: slack.Manifest(p.d.Config.PublicURL)}
	var err error
	if d.Agents, err = p.d.Designer.List(ctx, tenant.ID); err != nil {
		p.fail(c, err)
		return
	}
	for _, a := range d.Agents {
		d.AgentNames[a.ID.String()] = a.Name
	}
	if d.Channels, err = p.d.Designer.ListChannels(ctx, tenant.ID); err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, status, "channels", &Page{Title: "Channels", Section: "channels", Tenant: tenant, Form: form, Data: &d})
}

func (p *Portal) channelList(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	p.channelsPage(c, tenant, http.StatusOK, nil)
}

// channelConnectSlack connects a Slack workspace from the Channels page's
// form, through the same service as the REST API. A refused field is shown
// next to it; the bot token is never sent back to the browser.
func (p *Portal) channelConnectSlack(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	in := designer.SlackConnection{TeamID: c.PostForm("team_id"), BotToken: c.PostForm("bot_token"), AgentID: c.PostForm("agent_id")}
	ch, err := p.d.Designer.ConnectSlack(c.Request.Context(), viewerOf(c).Principal, tenant.ID, in)
	form := &Form{Values: map[string]string{"team_id": in.TeamID, "agent_id": in.AgentID}}
	var fields apperr.Fields
	switch e := apperr.From(err); {
	case errors.As(err, &fields):
		form.Errors = fields
		p.channelsPage(c, tenant, http.StatusUnprocessableEntity, form)
	case err != nil && (e.Status == http.StatusConflict || e.Status == http.StatusServiceUnavailable):
		// Another organisation has the workspace, or Slack could not be
		// asked: nothing was stored; say so above the form.
		form.Message = capitalise(e.Message) + ". Nothing was saved."
		p.channelsPage(c, tenant, e.Status, form)
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, "/t/"+tenant.ID.String()+"/channels", "success", "Connected the Slack workspace "+channelName(ch)+
			". Mention the bot in a channel or send it a direct message, and your agent answers in the thread.")
	}
}

// channelTemplate sets the approved template a WhatsApp number sends
// outside the 24-hour window.
func (p *Portal) channelTemplate(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "channel_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	name, lang := c.PostForm("template_name"), c.PostForm("template_language")
	ch, err := p.d.Designer.SetWhatsAppTemplate(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id, name, lang)
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		form := &Form{Values: map[string]string{"template_name": name, "template_language": lang, "form": "template:" + id.String()},
			Errors: fields, Message: "The template was not changed."}
		p.channelsPage(c, tenant, http.StatusUnprocessableEntity, form)
	case err != nil:
		p.fail(c, err)
	case ch.TemplateName == "":
		p.back(c, "/t/"+tenant.ID.String()+"/channels", "success", "Removed the template of "+channelName(ch)+
			": replies outside the 24-hour window are no longer sent.")
	default:
		p.back(c, "/t/"+tenant.ID.String()+"/channels", "success", channelName(ch)+" now sends the template "+ch.TemplateName+
			" ("+ch.TemplateLanguage+") when a reply falls outside the 24-hour window.")
	}
}

func (p *Portal) channelDelete(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "channel_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	ch, err := p.d.Designer.DisconnectChannel(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id)
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/channels", "success", channelLabel(ch.Kind)+" "+channelName(ch)+" was disconnected. Its messages no longer reach your agents.")
}

// channelName is how a connection is called: the name Slack reported, or
// its external ID.
func channelName(ch store.ChannelConnection) string {
	if ch.DisplayName != "" {
		return ch.DisplayName
	}
	return ch.ExternalID
}
