package portal

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/onboarding"
	"github.com/konstruct/konstruct/internal/store"
)

// The WhatsApp setup wizard. Its first page is a guided form (GET and POST
// /t/:tenant_id/channels/whatsapp) that connects a WhatsApp Business number
// through designer.ConnectWhatsApp — the Graph API checks the token before
// anything is saved — and lets the operator declare the answering agent's
// business function in the same step. Its second page
// (/channels/:channel_id/webhook) shows what to paste into Meta's webhook
// settings and checks whether Meta has verified the webhook and whether the
// number's messages arrive: live, through a small JSON endpoint the page
// polls, or with a plain form post. Both pages are reached from the setup
// stepper's first step (?from=onboarding: with the stepper's header, going
// on to its second step) and from the Channels page.

// fromOnboarding is the query or form value that marks the wizard as opened
// from the setup stepper.
const fromOnboarding = "onboarding"

// newAgentChoice is the agent_id of "a new agent" (an organisation that has
// none yet): the wizard creates it with the stepper's defaults.
const newAgentChoice = "new"

// missingSetting is a server setting WhatsApp cannot work without.
type missingSetting struct{ Name, What, Example string }

// whatsAppMissing lists what the platform operator must set before a tenant
// can connect a number: without the app secret every delivery is refused,
// and without the verify token Meta cannot verify the webhook.
func (p *Portal) whatsAppMissing() []missingSetting {
	var out []missingSetting
	if p.d.Config.WhatsAppAppSecret == "" {
		out = append(out, missingSetting{"KONSTRUCT_WHATSAPP_APP_SECRET",
			"the Meta app's App Secret (App settings → Basic). Konstruct checks the signature of every WhatsApp webhook with it, and refuses them all without it.",
			"<the Meta app's App Secret>"})
	}
	if p.d.Config.WhatsAppVerifyToken == "" {
		out = append(out, missingSetting{"KONSTRUCT_WHATSAPP_VERIFY_TOKEN",
			"any long random string (for example from openssl rand -hex 24). Tenants paste it into Meta's webhook settings, and Meta presents it when it verifies the webhook.",
			"<a long random string, e.g. from openssl rand -hex 24>"})
	}
	return out
}

type whatsAppSetupData struct {
	Onboarding bool       // opened from the setup stepper
	Steps      []stepView // the stepper's header, when Onboarding
	Missing    []missingSetting
	// OperatorNote is what to set, to send to the platform operator.
	OperatorNote string
	Agents       []store.Agent
	Qualified    int    // agents that declared a business function
	NewAgent     string // the tenant has no agent: the name of the one the wizard creates
	Selected     string // the agent chosen in the form
	Connected    []store.ChannelConnection
	AgentNames   map[string]string
	PublicURL    string
}

// whatsAppSetupPage renders the wizard's form (form carries what was
// submitted and its errors; never the access token).
func (p *Portal) whatsAppSetupPage(c *gin.Context, tenant *store.Tenant, fromSetup bool, status int, form *Form) {
	ctx := c.Request.Context()
	d := &whatsAppSetupData{Onboarding: fromSetup, Missing: p.whatsAppMissing(), AgentNames: map[string]string{},
		PublicURL: p.d.Config.PublicURL}
	for _, m := range d.Missing {
		d.OperatorNote += m.Name + "=" + m.Example + "\n"
	}
	prog, err := p.d.Onboarding.Get(ctx, tenant.ID)
	if err != nil {
		p.fail(c, err)
		return
	}
	if fromSetup {
		d.Steps = setupSteps(prog, onboarding.StepChannel)
	}
	if d.Agents, err = p.d.Designer.List(ctx, tenant.ID); err != nil {
		p.fail(c, err)
		return
	}
	for _, a := range d.Agents {
		d.AgentNames[a.ID.String()] = a.Name
		if a.BusinessFunction != "" {
			d.Qualified++
		}
	}
	for _, ch := range prog.Channels {
		if ch.Kind == store.ChannelWhatsApp {
			d.Connected = append(d.Connected, ch)
		}
	}
	if len(d.Agents) == 0 {
		d.NewAgent = onboarding.DefaultAgent(tenant.Name).Name
	}
	d.Selected = chooseAgent(form.Get("agent_id"), d.Agents, prog.Agent)
	title, crumbs, section := "Connect WhatsApp", []Crumb{{"Channels", "/t/" + tenant.ID.String() + "/channels"}, {"Connect WhatsApp", ""}}, "channels"
	if fromSetup {
		crumbs, section = []Crumb{{"Setup", onboardingURL(tenant, onboarding.StepChannel)}, {"Connect WhatsApp", ""}}, "dashboard"
	}
	p.render(c, status, "whatsapp/setup", &Page{Title: title, Section: section, Tenant: tenant, Crumbs: crumbs, Form: form, Data: d})
}

// chooseAgent is the agent the form starts with: the one submitted, else
// the stepper's agent if it may answer on WhatsApp, else the first that
// may, else the stepper's, else the first.
func chooseAgent(submitted string, list []store.Agent, stepper *store.Agent) string {
	if submitted != "" {
		return submitted
	}
	if stepper != nil && stepper.BusinessFunction != "" {
		return stepper.ID.String()
	}
	for _, a := range list {
		if a.BusinessFunction != "" {
			return a.ID.String()
		}
	}
	if stepper != nil {
		return stepper.ID.String()
	}
	if len(list) > 0 {
		return list[0].ID.String()
	}
	return newAgentChoice
}

func (p *Portal) whatsAppSetup(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	p.whatsAppSetupPage(c, tenant, c.Query("from") == fromOnboarding, http.StatusOK, nil)
}

// channelConnectWhatsApp connects a WhatsApp number from the wizard's form,
// through the same service as the REST API: the Graph API checks the token
// first, and the agent must have (or here be given) a business function. A
// refusal is shown next to its field and nothing is saved; the access token
// is never sent back to the browser. Then the wizard shows the webhook.
func (p *Portal) channelConnectWhatsApp(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	fromSetup := c.PostForm("from") == fromOnboarding
	in := designer.WhatsAppConnection{PhoneNumberID: c.PostForm("phone_number_id"), WABAID: c.PostForm("waba_id"),
		AccessToken: c.PostForm("access_token"), AgentID: c.PostForm("agent_id"), BusinessFunction: c.PostForm("business_function"),
		TemplateName: c.PostForm("template_name"), TemplateLanguage: c.PostForm("template_language")}
	form := &Form{Values: map[string]string{"phone_number_id": in.PhoneNumberID, "waba_id": in.WABAID, "agent_id": in.AgentID,
		"business_function": in.BusinessFunction, "template_name": in.TemplateName, "template_language": in.TemplateLanguage}}
	if len(p.whatsAppMissing()) > 0 {
		// A number connected now could never receive a message.
		form.Message = "WhatsApp is not set up on this server yet, so the number was not connected. Nothing was saved."
		p.whatsAppSetupPage(c, tenant, fromSetup, http.StatusConflict, form)
		return
	}
	if strings.TrimSpace(in.AgentID) == newAgentChoice {
		a := onboarding.DefaultAgent(tenant.Name)
		in.NewAgent = &a
	}
	ch, err := p.d.Designer.ConnectWhatsApp(ctx, viewerOf(c).Principal, tenant.ID, in)
	var fields apperr.Fields
	switch e := apperr.From(err); {
	case errors.As(err, &fields):
		form.Errors = fields
		if strings.TrimSpace(in.BusinessFunction) == "" && fields.Message("business_function") != "" {
			// The chosen agent has none: it can be declared right here.
			form.Errors = apperr.Fields{apperr.Invalid("business_function", "Required: this agent has no business function yet, "+
				"and WhatsApp's policy allows only agents scoped to one. Describe what it does for your customers.")}
			for _, f := range fields {
				if f.Field != "business_function" {
					form.Errors = append(form.Errors, f)
				}
			}
		}
		form.Message = "Some fields need attention. Nothing was saved."
		p.whatsAppSetupPage(c, tenant, fromSetup, http.StatusUnprocessableEntity, form)
	case err != nil && (e.Status == http.StatusConflict || e.Status == http.StatusServiceUnavailable):
		// Another organisation has the number, or Meta could not be asked.
		form.Message = capitalise(e.Message) + ". Nothing was saved."
		p.whatsAppSetupPage(c, tenant, fromSetup, e.Status, form)
	case err != nil:
		p.fail(c, err)
	default:
		if fromSetup {
			err = p.d.Onboarding.ChannelConnectedTo(ctx, tenant.ID, store.ChannelWhatsApp, ch.AgentID)
		} else {
			err = p.d.Onboarding.ChannelConnected(ctx, tenant.ID, store.ChannelWhatsApp)
		}
		if err != nil {
			p.d.Logger.WarnContext(ctx, "record the channel step", "err", err)
		}
		agentName := "your agent"
		if a, err := p.d.Designer.Get(ctx, tenant.ID, ch.AgentID); err == nil {
			agentName = a.Name
		}
		p.back(c, webhookURL(tenant, ch.ID, fromSetup), "success", "Connected the WhatsApp number "+channelName(ch)+" to "+agentName+
			". One step left: point Meta's webhook at Konstruct.")
	}
}

func webhookURL(tenant *store.Tenant, channelID uuid.UUID, fromSetup bool) string {
	u := "/t/" + tenant.ID.String() + "/channels/" + channelID.String() + "/webhook"
	if fromSetup {
		u += "?from=" + fromOnboarding
	}
	return u
}

// webhookStatus is the wizard's check, as the page shows it and as the
// JSON endpoint sends it; the sentences are written here, once.
type webhookStatus struct {
	// Verified: Meta's handshake succeeded with this server's verify token.
	Verified     bool   `json:"verified"`
	VerifiedAt   string `json:"verified_at,omitempty"`
	VerifiedText string `json:"verified_text"`
	// WebhookOK: verified, or deliveries prove it works anyway (verified
	// before this server recorded verifications).
	WebhookOK bool `json:"webhook_ok"`
	// Delivered: a signed message or status for this number has arrived.
	Delivered     bool   `json:"delivered"`
	DeliveredAt   string `json:"delivered_at,omitempty"`
	DeliveredText string `json:"delivered_text"`
	CheckedAt     string `json:"checked_at"`
	CheckedText   string `json:"checked_text"`
	// Done: nothing left to wait for (the page stops polling).
	Done bool `json:"done"`
}

func statusOf(w designer.WhatsAppWebhook) webhookStatus {
	s := webhookStatus{Verified: w.Verified, Delivered: w.Activity.Any(), CheckedAt: w.CheckedAt.UTC().Format(time.RFC3339),
		CheckedText: "Checked at " + w.CheckedAt.UTC().Format("15:04:05") + " UTC"}
	s.WebhookOK = s.Verified || s.Delivered
	switch {
	case s.Verified:
		s.VerifiedAt = w.Verification.LastAt.UTC().Format(time.RFC3339)
		s.VerifiedText = "Meta verified the webhook " + ago(w.Verification.LastAt) + " (" + datetime(w.Verification.LastAt) + ")."
	case s.Delivered:
		s.VerifiedText = "Working: Meta delivers this number's events here (it verified the webhook before this server kept a record of that)."
	default:
		s.VerifiedText = "Not verified yet. Paste the callback URL and verify token into Meta's webhook settings and press Verify and save."
	}
	number := channelName(w.Channel)
	switch last := w.Activity.Last(); {
	case last != nil && last == w.Activity.LastMessageAt:
		s.DeliveredAt = last.UTC().Format(time.RFC3339)
		s.DeliveredText = "A message for " + number + " arrived " + ago(*last) + " (" + datetime(*last) + "). Messages reach your agent."
	case last != nil:
		s.DeliveredAt = last.UTC().Format(time.RFC3339)
		s.DeliveredText = "Meta reported the delivery of a message from " + number + " " + ago(*last) + " (" + datetime(*last) + ")."
	case s.Verified:
		s.DeliveredText = "No message for this number yet. Subscribe to the messages field, then send a WhatsApp message to " + number + "."
	default:
		s.DeliveredText = "No message for this number yet: Meta sends them once the webhook is verified and the messages field subscribed."
	}
	s.Done = s.Verified && s.Delivered
	return s
}

type whatsAppWebhookData struct {
	Onboarding  bool
	Steps       []stepView
	Channel     store.ChannelConnection
	AgentName   string
	WebhookURL  string
	VerifyToken string
	Missing     []missingSetting
	Status      webhookStatus
	StatusURL   string // the JSON the page polls
	CheckURL    string // the form post that checks without JavaScript
	NextURL     string // where the wizard goes on to
}

// whatsAppWebhookPage shows what to paste into Meta's webhook settings for a
// connected number, and where the check stands.
func (p *Portal) whatsAppWebhookPage(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "channel_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	ctx := c.Request.Context()
	fromSetup := c.Query("from") == fromOnboarding
	w, err := p.d.Designer.WhatsAppWebhook(ctx, tenant.ID, id, p.d.Config.WhatsAppVerifyToken)
	if err != nil {
		p.fail(c, err)
		return
	}
	base := "/t/" + tenant.ID.String() + "/channels/" + id.String() + "/webhook"
	d := &whatsAppWebhookData{Onboarding: fromSetup, Channel: w.Channel, AgentName: "an agent", WebhookURL: p.d.Config.PublicURL + "/webhooks/whatsapp",
		VerifyToken: p.d.Config.WhatsAppVerifyToken, Missing: p.whatsAppMissing(), Status: statusOf(w),
		StatusURL: base + "/status", CheckURL: base + "/check", NextURL: "/t/" + tenant.ID.String() + "/channels"}
	if a, err := p.d.Designer.Get(ctx, tenant.ID, w.Channel.AgentID); err == nil {
		d.AgentName = a.Name
	}
	crumbs, section := []Crumb{{"Channels", d.NextURL}, {channelName(w.Channel), ""}}, "channels"
	if fromSetup {
		prog, err := p.d.Onboarding.Get(ctx, tenant.ID)
		if err != nil {
			p.fail(c, err)
			return
		}
		d.Steps = setupSteps(prog, onboarding.StepChannel)
		d.NextURL = onboardingURL(tenant, onboarding.StepAgent)
		d.CheckURL += "?from=" + fromOnboarding
		crumbs, section = []Crumb{{"Setup", onboardingURL(tenant, onboarding.StepChannel)}, {"Connect WhatsApp", ""}}, "dashboard"
	}
	p.render(c, http.StatusOK, "whatsapp/webhook", &Page{Title: "WhatsApp webhook", Section: section, Tenant: tenant, Crumbs: crumbs, Data: d})
}

// whatsAppWebhookStatus is the small JSON the webhook page polls, and asks
// when "Check" is pressed.
func (p *Portal) whatsAppWebhookStatus(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "channel_id")
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": gin.H{"code": "not_found", "message": "channel not found"}})
		return
	}
	w, err := p.d.Designer.WhatsAppWebhook(c.Request.Context(), tenant.ID, id, p.d.Config.WhatsAppVerifyToken)
	if err != nil {
		e := apperr.From(err)
		if e.Status >= 500 {
			p.d.Logger.ErrorContext(c.Request.Context(), "whatsapp webhook check failed", "err", err)
		}
		c.JSON(e.Status, gin.H{"error": gin.H{"code": e.Code, "message": e.Message}})
		return
	}
	c.JSON(http.StatusOK, statusOf(w))
}

// whatsAppWebhookCheck is "Check" without JavaScript: the page again, with
// the result on top.
func (p *Portal) whatsAppWebhookCheck(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "channel_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	w, err := p.d.Designer.WhatsAppWebhook(c.Request.Context(), tenant.ID, id, p.d.Config.WhatsAppVerifyToken)
	if err != nil {
		p.fail(c, err)
		return
	}
	s, kind := statusOf(w), "info"
	if s.WebhookOK {
		kind = "success"
	}
	p.back(c, webhookURL(tenant, id, c.Query("from") == fromOnboarding), kind, s.VerifiedText+" "+s.DeliveredText)
}
