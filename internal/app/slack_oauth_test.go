package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

const (
	oauthClientID     = "1234567890.0987654321"
	oauthClientSecret = "fake-client-secret-42"
)

// slackOAuthHarness is the platform with "Add to Slack" set up against a
// fake Slack that checks the app's client ID and secret.
func slackOAuthHarness(t *testing.T) (*harness, *fakeslack.Server) {
	t.Helper()
	sl := fakeslack.New(t)
	sl.SetOAuthClient(oauthClientID, oauthClientSecret)
	h := newHarness(t, map[string]string{"KONSTRUCT_SLACK_API_URL": sl.URL(),
		"KONSTRUCT_SLACK_CLIENT_ID": oauthClientID, "KONSTRUCT_SLACK_CLIENT_SECRET": oauthClientSecret})
	return h, sl
}

func slackChannels(t *testing.T, h *harness, tenant uuid.UUID) []store.ChannelConnection {
	t.Helper()
	var out []store.ChannelConnection
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListChannels(context.Background())
		return err
	}))
	return out
}

// startInstall asks the portal to add Slack for agent and returns the
// consent page's URL the browser was sent to.
func startInstall(t *testing.T, b *browser, agent uuid.UUID) string {
	t.Helper()
	p := b.get("/slack/install?agent_id=" + agent.String())
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	return p.Location
}

// callbackPath is the portal path Slack's redirect location points at.
func callbackPath(t *testing.T, h *harness, location string) string {
	t.Helper()
	require.True(t, strings.HasPrefix(location, h.URL+"/slack/oauth/callback?"), location)
	return strings.TrimPrefix(location, h.URL)
}

// The whole "Add to Slack" contract over HTTP: the redirect to Slack's
// consent page with the manifest's scopes and a session-bound state; a
// forged state, another browser's state, a replayed callback, an expired
// state and a denied consent refused with a clear page and nothing stored;
// a successful install stored sealed and routed to the chosen agent; a
// re-install updating the token in place; another organisation's workspace
// a 409 page; an operator refused.
func TestSlackOAuthInstall(t *testing.T) {
	h, sl := slackOAuthHarness(t)
	const team, botUser = "T0ACMEOAUTH", "U0ACMEBOT1"
	sl.AddWorkspace(team, "xoxb-oauth-first-token", botUser)
	sl.SetInstallWorkspace(team)

	admin := h.browser()
	home := admin.signUp("ada@acme.test", "Ada Lovelace", "Acme Robotics")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	agents := seedAgents(t, h, tenant, "Ada", "Sam")
	sam := agents[1]

	// Forms may end at Slack's consent page (a form's redirects obey form-action).
	origin := strings.TrimSuffix(sl.URL(), "/api/")
	require.Contains(t, admin.get(home).Header.Get("Content-Security-Policy"), "form-action 'self' "+origin+";")

	// To Slack's consent page, with what the manifest asks for.
	authURL := startInstall(t, admin, sam.ID)
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	require.Equal(t, sl.AuthorizeURL(), u.Scheme+"://"+u.Host+u.Path, "the authorize URL is on KONSTRUCT_SLACK_API_URL's origin")
	q := u.Query()
	require.Equal(t, oauthClientID, q.Get("client_id"))
	require.Equal(t, strings.Join(slack.BotScopes(), ","), q.Get("scope"))
	require.Equal(t, h.URL+"/slack/oauth/callback", q.Get("redirect_uri"))
	state := q.Get("state")
	require.GreaterOrEqual(t, len(state), 40, "the state is long and random")

	// A forged state: refused, nothing exchanged.
	p := admin.get("/slack/oauth/callback?code=stolen-code&state=forged" + state[:10])
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "This Slack installation could not be verified")
	require.Contains(t, p.Body, "Nothing was connected")
	// The right state in another browser (another session): refused too.
	other := h.browser()
	other.signUp("eve@evil.test", "Eve", "Evil Corp")
	allowed, err := sl.Decide(authURL, true)
	require.NoError(t, err)
	p = other.get(callbackPath(t, h, allowed))
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "could not be verified")
	require.Zero(t, sl.Calls("oauth.v2.access"), "no code was exchanged for a state that did not match")
	require.Empty(t, slackChannels(t, h, tenant))

	// The real browser's callback is still good (a forged one did not spend it).
	p = admin.get(callbackPath(t, h, allowed))
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, home+"/channels", p.Location)
	landed := admin.get(p.Location)
	require.Contains(t, landed.Body, "Connected the Slack workspace "+team+" workspace to Sam.")
	chans := slackChannels(t, h, tenant)
	require.Len(t, chans, 1)
	require.Equal(t, team, chans[0].ExternalID)
	require.Equal(t, sam.ID, chans[0].AgentID, "connected to the agent chosen")
	require.Equal(t, botUser, chans[0].BotUserID)
	plain, err := h.app.Secrets.Open(chans[0].Secret, store.SecretAAD(tenant, store.ChannelSlack, team))
	require.NoError(t, err)
	require.Equal(t, "xoxb-oauth-first-token", string(plain), "the bot token is stored sealed")
	require.NotContains(t, landed.Body, "xoxb-oauth-first-token")
	require.Equal(t, 1, sl.Calls("oauth.v2.access"))

	// Replaying the callback: the state was used.
	p = admin.get(callbackPath(t, h, allowed))
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "or it was used already")
	require.Equal(t, 1, sl.Calls("oauth.v2.access"))

	// Denied consent: a clear page, nothing changed, and the state is spent.
	denied, err := sl.Decide(startInstall(t, admin, agents[0].ID), false)
	require.NoError(t, err)
	require.Contains(t, denied, "error=access_denied")
	p = admin.get(callbackPath(t, h, denied))
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, "Slack was not connected")
	require.Contains(t, p.Body, "You cancelled on Slack")
	require.Contains(t, p.Body, `data-testid="slack-retry"`)
	require.Equal(t, sam.ID, slackChannels(t, h, tenant)[0].AgentID, "nothing changed")
	require.Equal(t, http.StatusBadRequest, admin.get(callbackPath(t, h, denied)).Status)

	// An expired state: refused after ten minutes.
	late, err := sl.Decide(startInstall(t, admin, agents[0].ID), true)
	require.NoError(t, err)
	ageSlackStates(t, h, 11*time.Minute)
	p = admin.get(callbackPath(t, h, late))
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "The Slack installation took too long")
	require.Equal(t, 1, sl.Calls("oauth.v2.access"), "an expired state's code is not exchanged")

	// Re-installing (Slack issued a new token) re-points and re-keys in place.
	sl.AddWorkspace(team, "xoxb-oauth-second-token", botUser)
	again, err := sl.Decide(startInstall(t, admin, agents[0].ID), true)
	require.NoError(t, err)
	p = admin.get(callbackPath(t, h, again))
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	after := slackChannels(t, h, tenant)
	require.Len(t, after, 1)
	require.Equal(t, chans[0].ID, after[0].ID, "the same connection")
	require.Equal(t, agents[0].ID, after[0].AgentID)
	plain, err = h.app.Secrets.Open(after[0].Secret, store.SecretAAD(tenant, store.ChannelSlack, team))
	require.NoError(t, err)
	require.Equal(t, "xoxb-oauth-second-token", string(plain))

	// Another organisation installing the same workspace: a 409 page.
	evilHome := "/t/" + other.tenantOf(t, h, "eve@evil.test")
	evilAgent := seedAgents(t, h, uuid.MustParse(strings.TrimPrefix(evilHome, "/t/")), "Mallory")[0]
	taken, err := sl.Decide(startInstall(t, other, evilAgent.ID), true)
	require.NoError(t, err)
	p = other.get(callbackPath(t, h, taken))
	require.Equal(t, http.StatusConflict, p.Status)
	require.Contains(t, p.Body, "This Slack workspace belongs to another organisation")
	require.NotContains(t, p.Body, "Acme Robotics")
	require.Empty(t, slackChannels(t, h, evilAgent.TenantID))
	require.Equal(t, agents[0].ID, slackChannels(t, h, tenant)[0].AgentID, "Acme's connection unchanged")

	// The audit trail says how it was connected.
	var events []store.AuditEvent
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
		var err error
		events, err = tx.ListAuditEvents(context.Background(), store.AuditFilter{Types: []string{"channel.connect"}})
		return err
	}))
	require.Len(t, events, 2)
	require.Equal(t, "oauth", events[0].Data["via"])

	// Disconnecting removes it.
	admin.get(home + "/channels")
	p = admin.post(home+"/channels/"+after[0].ID.String()+"/delete", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Empty(t, slackChannels(t, h, tenant))

	// An operator may not install.
	opPassword := "Operator-Pass-Word-9"
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
		hash, err := auth.HashPassword(opPassword)
		if err != nil {
			return err
		}
		_, err = tx.CreateUser(context.Background(), store.User{Email: "otto@acme.test", PasswordHash: hash, Role: store.RoleCustomerOperator})
		return err
	}))
	op := h.browser()
	op.signIn("otto@acme.test", opPassword)
	require.Equal(t, http.StatusForbidden, op.get("/slack/install?agent_id="+sam.ID.String()).Status)
	// And without a session, the install explains it stopped.
	anon := h.browser()
	p = anon.get("/slack/install")
	require.Equal(t, http.StatusUnauthorized, p.Status)
	require.Contains(t, p.Body, "Sign in to add Slack")
}

// tenantOf returns the tenant ID of the user email (signed up in this browser).
func (b *browser) tenantOf(t *testing.T, h *harness, email string) string {
	t.Helper()
	var u store.User
	require.NoError(t, h.app.Store.WithPlatform(context.Background(), func(tx *store.Tx) error {
		var err error
		u, err = tx.GetUserByEmail(context.Background(), email)
		return err
	}))
	return u.TenantID.String()
}

// ageSlackStates moves every pending Slack install in the session store d
// into the past, as if the person had spent d on Slack's page.
func ageSlackStates(t *testing.T, h *harness, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	rows, err := h.app.Store.Pool().Query(ctx, `SELECT token, data FROM sessions`)
	require.NoError(t, err)
	type row struct {
		token string
		data  []byte
	}
	var all []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.token, &r.data))
		all = append(all, r)
	}
	require.NoError(t, rows.Err())
	aged := 0
	for _, r := range all {
		deadline, values, err := scs.GobCodec{}.Decode(r.data)
		require.NoError(t, err)
		raw, ok := values["slack_oauth"].(string)
		if !ok {
			continue
		}
		var pending map[string]any
		require.NoError(t, json.Unmarshal([]byte(raw), &pending))
		exp, err := time.Parse(time.RFC3339Nano, pending["expires"].(string))
		require.NoError(t, err)
		pending["expires"] = exp.Add(-d).Format(time.RFC3339Nano)
		b, _ := json.Marshal(pending)
		values["slack_oauth"] = string(b)
		data, err := scs.GobCodec{}.Encode(deadline, values)
		require.NoError(t, err)
		_, err = h.app.Store.Pool().Exec(ctx, `UPDATE sessions SET data = $2 WHERE token = $1`, r.token, data)
		require.NoError(t, err)
		aged++
	}
	require.Positive(t, aged, "a pending install was in the session store")
}

// Without the app's client ID and secret, "Add to Slack" explains the manual
// way and shows the manifest filled in for this server.
func TestSlackInstallWithoutOAuthExplainsTheManualWay(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.browser()
	home := admin.signUp("ada@acme.test", "Ada Lovelace", "Acme Robotics")
	p := admin.get("/slack/install")
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, "Add to Slack is not set up on this server")
	require.Contains(t, p.Body, "KONSTRUCT_SLACK_CLIENT_ID")
	require.Contains(t, p.Body, home+"/channels#connect-slack")
	require.Contains(t, p.Body, "request_url: &#34;"+h.URL+"/webhooks/slack/events&#34;", "the manifest carries this server's URL")
	require.NotContains(t, p.Body, slack.PublicURLPlaceholder)
	// The stepper offers the same manual way instead of the one-click button.
	stepper := admin.get(home + "/onboarding?step=1")
	require.NotContains(t, stepper.Body, `data-testid="add-to-slack"`)
	require.Contains(t, stepper.Body, `data-testid="slack-manual"`)

	// As a person sees it.
	ctx := newChrome(t, 1440, 900)
	visit(t, ctx, h.URL+"/sign-in")
	fill(t, ctx, map[string]string{"#email": "ada@acme.test", "#password": "Str0ng-Passphrase!"})
	submit(t, ctx, `button[type=submit]`, ".stats")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(h.URL+home+"/onboarding?step=1"), chromedp.WaitVisible(css("[data-testid=slack-manual]")),
		chromedp.Click(css("[data-testid=slack-manual]")), chromedp.WaitVisible(css("[data-testid=manifest]"))))
	newShots(t).take(ctx, "slack-setup")
}
