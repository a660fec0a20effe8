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

// A customer admin declares an agent's business function in the designer
// (the WhatsApp preview shows the scope it adds), then connects a WhatsApp
// number from the Channels page, which shows the webhook URL and verify
// token to paste into Meta's console. Meta (a fake speaking the Graph API)
// refuses a wrong token next to its field; the right one connects, stored
// sealed; the template is changed from the page.
func TestBrowserConnectWhatsApp(t *testing.T) {
	graph := fakewhatsapp.New(t)
	const number, token = "106540352242922", "EAAGm0PX4ZCps-right-token"
	graph.AddNumber(number, token, "+1 555-078-3881", "Acme Support")
	h := newHarness(t, map[string]string{"KONSTRUCT_WHATSAPP_API_URL": graph.URL(), "KONSTRUCT_WHATSAPP_APP_SECRET": "app-secret",
		"KONSTRUCT_WHATSAPP_VERIFY_TOKEN": "paste-me-into-meta"})
	ctx := newChrome(t, 1366, 900)
	shot := newShots(t)

	visit(t, ctx, h.URL+"/sign-up")
	fill(t, ctx, map[string]string{"#name": "Ada Lovelace", "#email": "ada@acme.test", "#organisation": "Acme Robotics",
		"#password": "Analytical-Engine-1843"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]") // a new organisation lands in the setup stepper
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	sam := seedAgents(t, h, tenant, "Sam")[0]

	// No agent has a business function: the form says what to do first.
	visit(t, ctx, h.URL+home+"/channels")
	require.Equal(t, 1, count(t, ctx, `[data-testid=connect-whatsapp-form]`))
	require.Contains(t, text(t, ctx, "[data-testid=no-business-function]"), "edit an agent")
	help := text(t, ctx, "[data-testid=whatsapp-help]")
	for _, want := range []string{h.URL + "/webhooks/whatsapp", "paste-me-into-meta", "messages", "subscribed_apps"} {
		require.Contains(t, help, want)
	}
	require.Zero(t, count(t, ctx, "[data-testid=whatsapp-not-configured]"))

	// Declare it in the designer; the WhatsApp preview shows the scope tier.
	visit(t, ctx, h.URL+home+"/agents/"+sam.ID.String()+"/edit")
	fill(t, ctx, map[string]string{"#business_function": "Order tracking and returns for Acme's web shop"})
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(css("#preview-channel"), "whatsapp")))
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#preview-channel").dispatchEvent(new Event("change"))`))
	require.NoError(t, err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#prompt-preview').textContent.includes(`+
		`"Scope on WhatsApp: you act only for this business function: Order tracking and returns for Acme's web shop")`,
		chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the live preview shows the WhatsApp scope")
	shot.take(ctx, "designer-business-function")
	submit(t, ctx, `[data-testid=save-agent]`, `[data-testid=agent-business-function]`)
	require.Contains(t, text(t, ctx, "[data-testid=agent-business-function]"), "Order tracking and returns")

	// A token Meta does not know: refused next to its field, not sent back.
	visit(t, ctx, h.URL+home+"/channels")
	fill(t, ctx, map[string]string{"#wa-phone-number-id": number, "#wa-waba-id": "102290129340398", "#wa-access-token": "EAAG-wrong-token",
		"#wa-template-name": "we_have_a_reply", "#wa-template-language": "en_US"})
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `#wa-access-token ~ .field-error`)
	require.Contains(t, text(t, ctx, `#wa-access-token ~ .field-error`), "Meta refused this access token")
	kept, err := chromedp.Run(ctx, chromedp.Value(css("#wa-phone-number-id")))
	require.NoError(t, err)
	require.Equal(t, number, kept)
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, "EAAG-wrong-token")
	require.Zero(t, count(t, ctx, `#slack-team-id ~ .field-error`), "the Slack form is not blamed")
	shot.take(ctx, "connect-whatsapp-refused")

	fill(t, ctx, map[string]string{"#wa-access-token": token})
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `[data-testid=channels-table]`)
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Connected the WhatsApp number Acme Support (+1 555-078-3881)")
	listed := text(t, ctx, "[data-testid=channels-table]")
	require.Contains(t, listed, number)
	require.Contains(t, listed, "Sam")
	require.Contains(t, text(t, ctx, "[data-testid=whatsapp-template]"), "we_have_a_reply (en_US)")
	html, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, token)
	shot.take(ctx, "channels-whatsapp-connected")

	// The template, changed from the page (loaded afresh: no flash yet).
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
	plain, err := h.app.Secrets.Open(chans[0].Secret, store.SecretAAD(tenant, store.ChannelWhatsApp, number))
	require.NoError(t, err)
	require.Equal(t, token, string(plain), "stored sealed, bound to the tenant and number")
}

// The WhatsApp form's refusals over HTTP: an agent without a business
// function (named next to the agent), a number another organisation has, a
// refused token shown on the Channels page, and a server without the app
// secret saying so.
func TestConnectWhatsAppFormRefusals(t *testing.T) {
	graph := fakewhatsapp.New(t)
	const number, token = "1065000111", "EAAG-shared-number-token"
	graph.AddNumber(number, token, "+1 555-0111", "Shared")
	h := newHarness(t, map[string]string{"KONSTRUCT_WHATSAPP_API_URL": graph.URL()})

	admin := h.browser()
	home := admin.signUp("admin@first.test", "First Admin", "First Co")
	first := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	ada := seedAgents(t, h, first, "Ada")[0]
	other := h.browser()
	otherHome := other.signUp("admin@second.test", "Second Admin", "Second Co")
	second := uuid.MustParse(strings.TrimPrefix(otherHome, "/t/"))
	bea := seedAgents(t, h, second, "Bea")[0]
	for tenant, agent := range map[uuid.UUID]uuid.UUID{first: ada.ID, second: bea.ID} {
		require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
			_, err := tx.Exec(context.Background(), `UPDATE agents SET business_function = 'Support' WHERE id = $1`, agent)
			return err
		}))
	}
	page := admin.get(home + "/channels")
	require.Contains(t, page.Body, `data-testid="whatsapp-not-configured"`, "no app secret: the page says webhooks cannot arrive")

	form := func(agent uuid.UUID) url.Values {
		return url.Values{"phone_number_id": {number}, "waba_id": {"1" + number}, "access_token": {token}, "agent_id": {agent.String()}}
	}
	// An agent without a business function (its function cleared directly).
	require.NoError(t, h.app.Store.WithTenant(context.Background(), first, func(tx *store.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE agents SET business_function = '' WHERE id = $1`, ada.ID)
		return err
	}))
	p := admin.post(home+"/channels/whatsapp", form(ada.ID))
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "has no business function")
	require.NotContains(t, p.Body, token)
	require.Empty(t, graph.Requests(), "Meta is not asked")

	// The second organisation connects it first; then it is theirs.
	other.get(otherHome + "/channels")
	p = other.post(otherHome+"/channels/whatsapp", form(bea.ID))
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.NoError(t, h.app.Store.WithTenant(context.Background(), first, func(tx *store.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE agents SET business_function = 'Support' WHERE id = $1`, ada.ID)
		return err
	}))
	p = admin.post(home+"/channels/whatsapp", form(ada.ID))
	require.Equal(t, http.StatusConflict, p.Status)
	require.Contains(t, p.Body, "This WhatsApp number is already connected to another Konstruct account")
	require.NotContains(t, p.Body, "Second Co")

	// A refused token shows on the second organisation's Channels page.
	require.NoError(t, h.app.Store.WithTenant(context.Background(), second, func(tx *store.Tx) error {
		chans, err := tx.ListChannels(context.Background())
		if err != nil {
			return err
		}
		_, err = tx.MarkChannelTokenError(context.Background(), chans[0].ID, chans[0].Secret, "whatsapp: send message: graph error 190")
		return err
	}))
	page = other.get(otherHome + "/channels")
	require.Contains(t, page.Body, `data-testid="token-error"`)
	require.Contains(t, page.Body, "connect the number again with a new access token")
	p = other.post(otherHome+"/channels/whatsapp", form(bea.ID))
	require.Equal(t, http.StatusSeeOther, p.Status, "connecting again with a token Meta accepts clears it")
	require.NotContains(t, other.get(otherHome+"/channels").Body, `data-testid="token-error"`)
}
