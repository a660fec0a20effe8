package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

// A customer admin opens the WhatsApp wizard from the Channels page. No
// agent has a business function yet: the form says so. The admin declares
// one in the designer (the WhatsApp preview shows the scope it adds), comes
// back, and the agent is offered. Meta (a fake speaking the Graph API)
// refuses a wrong token next to its field; the right one connects, stored
// sealed; the wizard shows the webhook; the Channels page lists the number
// and changes its template.
func TestBrowserConnectWhatsApp(t *testing.T) {
	graph := fakewhatsapp.New(t)
	const number, token = "106540352242922", "EAAGm0PX4ZCps-right-token"
	graph.AddNumber(number, token, "+1 555-078-3881", "Acme Support")
	h := newHarness(t, whatsAppEnv(graph))
	ctx := newChrome(t, 1366, 900)
	shot := newShots(t)

	visit(t, ctx, h.URL+"/sign-up")
	fill(t, ctx, map[string]string{"#name": "Ada Lovelace", "#email": "ada@acme.test", "#organisation": "Acme Robotics",
		"#password": "Analytical-Engine-1843"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]")
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	sam := seedAgents(t, h, tenant, "Sam")[0]

	// No agent has a business function: the wizard says what to do.
	visit(t, ctx, h.URL+home+"/channels")
	require.Zero(t, count(t, ctx, "[data-testid=whatsapp-not-configured]"))
	submit(t, ctx, `[data-testid=setup-whatsapp]`, `[data-testid=whatsapp-setup-form]`)
	require.Zero(t, count(t, ctx, "[data-testid=stepper]"), "opened from Channels, not the setup")
	require.Contains(t, text(t, ctx, "[data-testid=no-business-function]"), "Agent Designer")
	require.Contains(t, text(t, ctx, "[data-testid=whatsapp-agent]"), "Sam (no business function yet)")
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("[data-business-function]").hidden`))
	require.NoError(t, err)
	require.False(t, hidden, "the agent has none: it can be declared here")

	// Declare it in the designer; the WhatsApp preview shows the scope tier.
	visit(t, ctx, h.URL+home+"/agents/"+sam.ID.String()+"/edit")
	fill(t, ctx, map[string]string{"#business_function": "Order tracking and returns for Acme's web shop"})
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(css("#preview-channel"), "whatsapp")))
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#preview-channel").dispatchEvent(new Event("change"))`))
	require.NoError(t, err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#prompt-preview').textContent.includes(`+
		`"Scope on WhatsApp: you act only for this business function: Order tracking and returns for Acme's web shop")`,
		chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the live preview shows the WhatsApp scope")
	shot.take(ctx, "designer-business-function")
	submit(t, ctx, `[data-testid=save-agent]`, `[data-testid=agent-business-function]`)
	require.Contains(t, text(t, ctx, "[data-testid=agent-business-function]"), "Order tracking and returns")

	// Now Sam is offered with its function, and the field is not asked for.
	visit(t, ctx, h.URL+home+"/channels/whatsapp")
	require.Zero(t, count(t, ctx, "[data-testid=no-business-function]"))
	require.Contains(t, text(t, ctx, "[data-testid=whatsapp-agent]"), "Sam · Order tracking and returns")
	hidden, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("[data-business-function]").hidden`))
	require.NoError(t, err)
	require.True(t, hidden)

	// A token Meta does not know: refused next to its field, not sent back.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css("details.more summary"))))
	fill(t, ctx, map[string]string{"#wa-phone-number-id": number, "#wa-waba-id": "102290129340398", "#wa-access-token": "EAAG-wrong-token",
		"#wa-template-name": "we_have_a_reply", "#wa-template-language": "en_US"})
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `#wa-access-token ~ .field-error`)
	require.Contains(t, text(t, ctx, `#wa-access-token ~ .field-error`), "Meta refused this access token")
	kept, err := chromedp.Run(ctx, chromedp.Value(css("#wa-phone-number-id")))
	require.NoError(t, err)
	require.Equal(t, number, kept)
	kept, err = chromedp.Run(ctx, chromedp.Value(css("#wa-template-name")))
	require.NoError(t, err)
	require.Equal(t, "we_have_a_reply", kept)
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, "EAAG-wrong-token")
	shot.take(ctx, "connect-whatsapp-refused")

	fill(t, ctx, map[string]string{"#wa-access-token": token})
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `[data-testid=webhook-check]`)
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Connected the WhatsApp number Acme Support (+1 555-078-3881) to Sam")
	require.Zero(t, count(t, ctx, "[data-testid=stepper]"))
	require.Equal(t, h.URL+"/webhooks/whatsapp", text(t, ctx, "[data-testid=webhook-url]"))
	submit(t, ctx, `[data-testid=back-to-channels]`, `[data-testid=channels-table]`)
	listed := text(t, ctx, "[data-testid=channels-table]")
	require.Contains(t, listed, number)
	require.Contains(t, listed, "Sam")
	require.Contains(t, text(t, ctx, "[data-testid=whatsapp-template]"), "we_have_a_reply (en_US)")
	html, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, token)
	shot.take(ctx, "channels-whatsapp-connected")
	submit(t, ctx, `[data-testid=whatsapp-webhook-link]`, `[data-testid=webhook-check]`)

	// The template, changed from the Channels page.
	visit(t, ctx, h.URL+home+"/channels")
	require.Zero(t, count(t, ctx, ".flash-wrap"))
	fill(t, ctx, map[string]string{"[data-testid=template-form] input[name=template_name]": "reopen_chat",
		"[data-testid=template-form] input[name=template_language]": "de"})
	submit(t, ctx, `[data-testid=save-template]`, `.flash-wrap`)
	require.Contains(t, text(t, ctx, ".flash-wrap"), "now sends the template reopen_chat")
	require.Contains(t, text(t, ctx, "[data-testid=whatsapp-template]"), "reopen_chat (de)")

	var chans []store.ChannelConnection
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
		var err error
		chans, err = tx.ListChannels(context.Background())
		return err
	}))
	require.Len(t, chans, 1)
	require.Equal(t, "reopen_chat", chans[0].TemplateName)
	require.Equal(t, sam.ID, chans[0].AgentID)
	plain, err := h.app.Secrets.Open(chans[0].Secret, store.SecretAAD(tenant, store.ChannelWhatsApp, number))
	require.NoError(t, err)
	require.Equal(t, token, string(plain), "stored sealed, bound to the tenant and number")
}

// The wizard's refusals over HTTP: an agent without a business function
// (asked for on the form, where it can be declared — but a declaration is
// saved only with the connection), a number another organisation has, a
// refused token shown on the Channels page and cleared by connecting again.
func TestConnectWhatsAppFormRefusals(t *testing.T) {
	graph := fakewhatsapp.New(t)
	const number, token = "1065000111", "EAAG-shared-number-token"
	graph.AddNumber(number, token, "+1 555-0111", "Shared")
	h := newHarness(t, whatsAppEnv(graph))

	admin := h.browser()
	home := admin.signUp("admin@first.test", "First Admin", "First Co")
	first := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	ada := seedAgents(t, h, first, "Ada")[0]
	other := h.browser()
	otherHome := other.signUp("admin@second.test", "Second Admin", "Second Co")
	second := uuid.MustParse(strings.TrimPrefix(otherHome, "/t/"))
	bea := seedAgents(t, h, second, "Bea")[0]
	require.NoError(t, h.app.Store.WithTenant(context.Background(), second, func(tx *store.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE agents SET business_function = 'Support' WHERE id = $1`, bea.ID)
		return err
	}))
	businessFunction := func(tenant, agent uuid.UUID) string {
		var bf string
		require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
			a, err := tx.GetAgent(context.Background(), agent)
			bf = a.BusinessFunction
			return err
		}))
		return bf
	}
	form := func(agent uuid.UUID) url.Values {
		return url.Values{"phone_number_id": {number}, "waba_id": {"1" + number}, "access_token": {token}, "agent_id": {agent.String()}}
	}

	// Ada has no business function and none is given: asked for, Meta not asked.
	admin.get(home + "/channels/whatsapp")
	p := admin.post(home+"/channels/whatsapp", form(ada.ID))
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "this agent has no business function yet")
	require.NotContains(t, p.Body, token)
	require.Empty(t, graph.Requests(), "Meta is not asked")

	// Declared on the form, but Meta refuses the token: the declaration is
	// not saved either.
	bad := form(ada.ID)
	bad.Set("access_token", "EAAG-not-this-one")
	bad.Set("business_function", "Returns for First Co")
	p = admin.post(home+"/channels/whatsapp", bad)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "Meta refused this access token")
	require.Contains(t, p.Body, "Returns for First Co", "the typed business function stays in the form")
	require.Empty(t, businessFunction(first, ada.ID))

	// The second organisation connects it first; then it is theirs, and the
	// first one's declaration goes with its refused connection.
	other.get(otherHome + "/channels/whatsapp")
	p = other.post(otherHome+"/channels/whatsapp", form(bea.ID))
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Regexp(t, `^`+otherHome+`/channels/[0-9a-f-]{36}/webhook$`, p.Location)
	declared := form(ada.ID)
	declared.Set("business_function", "Returns for First Co")
	p = admin.post(home+"/channels/whatsapp", declared)
	require.Equal(t, http.StatusConflict, p.Status)
	require.Contains(t, p.Body, "This WhatsApp number is already connected to another Konstruct account")
	require.NotContains(t, p.Body, "Second Co")
	require.Empty(t, businessFunction(first, ada.ID))

	// A refused token shows on the second organisation's Channels page.
	require.NoError(t, h.app.Store.WithTenant(context.Background(), second, func(tx *store.Tx) error {
		chans, err := tx.ListChannels(context.Background())
		if err != nil {
			return err
		}
		_, err = tx.MarkChannelTokenError(context.Background(), chans[0].ID, chans[0].Secret, "whatsapp: send message: graph error 190")
		return err
	}))
	page := other.get(otherHome + "/channels")
	require.Contains(t, page.Body, `data-testid="token-error"`)
	require.Contains(t, page.Body, "connect the number again with a new access token")
	p = other.post(otherHome+"/channels/whatsapp", form(bea.ID))
	require.Equal(t, http.StatusSeeOther, p.Status, "connecting again with a token Meta accepts clears it")
	require.NotContains(t, other.get(otherHome+"/channels").Body, `data-testid="token-error"`)
}
