package app_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/fakestripe"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

// TestPortalScreenshots walks every main page with realistic data, as an
// admin, an operator and a platform admin, on a desktop and a phone, and
// saves a screenshot of each (KONSTRUCT_SCREENSHOTS=dir keeps them). It also
// checks each page rendered without an error.
func TestPortalScreenshots(t *testing.T) {
	// Billing on, against stripe-mock; "Add to Slack" set up against a fake
	// Slack; tenants' model keys checked against a fake provider on loopback.
	sl := fakeslack.New(t)
	sl.SetOAuthClient(oauthClientID, oauthClientSecret)
	provider := fakellm.New(t, fakellm.WithAPIKey("sk-acme-own-key-7f3a"))
	// WhatsApp set up on the server, against a fake Graph API.
	graph := fakewhatsapp.New(t)
	graph.AddNumber("106540352242922", "EAAGm0PX4ZCps-acme-token", "+1 555-078-3881", "Acme Support")
	env := fakestripe.New(t).Env()
	for k, v := range map[string]string{"KONSTRUCT_SLACK_API_URL": sl.URL(), "KONSTRUCT_SLACK_CLIENT_ID": oauthClientID,
		"KONSTRUCT_SLACK_CLIENT_SECRET": oauthClientSecret, "KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS": "127.0.0.1/32"} {
		env[k] = v
	}
	for k, v := range whatsAppEnv(graph) {
		env[k] = v
	}
	h := newHarness(t, env)
	ctx := newChrome(t, 1440, 900)
	shot := newShots(t)

	visit(t, ctx, h.URL+"/sign-in")
	shot.take(ctx, "sign-in")
	visit(t, ctx, h.URL+"/sign-up")
	shot.take(ctx, "sign-up")
	fill(t, ctx, map[string]string{"#name": "Ada Lovelace", "#email": "ada@acme.test", "#organisation": "Acme Robotics", "#password": "x"})
	submit(t, ctx, `button[type=submit]`, ".field-error")
	shot.take(ctx, "sign-up-errors")
	fill(t, ctx, map[string]string{"#password": "Analytical-Engine-1843"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]")
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")
	shot.take(ctx, "onboarding-1-channel")
	// The agent step: defaults filled in; a name left out is pointed at.
	visit(t, ctx, h.URL+home+"/onboarding?step=2")
	shot.take(ctx, "onboarding-2-agent")
	fill(t, ctx, map[string]string{"#name": " "})
	submit(t, ctx, `[data-testid=save-agent-step]`, ".field-error")
	shot.take(ctx, "onboarding-2-agent-errors")
	visit(t, ctx, h.URL+home+"/onboarding?step=3")
	shot.take(ctx, "onboarding-3-test")
	visit(t, ctx, h.URL+home)
	require.Equal(t, 1, count(t, ctx, "[data-testid=setup-progress]"), "the dashboard shows the setup until it is done")
	shot.take(ctx, "dashboard-new")
	visit(t, ctx, h.URL+home+"/agents")
	shot.take(ctx, "agents-empty")
	visit(t, ctx, h.URL+home+"/conversations")
	shot.take(ctx, "conversations-empty")
	visit(t, ctx, h.URL+home+"/agents/new")
	fill(t, ctx, map[string]string{"#name": "<b>Bad</b>", "#esc_max_failed_turns": "500", "#esc_notify_channel": "general"})
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(css(`#models .model-row:nth-child(1) input`), "gpt-4o")))
	submit(t, ctx, `[data-testid=save-agent]`, ".field-error")
	shot.take(ctx, "designer-errors")

	tenantID := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	s := seedShowcase(t, h, tenantID, "acme")
	seedBilling(t, h, tenantID, s)
	pages := []struct{ path, name string }{
		{home, "dashboard"},
		{home + "/agents", "agents"},
		{home + "/agents/" + s.Agents[0].ID.String(), "agent"},
		{home + "/agents/" + s.Agents[0].ID.String() + "/edit", "designer-edit"},
		{home + "/agents/" + s.Agents[0].ID.String() + "/tools", "agent-tools"},
		{home + "/knowledge", "knowledge"},
		{home + "/knowledge/search?q=returns", "knowledge-search"},
		{home + "/conversations", "conversations"},
		{home + "/conversations/" + s.Conversations[2].ID.String(), "transcript"},
		{home + "/channels", "channels"},
		{home + "/users", "team"},
		{home + "/usage", "usage"},
		{home + "/usage?range=24h", "usage-24h"},
		{home + "/usage?range=7d&agent=" + s.Agents[0].ID.String(), "usage-agent"},
		{home + "/billing", "billing"},
		{home + "/settings", "settings"},
		{home + "/activity", "activity"},
		{"/account", "account"},
		{"/no-such-page", "not-found"},
	}
	for _, p := range pages {
		visit(t, ctx, h.URL+p.path)
		require.NotContains(t, text(t, ctx, "body"), "Something went wrong", p.path)
		shot.take(ctx, "admin-"+p.name)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(h.URL+home+"/agents/"+s.Agents[0].ID.String()),
		chromedp.WaitVisible(css(`form[action$="/delete"] button`)), chromedp.Click(css(`form[action$="/delete"] button`)),
		chromedp.WaitVisible(css("dialog.modal"))))
	shot.take(ctx, "confirm-dialog")

	// Add to Slack: Slack's consent page; cancelled; a workspace another
	// organisation has.
	sl.AddWorkspace("T0ACMEHQ", "xoxb-acme-hq", "U0ACMEBOT")
	sl.SetTeamName("T0ACMEHQ", "Acme HQ")
	sl.SetInstallWorkspace("T0ACMEHQ")
	visit(t, ctx, h.URL+home+"/channels")
	submit(t, ctx, `[data-testid=add-to-slack]`, "#slack-allow")
	shot.take(ctx, "slack-consent")
	submit(t, ctx, "#slack-cancel", "[data-testid=slack-result]")
	require.Contains(t, text(t, ctx, "h1"), "Slack was not connected")
	shot.take(ctx, "slack-denied")
	other := h.browser()
	otherTenant := uuid.MustParse(strings.TrimPrefix(other.signUp("bo@globex.test", "Bo", "Globex"), "/t/"))
	globex := seedAgents(t, h, otherTenant, "Gus")[0]
	require.NoError(t, h.app.Store.WithTenant(context.Background(), otherTenant, func(tx *store.Tx) error {
		_, err := tx.UpsertChannelConnection(context.Background(), store.ChannelConnection{AgentID: globex.ID, Kind: store.ChannelSlack,
			ExternalID: "T0ACMEHQ", DisplayName: "Acme HQ", Secret: []byte("sealed")})
		return err
	}))
	visit(t, ctx, h.URL+home+"/channels")
	submit(t, ctx, `[data-testid=add-to-slack]`, "#slack-allow")
	submit(t, ctx, "#slack-allow", "[data-testid=slack-result]")
	require.Contains(t, text(t, ctx, "h1"), "belongs to another organisation")
	shot.take(ctx, "slack-conflict")

	// Model keys: one the provider refuses, then one it accepts.
	visit(t, ctx, h.URL+home+"/settings")
	fill(t, ctx, map[string]string{"#openai-key": "sk-acme-wrong-key-0000", "#openai-url": provider.OpenAIBaseURL()})
	submit(t, ctx, `[data-testid=save-openai]`, "[data-testid=provider-openai] .field-error")
	require.Contains(t, text(t, ctx, "[data-testid=provider-openai] .field-error"), "OpenAI refused this key")
	shot.take(ctx, "settings-model-key-refused")
	fill(t, ctx, map[string]string{"#openai-key": "sk-acme-own-key-7f3a", "#openai-url": provider.OpenAIBaseURL()})
	submit(t, ctx, `[data-testid=save-openai]`, "[data-testid=remove-openai]")
	require.Contains(t, text(t, ctx, "[data-testid=provider-openai] [data-testid=key-state]"), "Your key ••••7f3a")
	shot.take(ctx, "settings-model-keys")

	// The WhatsApp wizard from the Channels page: no agent has a business
	// function yet, so the form offers to declare one; Meta refuses a token;
	// the right one leads to the webhook to paste and the check, before and
	// after Meta's verification and a customer's first message.
	visit(t, ctx, h.URL+home+"/channels/whatsapp")
	shot.take(ctx, "whatsapp-wizard")
	fill(t, ctx, map[string]string{"#wa-phone-number-id": "106540352242922", "#wa-waba-id": "102290129340398",
		"#wa-access-token": "EAAG-expired-token", "#wa-business-function": "Order tracking, returns and delivery questions for Acme Robotics' web shop"})
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `#wa-access-token ~ .field-error`)
	shot.take(ctx, "whatsapp-wizard-refused")
	fill(t, ctx, map[string]string{"#wa-access-token": "EAAGm0PX4ZCps-acme-token"})
	submit(t, ctx, `[data-testid=connect-whatsapp]`, `[data-testid=webhook-check]`)
	whatsAppPage := strings.TrimPrefix(location(t, ctx), h.URL)
	shot.take(ctx, "whatsapp-webhook")
	require.NoError(t, fakewhatsapp.VerifyWebhook(context.Background(), h.URL+"/webhooks/whatsapp", waVerifyToken))
	res, err := http.DefaultClient.Do(fakewhatsapp.NewWebhookRequest(h.URL+"/webhooks/whatsapp", waAppSecret,
		fakewhatsapp.Messages("106540352242922", fakewhatsapp.Text("16505551234", "Hi, where is my order?"))))
	require.NoError(t, err)
	res.Body.Close()
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css("[data-testid=check-webhook]"))))
	waitText(t, ctx, "[data-testid=delivered-text]", "arrived just now")
	shot.take(ctx, "whatsapp-webhook-verified")
	visit(t, ctx, h.URL+home+"/channels")
	shot.take(ctx, "admin-channels-whatsapp")
	// A server without the WhatsApp settings: the stepper's card and the
	// wizard say what the platform operator must set.
	bare := newHarness(t, nil)
	bctx := newChrome(t, 1440, 900)
	visit(t, bctx, bare.URL+"/sign-up")
	fill(t, bctx, map[string]string{"#name": "Bo", "#email": "bo@initech.test", "#organisation": "Initech", "#password": "Analytical-Engine-1843"})
	submit(t, bctx, `button[type=submit]`, "[data-testid=stepper]")
	require.Contains(t, text(t, bctx, "[data-testid=step-channel]"), "KONSTRUCT_WHATSAPP_APP_SECRET")
	submit(t, bctx, `[data-testid=connect-whatsapp]`, "[data-testid=whatsapp-not-configured]")
	shot.take(bctx, "whatsapp-wizard-not-configured")

	// Phone width.
	mctx := newChrome(t, 390, 844)
	visit(t, mctx, h.URL+"/sign-in")
	fill(t, mctx, map[string]string{"#email": "ada@acme.test", "#password": "Analytical-Engine-1843"})
	submit(t, mctx, `button[type=submit]`, ".stats")
	shot.take(mctx, "mobile-dashboard")
	visit(t, mctx, h.URL+home+"/onboarding?step=1")
	shot.take(mctx, "mobile-onboarding")
	visit(t, mctx, h.URL+home+"/conversations/"+s.Conversations[0].ID.String())
	shot.take(mctx, "mobile-transcript")
	visit(t, mctx, h.URL+home+"/channels/whatsapp?from=onboarding")
	shot.take(mctx, "mobile-whatsapp-wizard")
	visit(t, mctx, h.URL+whatsAppPage)
	shot.take(mctx, "mobile-whatsapp-webhook")
	require.NoError(t, chromedp.Do(mctx, chromedp.Click(css(".menu-toggle")), chromedp.Sleep(400*time.Millisecond)))
	shot.take(mctx, "mobile-nav")

	// The platform admin.
	rctx := newChrome(t, 1440, 900)
	visit(t, rctx, h.URL+"/sign-in")
	fill(t, rctx, map[string]string{"#email": rootEmail, "#password": rootPassword})
	submit(t, rctx, `button[type=submit]`, ".stats")
	for _, p := range []struct{ path, name string }{
		{"/admin", "overview"}, {"/admin/tenants", "tenants"}, {"/admin/agents", "agents"}, {"/admin/users", "users"},
		{"/admin/tenants/" + tenantID.String(), "tenant"},
		{"/admin/tenants/" + tenantID.String() + "/delete", "delete-tenant"}, {home, "tenant-dashboard"},
		{home + "/users", "tenant-team"}, {"/admin/costs", "costs"},
	} {
		visit(t, rctx, h.URL+p.path)
		require.NotContains(t, text(t, rctx, "body"), "Something went wrong", p.path)
		shot.take(rctx, "platform-"+p.name)
	}

	// The operator.
	octx := newChrome(t, 1440, 900)
	visit(t, octx, h.URL+"/sign-in")
	setPassword(t, h, s.Operator.ID, "Grace-Operator-Pass-1")
	fill(t, octx, map[string]string{"#email": s.Operator.Email, "#password": "Grace-Operator-Pass-1"})
	submit(t, octx, `button[type=submit]`, ".stats")
	shot.take(octx, "operator-dashboard")
	visit(t, octx, h.URL+home+"/agents")
	shot.take(octx, "operator-agents")
	visit(t, octx, h.URL+home+"/users")
	shot.take(octx, "operator-forbidden")

	// The subscription lapses: the Free plan's limits apply, a banner says
	// so, and a new agent is refused with a way to upgrade.
	lapseSubscription(t, h, tenantID)
	visit(t, ctx, h.URL+home+"/billing")
	shot.take(ctx, "admin-billing-lapsed")
	visit(t, ctx, h.URL+home+"/agents/new")
	fill(t, ctx, map[string]string{"#name": "Nova"})
	submit(t, ctx, `[data-testid=save-agent]`, "[data-testid=error-action]")
	require.Contains(t, text(t, ctx, "body"), "Your plan is full")
	shot.take(ctx, "admin-plan-limit")

	// Public error pages.
	pctx := newChrome(t, 1440, 900)
	visit(t, pctx, h.URL+"/invitations/accept?token=tampered")
	shot.take(pctx, "invitation-invalid")
	if dir := os.Getenv("KONSTRUCT_SCREENSHOTS"); dir != "" {
		t.Logf("%d screenshots in %s", shot.n, dir)
	}
}
