package platform

import (
	"net/http"
	"strings"

	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

// WhatsAppTenant is a tenant with an agent connected to a fake WhatsApp
// business number.
type WhatsAppTenant struct {
	ID            string
	AgentID       string
	ChannelID     string
	PhoneNumberID string
	Token         string // the number's access token at the fake Graph API
	Template      string // the approved template the connection sends outside the window
	Language      string
}

// NewWhatsAppTenant creates a tenant and an agent over the REST API (with a
// business function unless the spec has one), registers a number and an
// approved template at the fake Graph API, and connects the number.
func (p *Platform) NewWhatsAppTenant(name string, agent AgentSpec) WhatsAppTenant {
	p.t.Helper()
	if agent.BusinessFunction == "" {
		agent.BusinessFunction = "Customer support for " + name + "'s orders, deliveries and returns"
	}
	var tn, ag, ch struct {
		ID string `json:"id"`
	}
	p.MustDo(http.MethodPost, "/api/v1/tenants", p.AdminToken, map[string]string{"name": name}, http.StatusCreated, &tn)
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/agents", p.AdminToken, agent, http.StatusCreated, &ag)
	w := WhatsAppTenant{ID: tn.ID, AgentID: ag.ID, PhoneNumberID: "10" + randDigits(13), Token: "EAAG" + randHex(20),
		Template: "we_have_a_reply", Language: "en_US"}
	p.WhatsApp.AddNumber(w.PhoneNumberID, w.Token, "+1 555-01"+randDigits(2), name+" Support")
	p.WhatsApp.AddTemplate(w.PhoneNumberID, w.Template, w.Language)
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/channels/whatsapp", p.AdminToken, map[string]string{
		"phone_number_id": w.PhoneNumberID, "waba_id": "1" + w.PhoneNumberID, "access_token": w.Token, "agent_id": ag.ID,
		"template_name": w.Template, "template_language": w.Language}, http.StatusCreated, &ch)
	w.ChannelID = ch.ID
	return w
}

// PostWhatsApp signs body as Meta does and posts it to the WhatsApp webhook
// of API process 0.
func (p *Platform) PostWhatsApp(body []byte) (int, string) {
	p.t.Helper()
	return p.send(fakewhatsapp.NewWebhookRequest(p.URL+"/webhooks/whatsapp", p.WhatsAppSecret, body))
}

// Messages builds the webhook of msgs arriving at the tenant's number.
func (w WhatsAppTenant) Messages(msgs ...fakewhatsapp.Msg) []byte {
	return fakewhatsapp.Messages(w.PhoneNumberID, msgs...)
}

func randDigits(n int) string {
	const digits = "0123456789"
	var b strings.Builder
	for _, c := range randHex(n) {
		b.WriteByte(digits[int(c)%10])
		if b.Len() == n {
			break
		}
	}
	return b.String()
}
