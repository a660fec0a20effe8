package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

// seedAgents creates agents named names in tenant, through the store.
func seedAgents(t *testing.T, h *harness, tenant uuid.UUID, names ...string) []store.Agent {
	t.Helper()
	ctx := context.Background()
	var out []store.Agent
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		for _, name := range names {
			a, err := tx.CreateAgent(ctx, store.Agent{Name: name, Status: store.AgentActive})
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	}))
	return out
}

// A customer admin connects a Slack workspace from the Channels page. Slack
// (a fake speaking its Web API) refuses a wrong token: the error shows next
// to the token field, the other values stay, and the token is not sent back.
// The right token connects the workspace, stored encrypted, and it is listed.
func TestBrowserConnectSlack(t *testing.T) {
	slack := fakeslack.New(t)
	const team, token, botUser = "T0ACME42", "xoxb-1111-2222-acme-right-token", "U0ACMEBOT"
	slack.AddWorkspace(team, token, botUser)
	h := newHarness(t, map[string]string{"KONSTRUCT_SLACK_API_URL": slack.URL()})
	ctx := newChrome(t, 1366, 900)
	shot := newShots(t)

	visit(t, ctx, h.URL+"/sign-up")
	fill(t, ctx, map[string]string{"#name": "Ada Lovelace", "#email": "ada@acme.test", "#organisation": "Acme Robotics",
		"#password": "Analytical-Engine-1843"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]") // a new organisation lands in the setup stepper
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	agents := seedAgents(t, h, tenant, "Ada", "Sam")
	sam := agents[1]

	visit(t, ctx, h.URL+home+"/channels")
	require.Contains(t, text(t, ctx, ".empty"), "No channels connected")
	require.Equal(t, 1, count(t, ctx, `[data-testid=connect-slack-form]`))
	require.Equal(t, 1, count(t, ctx, `#slack-bot-token[type=password]`), "the token field hides what is typed")
	help := text(t, ctx, "[data-testid=slack-help]")
	for _, want := range []string{"app_mentions:read", "chat:write", "im:history", "im:read", "channels:history", "groups:history",
		"app_mention", "message.im", h.URL + "/webhooks/slack/events", "Socket Mode"} {
		require.Contains(t, help, want)
	}

	// A token Slack does not know: refused next to its field.
	fill(t, ctx, map[string]string{"#slack-team-id": team, "#slack-bot-token": "xoxb-9999-wrong-token"})
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(css("#slack-agent"), sam.ID.String())))
	submit(t, ctx, `[data-testid=connect-slack]`, `#slack-bot-token ~ .field-error`)
	require.Contains(t, text(t, ctx, `#slack-bot-token ~ .field-error`), "Slack refused this token (invalid_auth)")
	require.Equal(t, 1, count(t, ctx, ".field-error"), "only the token is wrong")
	require.Equal(t, 1, count(t, ctx, ".field.invalid #slack-bot-token"))
	kept, err := chromedp.Run(ctx, chromedp.Value(css("#slack-team-id")))
	require.NoError(t, err)
	require.Equal(t, team, kept, "the team ID is kept")
	chosen, err := chromedp.Run(ctx, chromedp.Value(css("#slack-agent")))
	require.NoError(t, err)
	require.Equal(t, sam.ID.String(), chosen, "the agent is kept")
	typed, err := chromedp.Run(ctx, chromedp.Value(css("#slack-bot-token")))
	require.NoError(t, err)
	require.Empty(t, typed, "the token is not filled in again")
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, "wrong-token", "the token is never sent back")
	shot.take(ctx, "connect-slack-refused")

	// The right token connects the workspace to Sam; it is listed.
	fill(t, ctx, map[string]string{"#slack-bot-token": token})
	submit(t, ctx, `[data-testid=connect-slack]`, `[data-testid=channels-table]`)
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Connected the Slack workspace "+team+" workspace")
	listed := text(t, ctx, "[data-testid=channels-table]")
	require.Contains(t, listed, team)
	require.Contains(t, listed, botUser)
	require.Contains(t, listed, "Sam")
	html, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	require.NotContains(t, html, token)
	require.Equal(t, 2, slack.Calls("auth.test"), "each token was checked with Slack")
	shot.take(ctx, "channels-connected")

	var chans []store.ChannelConnection
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
		var err error
		chans, err = tx.ListChannels(context.Background())
		return err
	}))
	require.Len(t, chans, 1)
	require.Equal(t, sam.ID, chans[0].AgentID)
	plain, err := h.app.Secrets.Open(chans[0].Secret, store.SecretAAD(tenant, store.ChannelSlack, team))
	require.NoError(t, err)
	require.Equal(t, token, string(plain), "stored sealed, bound to the tenant and team")
}

// The form's other refusals, over HTTP: every bad field at once, a workspace
// another organisation connected, and who sees the form.
func TestConnectSlackFormRefusals(t *testing.T) {
	slack := fakeslack.New(t)
	const team, token = "T0SHARED1", "xoxb-3333-shared-token"
	slack.AddWorkspace(team, token, "U0SHAREDBOT")
	h := newHarness(t, map[string]string{"KONSTRUCT_SLACK_API_URL": slack.URL()})

	admin := h.browser()
	home := admin.signUp("admin@first.test", "First Admin", "First Co")
	first := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	ada := seedAgents(t, h, first, "Ada")[0]
	other := h.browser()
	otherHome := other.signUp("admin@second.test", "Second Admin", "Second Co")
	bea := seedAgents(t, h, uuid.MustParse(strings.TrimPrefix(otherHome, "/t/")), "Bea")[0]

	// Nothing filled in: each field says what it needs; Slack is not asked.
	admin.get(home + "/channels")
	p := admin.post(home+"/channels/slack", url.Values{"team_id": {"acme"}, "bot_token": {"xoxp-user-token"}, "agent_id": {"nope"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	for _, msg := range []string{"must be a Slack team ID such as T0123ABCD", "must be a Slack bot token starting with xoxb-",
		"must be the ID of one of this tenant&#39;s agents"} {
		require.Contains(t, p.Body, msg)
	}
	require.NotContains(t, p.Body, "xoxp-user-token")
	require.Zero(t, slack.Calls("auth.test"))

	// Another tenant's agent is no choice here.
	p = admin.post(home+"/channels/slack", url.Values{"team_id": {team}, "bot_token": {token}, "agent_id": {bea.ID.String()}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "no such agent in this tenant")

	// The second organisation connects the workspace first; then it is theirs.
	other.get(otherHome + "/channels")
	p = other.post(otherHome+"/channels/slack", url.Values{"team_id": {team}, "bot_token": {token}, "agent_id": {bea.ID.String()}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = admin.post(home+"/channels/slack", url.Values{"team_id": {team}, "bot_token": {token}, "agent_id": {ada.ID.String()}})
	require.Equal(t, http.StatusConflict, p.Status)
	require.Contains(t, p.Body, "This Slack workspace is already connected to another Konstruct account")
	require.NotContains(t, p.Body, token)
	require.NotContains(t, p.Body, "Second Co")

	// A platform admin sees the form on a customer's Channels page.
	root := h.browser()
	root.signIn(rootEmail, rootPassword)
	require.Contains(t, root.get(home+"/channels").Body, `data-testid="connect-slack-form"`)
}
