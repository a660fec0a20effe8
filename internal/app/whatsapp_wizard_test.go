package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

const (
	waAppSecret   = "meta-app-secret-for-tests"
	waVerifyToken = "paste-me-into-meta-7Qx2"
)

// whatsAppEnv points the platform at a fake Graph API, with WhatsApp set up
// on the server (an app secret and a verify token).
func whatsAppEnv(graph *fakewhatsapp.Server) map[string]string {
	return map[string]string{"KONSTRUCT_WHATSAPP_API_URL": graph.URL(), "KONSTRUCT_WHATSAPP_APP_SECRET": waAppSecret,
		"KONSTRUCT_WHATSAPP_VERIFY_TOKEN": waVerifyToken}
}

// waitText waits until the element's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("(document.querySelector("+jsString(sel)+")||{}).textContent.includes("+jsString(want)+")",
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("%s never said %q (it says %q): %v", sel, want, text(t, ctx, sel), err)
	}
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// The WhatsApp journey, in a browser: sign up; the stepper's
// WhatsApp card; the wizard's form against a fake Graph API — a wrong token
// shows Meta's refusal on the form and saves nothing (not even the agent it
// would create), the right one connects the number to a new agent with the
// business function declared right there; the page shows the callback URL
// and verify token; "Check" says not verified; Meta's handshake (the fake
// does it as Meta does) with the right token; "Check" says verified, with no
// page reload; a signed message for the number shows too; the stepper moves
// on to the agent step, written for WhatsApp.
func TestBrowserWhatsAppWizard(t *testing.T) {
	graph := fakewhatsapp.New(t)
	const number, token, waba = "106540352242922", "EAAGm0PX4ZCps-right-token", "102290129340398"
	graph.AddNumber(number, token, "+1 555-078-3881", "Acme Support")
	h := newHarness(t, whatsAppEnv(graph))
	ctx := newChrome(t, 1440, 900)
	shot := newShots(t)

	visit(t, ctx, h.URL+"/sign-up")
	fill(t, ctx, map[string]string{"#name": "Ada Lovelace", "#email": "ada@acme.test", "#organisation": "Acme Robotics",
		"#password": "Analytical-Engine-1843"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]")
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	require.Contains(t, text(t, ctx, "[data-testid=step-channel]"), "A guided form")

	// The form: a new organisation has no agent yet, so the wizard offers
	// one and asks for its business function; the help says where in
	// Meta's console each value is.
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `[data-testid=whatsapp-setup-form]`)
	require.Contains(t, text(t, ctx, "[data-testid=stepper] li.current"), "Connect a channel")
	require.Contains(t, text(t, ctx, "[data-testid=new-agent]"), "Acme Robotics Assistant")
	help := text(t, ctx, "[data-testid=whatsapp-help]")
	for _, want := range []string{"developers.facebook.com", "WhatsApp → API Setup", "“From” number", "Phone number ID",
		"WhatsApp Business Account ID", "System User", "Business Settings", "whatsapp_business_messaging", "whatsapp_business_management"} {
		require.Contains(t, help, want)
	}
	shot.take(ctx, "whatsapp-wizard-form")

	// A token Meta does not know: its refusal next to the field, the other
	// values kept, the token not sent back, nothing saved.
	fill(t, ctx, map[string]string{"#wa-phone-number-id": number, "#wa-waba-id": waba, "#wa-access-token": "EAAG-wrong-token",
		"#wa-business-function": "Order tracking, returns and delivery questions for Acme Robotics' web shop"})
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `#wa-access-token ~ .field-error`)
	require.Contains(t, text(t, ctx, `#wa-access-token ~ .field-error`), "Meta refused this access token")
	require.Contains(t, text(t, ctx, ".alert-error"), "Nothing was saved")
	for sel, want := range map[string]string{"#wa-phone-number-id": number, "#wa-waba-id": waba,
		"#wa-business-function": "Order tracking, returns and delivery questions for Acme Robotics' web shop"} {
		got, err := chromedp.Run(ctx, chromedp.Value(css(sel)))
		require.NoError(t, err)
		require.Equal(t, want, got, sel)
	}
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, "EAAG-wrong-token")
	require.Equal(t, [2]int{0, 0}, countChannelsAgents(t, h, tenant), "nothing saved: no number, no agent")
	shot.take(ctx, "whatsapp-wizard-refused")

	// The right token: connected; the webhook to paste, and the check.
	fill(t, ctx, map[string]string{"#wa-access-token": token})
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `[data-testid=webhook-check]`)
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Connected the WhatsApp number Acme Support (+1 555-078-3881) to Acme Robotics Assistant")
	require.Equal(t, h.URL+"/webhooks/whatsapp", text(t, ctx, "[data-testid=webhook-url]"))
	require.Equal(t, waVerifyToken, text(t, ctx, "[data-testid=verify-token]"))
	for _, sel := range []string{"[data-testid=copy-webhook-url]", "[data-testid=copy-verify-token]"} {
		copied, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(`+jsString(sel)+`).dataset.copyText`))
		require.NoError(t, err)
		require.NotEmpty(t, copied, sel)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css("[data-testid=copy-verify-token]"))))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`["Copied", "Press Ctrl+C"].includes(document.querySelector("[data-testid=copy-verify-token]").textContent.trim())`,
		chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the copy button says what it did")
	steps := text(t, ctx, "[data-testid=whatsapp-webhook]")
	require.Contains(t, steps, "WhatsApp → Configuration")
	require.Contains(t, steps, "Verify and save")
	require.Contains(t, steps, "messages")
	require.Contains(t, text(t, ctx, "[data-testid=stepper] li.done"), "Connect a channel")
	html, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, token)

	// Check: not verified yet. The page stays the same page from here on.
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.__samePage = true`)))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css("[data-testid=check-webhook]"))))
	waitText(t, ctx, "[data-testid=checked-text]", "Checked at")
	require.Contains(t, text(t, ctx, "[data-testid=verified-text]"), "Not verified yet")
	require.Contains(t, text(t, ctx, "[data-testid=delivered-text]"), "No message for this number yet")
	require.Zero(t, count(t, ctx, "[data-testid=check-webhook-row].ok"))
	shot.take(ctx, "whatsapp-wizard-webhook")

	// Meta verifies the callback URL with the verify token (a wrong one
	// first, which changes nothing); "Check" says so without a reload.
	require.Error(t, fakewhatsapp.VerifyWebhook(context.Background(), h.URL+"/webhooks/whatsapp", "not-the-token"))
	require.NoError(t, fakewhatsapp.VerifyWebhook(context.Background(), h.URL+"/webhooks/whatsapp", waVerifyToken))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css("[data-testid=check-webhook]"))))
	waitText(t, ctx, "[data-testid=verified-text]", "Meta verified the webhook just now")
	require.Equal(t, 1, count(t, ctx, "[data-testid=check-webhook-row].ok"))
	require.Contains(t, text(t, ctx, "[data-testid=delivered-text]"), "Subscribe to the messages field")
	shot.take(ctx, "whatsapp-wizard-verified")

	// A customer writes: the signed delivery shows too (the page checks by
	// itself while it waits).
	res, err := http.DefaultClient.Do(fakewhatsapp.NewWebhookRequest(h.URL+"/webhooks/whatsapp", waAppSecret,
		fakewhatsapp.Messages(number, fakewhatsapp.Text("16505551234", "Hi, where is my order?"))))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	waitText(t, ctx, "[data-testid=delivered-text]", "A message for Acme Support (+1 555-078-3881) arrived just now")
	require.Equal(t, 1, count(t, ctx, "[data-testid=check-delivery-row].ok"))
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__samePage === true`))
	require.NoError(t, err)
	require.True(t, same, "the checks updated without a page load")
	shot.take(ctx, "whatsapp-wizard-delivered")

	// The stepper moves on: the agent step, its preview written for WhatsApp.
	submit(t, ctx, `[data-testid=continue]`, "[data-testid=step-agent]")
	require.Contains(t, text(t, ctx, "[data-testid=stepper] li.done"), "Connect a channel")
	name, err := chromedp.Run(ctx, chromedp.Value(css("#name")))
	require.NoError(t, err)
	require.Equal(t, "Acme Robotics Assistant", name, "the step configures the agent that answers on WhatsApp")
	require.Contains(t, text(t, ctx, "#prompt-preview"), "Order tracking, returns and delivery questions for Acme Robotics' web shop")

	// Underneath: the number routes to the new agent, token sealed; each
	// change is in the audit trail.
	bg := context.Background()
	require.NoError(t, h.app.Store.WithTenant(bg, tenant, func(tx *store.Tx) error {
		chans, err := tx.ListChannels(bg)
		require.NoError(t, err)
		require.Len(t, chans, 1)
		require.Equal(t, store.ChannelWhatsApp, chans[0].Kind)
		require.Equal(t, waba, chans[0].WABAID)
		plain, err := h.app.Secrets.Open(chans[0].Secret, store.SecretAAD(tenant, store.ChannelWhatsApp, number))
		require.NoError(t, err)
		require.Equal(t, token, string(plain))
		agent, err := tx.GetAgent(bg, chans[0].AgentID)
		require.NoError(t, err)
		require.Equal(t, "Acme Robotics Assistant", agent.Name)
		require.Equal(t, "Order tracking, returns and delivery questions for Acme Robotics' web shop", agent.BusinessFunction)
		ob, err := tx.GetOnboarding(bg, tenant)
		require.NoError(t, err)
		require.Equal(t, store.ChannelWhatsApp, ob.Channel)
		require.Equal(t, agent.ID, *ob.AgentID)
		for _, action := range []string{"agent.create", "channel.connect"} {
			n, err := tx.QueryInt(bg, `SELECT count(*) FROM audit_events WHERE action = $1`, action)
			require.NoError(t, err)
			require.Equal(t, int64(1), n, action)
		}
		return nil
	}))
}

// countChannelsAgents counts a tenant's connections and agents.
func countChannelsAgents(t *testing.T, h *harness, tenant uuid.UUID) [2]int {
	t.Helper()
	var out [2]int
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
		chans, err := tx.ListChannels(context.Background())
		if err != nil {
			return err
		}
		list, err := tx.ListAgents(context.Background())
		out = [2]int{len(chans), len(list)}
		return err
	}))
	return out
}

// connectNumber connects a WhatsApp number through the wizard's form as the
// browser's admin and returns the webhook page it lands on.
func connectNumber(t *testing.T, b *browser, home, number, token, agentID, function string) string {
	t.Helper()
	b.get(home + "/channels/whatsapp")
	p := b.post(home+"/channels/whatsapp", url.Values{"phone_number_id": {number}, "waba_id": {"9" + number}, "access_token": {token},
		"agent_id": {agentID}, "business_function": {function}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	return p.Location
}

// getJSON fetches a path with the browser's session and decodes its JSON.
func (b *browser) getJSON(path string, out any) int {
	b.t.Helper()
	p := b.get(path)
	require.Contains(b.t, p.Header.Get("Content-Type"), "application/json", p.Body)
	require.NoError(b.t, json.Unmarshal([]byte(p.Body), out), p.Body)
	return p.Status
}

type webhookCheck struct {
	Verified      bool   `json:"verified"`
	VerifiedAt    string `json:"verified_at"`
	VerifiedText  string `json:"verified_text"`
	WebhookOK     bool   `json:"webhook_ok"`
	Delivered     bool   `json:"delivered"`
	DeliveredText string `json:"delivered_text"`
	CheckedText   string `json:"checked_text"`
	Done          bool   `json:"done"`
	Error         struct {
		Code string `json:"code"`
	} `json:"error"`
}

// The check over HTTP, with two tenants: the verification is the platform's
// (both see it), deliveries are each number's (A's customer writing shows
// for A's number only); the JSON endpoint and the form post (no JavaScript)
// say the same; another tenant's number, a Slack workspace and an operator
// get nothing.
func TestWhatsAppWebhookCheck(t *testing.T) {
	graph := fakewhatsapp.New(t)
	graph.AddNumber("1110001", "EAAG-token-a", "+1 555-0001", "A Support")
	graph.AddNumber("2220002", "EAAG-token-b", "+1 555-0002", "B Support")
	h := newHarness(t, whatsAppEnv(graph))
	adminA, adminB := h.browser(), h.browser()
	homeA, homeB := adminA.signUp("admin@a.test", "Admin A", "Tenant A"), adminB.signUp("admin@b.test", "Admin B", "Tenant B")
	tenantA := uuid.MustParse(strings.TrimPrefix(homeA, "/t/"))
	agentA, agentB := seedAgents(t, h, tenantA, "Ada")[0], seedAgents(t, h, uuid.MustParse(strings.TrimPrefix(homeB, "/t/")), "Bea")[0]
	pageA := connectNumber(t, adminA, homeA, "1110001", "EAAG-token-a", agentA.ID.String(), "Support for A's shop")
	pageB := connectNumber(t, adminB, homeB, "2220002", "EAAG-token-b", agentB.ID.String(), "Support for B's shop")
	require.NotContains(t, pageA, "from=", "from the Channels page, not the setup")

	var c webhookCheck
	require.Equal(t, http.StatusOK, adminA.getJSON(pageA+"/status", &c))
	require.False(t, c.Verified)
	require.False(t, c.Delivered)
	require.False(t, c.Done)
	require.Contains(t, c.VerifiedText, "Not verified yet")
	require.Contains(t, c.CheckedText, "Checked at")

	// Meta verifies the webhook: a platform-wide fact, both tenants see it.
	require.NoError(t, fakewhatsapp.VerifyWebhook(context.Background(), h.URL+"/webhooks/whatsapp", waVerifyToken))
	for _, tc := range []struct {
		b    *browser
		page string
	}{{adminA, pageA}, {adminB, pageB}} {
		c = webhookCheck{}
		tc.b.getJSON(tc.page+"/status", &c)
		require.True(t, c.Verified, tc.page)
		require.True(t, c.WebhookOK)
		require.NotEmpty(t, c.VerifiedAt)
		require.False(t, c.Delivered)
	}

	// A's customer writes to A's number: A's check shows it, B's does not.
	res, err := http.DefaultClient.Do(fakewhatsapp.NewWebhookRequest(h.URL+"/webhooks/whatsapp", waAppSecret,
		fakewhatsapp.Messages("1110001", fakewhatsapp.Text("16505551234", "hello A"))))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	c = webhookCheck{}
	adminA.getJSON(pageA+"/status", &c)
	require.True(t, c.Delivered)
	require.True(t, c.Done)
	require.Contains(t, c.DeliveredText, "A message for A Support (+1 555-0001) arrived just now")
	c = webhookCheck{}
	adminB.getJSON(pageB+"/status", &c)
	require.False(t, c.Delivered, "B's number has had no message")

	// "Check now" without JavaScript: the page again, the result on top.
	adminA.get(pageA)
	p := adminA.post(pageA+"/check", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, pageA, p.Location)
	shown := adminA.get(p.Location)
	require.Contains(t, shown.Body, "Meta verified the webhook just now")
	require.Contains(t, shown.Body, `class="flash`)
	require.Contains(t, shown.Body, "A message for A Support (&#43;1 555-0001) arrived just now")

	// B cannot look at A's number, under either tenant's address; a Slack
	// workspace has no WhatsApp webhook.
	idA := strings.TrimSuffix(strings.TrimPrefix(pageA, homeA+"/channels/"), "/webhook")
	for _, path := range []string{homeB + "/channels/" + idA + "/webhook", homeA + "/channels/" + idA + "/webhook"} {
		require.Equal(t, http.StatusNotFound, adminB.get(path).Status, path)
		require.Equal(t, http.StatusNotFound, adminB.get(path+"/status").Status, path)
		require.Equal(t, http.StatusNotFound, adminB.post(path+"/check", nil).Status, path)
	}
	c = webhookCheck{}
	require.Equal(t, http.StatusNotFound, adminB.getJSON(homeB+"/channels/"+idA+"/webhook/status", &c))
	require.Equal(t, "not_found", c.Error.Code)
	var slack store.ChannelConnection
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantA, func(tx *store.Tx) error {
		var err error
		slack, err = tx.UpsertChannelConnection(context.Background(), store.ChannelConnection{AgentID: agentA.ID, Kind: store.ChannelSlack,
			ExternalID: "T0ACME", Secret: []byte{1}})
		return err
	}))
	require.Equal(t, http.StatusNotFound, adminA.get(homeA+"/channels/"+slack.ID.String()+"/webhook/status").Status)

	// Channels are the admins': an operator of A sees neither page nor check.
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantA, func(tx *store.Tx) error {
		hash, err := auth.HashPassword("Operator-Pass-Word-9")
		if err != nil {
			return err
		}
		_, err = tx.CreateUser(context.Background(), store.User{Email: "op@a.test", Name: "Op", PasswordHash: hash, Role: store.RoleCustomerOperator})
		return err
	}))
	op := h.browser()
	op.signIn("op@a.test", "Operator-Pass-Word-9")
	for _, path := range []string{homeA + "/channels/whatsapp", pageA, pageA + "/status"} {
		require.Equal(t, http.StatusForbidden, op.get(path).Status, path)
	}
	require.Equal(t, http.StatusForbidden, op.post(pageA+"/check", nil).Status)
	require.Equal(t, http.StatusForbidden, op.post(homeA+"/channels/whatsapp", url.Values{"phone_number_id": {"3330003"}}).Status)
}

// Without an app secret and a verify token the server cannot take WhatsApp
// webhooks: the stepper's card, the Channels page and the wizard say which
// settings the platform operator must set, the wizard shows no form, and a
// post anyway saves nothing (Meta is not even asked).
func TestWhatsAppWizardWithoutServerSettings(t *testing.T) {
	graph := fakewhatsapp.New(t)
	graph.AddNumber("1110001", "EAAG-token", "+1 555-0001", "Support")
	h := newHarness(t, map[string]string{"KONSTRUCT_WHATSAPP_API_URL": graph.URL(), "KONSTRUCT_WHATSAPP_APP_SECRET": waAppSecret})
	admin := h.browser()
	home := admin.signUp("admin@a.test", "Admin A", "Tenant A")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	agent := seedAgents(t, h, tenant, "Ada")[0]

	step := admin.get(home + "/onboarding?step=1")
	require.Contains(t, step.Body, `data-testid="whatsapp-not-configured"`)
	require.Contains(t, step.Body, "KONSTRUCT_WHATSAPP_VERIFY_TOKEN")
	require.NotContains(t, step.Body, "<code>KONSTRUCT_WHATSAPP_APP_SECRET</code>", "only what is missing")
	require.Contains(t, admin.get(home+"/channels").Body, `data-testid="whatsapp-not-configured"`)
	page := admin.get(home + "/channels/whatsapp?from=onboarding")
	require.Equal(t, http.StatusOK, page.Status)
	require.Contains(t, page.Body, "WhatsApp is not set up on this server yet")
	require.Contains(t, page.Body, "KONSTRUCT_WHATSAPP_VERIFY_TOKEN")
	require.Contains(t, page.Body, `data-testid="stepper"`)
	require.NotContains(t, page.Body, `name="access_token"`, "no form that cannot work")

	p := admin.post(home+"/channels/whatsapp", url.Values{"phone_number_id": {"1110001"}, "waba_id": {"91110001"},
		"access_token": {"EAAG-token"}, "agent_id": {agent.ID.String()}, "business_function": {"Support"}})
	require.Equal(t, http.StatusConflict, p.Status)
	require.Contains(t, p.Body, "Nothing was saved")
	require.NotContains(t, p.Body, "EAAG-token")
	require.Empty(t, graph.Requests())
	require.Equal(t, [2]int{0, 1}, countChannelsAgents(t, h, tenant))
}
