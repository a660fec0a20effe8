package app_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakestripe"
)

// TestPortalScreenshots walks every main page with realistic data, as an
// admin, an operator and a platform admin, on a desktop and a phone, and
// saves a screenshot of each (KONSTRUCT_SCREENSHOTS=dir keeps them). It also
// checks each page rendered without an error.
func TestPortalScreenshots(t *testing.T) {
	h := newHarness(t, fakestripe.New(t).Env()) // billing on, against stripe-mock
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
	submit(t, ctx, `button[type=submit]`, ".stats")
	home := strings.TrimPrefix(location(t, ctx), h.URL)
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

	// Phone width.
	mctx := newChrome(t, 390, 844)
	visit(t, mctx, h.URL+"/sign-in")
	fill(t, mctx, map[string]string{"#email": "ada@acme.test", "#password": "Analytical-Engine-1843"})
	submit(t, mctx, `button[type=submit]`, ".stats")
	shot.take(mctx, "mobile-dashboard")
	visit(t, mctx, h.URL+home+"/conversations/"+s.Conversations[0].ID.String())
	shot.take(mctx, "mobile-transcript")
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
