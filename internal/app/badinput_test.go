package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
)

// countAgents counts a tenant's agents straight from the database.
func countAgents(t *testing.T, h *harness, tenant uuid.UUID) int {
	t.Helper()
	var n int64
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenant, func(tx *store.Tx) error {
		var err error
		n, err = tx.QueryInt(context.Background(), `SELECT count(*) FROM agents`)
		return err
	}))
	return int(n)
}

func tenantOf(home string) uuid.UUID { return uuid.MustParse(strings.TrimPrefix(home, "/t/")) }

// A forged, missing, foreign or cross-origin form token gets the 403 page and
// changes nothing.
func TestForgedCSRFChangesNothing(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser()
	home := b.signUp("ada@acme.test", "Ada", "Acme")
	other := h.browser()
	other.signUp("eve@evil.test", "Eve", "Evil")
	form := func(token string) url.Values {
		return url.Values{"csrf_token": {token}, "name": {"Forged agent"}}
	}
	for name, token := range map[string]string{
		"forged":         "forged-token",
		"empty":          "",
		"another user's": other.csrf,
		"truncated":      b.csrf[:len(b.csrf)-2],
	} {
		p := b.post(home+"/agents", form(token))
		require.Equal(t, http.StatusForbidden, p.Status, name)
		require.Contains(t, p.Body, "This form has expired", name)
		require.Contains(t, p.Body, "Nothing was changed")
	}
	// The right token from another site (the browser says so in Origin).
	req, _ := http.NewRequest(http.MethodPost, h.URL+home+"/agents", strings.NewReader(form(b.csrf).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	p := b.do(req)
	require.Equal(t, http.StatusForbidden, p.Status)
	// Sign-out needs the token too (no logout by a third-party page).
	p = b.post("/sign-out", url.Values{"csrf_token": {"nope"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Equal(t, http.StatusOK, b.get(home).Status, "still signed in")
	require.Zero(t, countAgents(t, h, tenantOf(home)))

	// The real token works.
	p = b.post(home+"/agents", form(b.csrf))
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, 1, countAgents(t, h, tenantOf(home)))
}

// Sessions end after the idle timeout, and after the absolute lifetime even
// when in use. An expired session's form posts change nothing.
func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, map[string]string{"KONSTRUCT_SESSION_IDLE_TIMEOUT": "1s", "KONSTRUCT_SESSION_LIFETIME": "3s"})
	b := h.browser()
	home := b.signUp("ada@acme.test", "Ada", "Acme")
	token := b.csrf
	time.Sleep(1500 * time.Millisecond) // idle
	p := b.get(home)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.True(t, strings.HasPrefix(p.Location, "/sign-in?next="), p.Location)
	p = b.post(home+"/agents", url.Values{"csrf_token": {token}, "name": {"Late"}})
	require.Contains(t, []int{http.StatusForbidden, http.StatusUnauthorized}, p.Status)
	require.Zero(t, countAgents(t, h, tenantOf(home)))

	// Absolute lifetime: busy, but over after 3 seconds.
	b.signIn("ada@acme.test", "Str0ng-Passphrase!")
	start := time.Now()
	for time.Since(start) < 2500*time.Millisecond {
		require.Equal(t, http.StatusOK, b.get(home).Status, "active use keeps the session within its lifetime")
		time.Sleep(400 * time.Millisecond)
	}
	time.Sleep(time.Until(start.Add(3200 * time.Millisecond)))
	p = b.get(home)
	require.Equal(t, http.StatusSeeOther, p.Status, "the session ended at its absolute lifetime")

	// A stale cookie shows why on the sign-in page.
	stale := h.browser()
	stale.signIn("ada@acme.test", "Str0ng-Passphrase!")
	cookie := stale.c.Jar.Cookies(mustURL(h.URL))
	require.NotEmpty(t, cookie)
	_, err := h.app.Store.Pool().Exec(context.Background(), `DELETE FROM sessions`) // the server forgot it
	require.NoError(t, err)
	p = stale.get(home)
	require.Equal(t, http.StatusSeeOther, p.Status)
	p = stale.get(p.Location)
	require.Contains(t, p.Body, "Your session expired")
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// The session token changes at sign-in and sign-out (no fixation), the old
// one is dead, and the cookie is HttpOnly and SameSite=Lax.
func TestSessionCookieAndFixation(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser()
	b.signUp("ada@acme.test", "Ada", "Acme")
	b.post("/sign-out", nil)
	b.get("/sign-in")
	before := cookieValue(b)
	require.NotEmpty(t, before, "an anonymous session carries the form token")

	req, _ := http.NewRequest(http.MethodPost, h.URL+"/sign-in", strings.NewReader(url.Values{"csrf_token": {b.csrf},
		"email": {"ada@acme.test"}, "password": {"Str0ng-Passphrase!"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	p := b.do(req)
	require.Equal(t, http.StatusSeeOther, p.Status)
	setCookie := p.Header.Get("Set-Cookie")
	require.Contains(t, setCookie, "konstruct_session=")
	require.Contains(t, setCookie, "HttpOnly")
	require.Contains(t, setCookie, "SameSite=Lax")
	require.Contains(t, setCookie, "Path=/")
	after := cookieValue(b)
	require.NotEqual(t, before, after, "signing in issues a new session token")

	// The pre-sign-in token does not carry the signed-in session.
	fix := h.browser()
	fix.c.Jar.SetCookies(mustURL(h.URL), []*http.Cookie{{Name: "konstruct_session", Value: before, Path: "/"}})
	require.Equal(t, http.StatusSeeOther, fix.get("/account").Status)

	b.get("/account")
	b.post("/sign-out", nil)
	require.NotEqual(t, after, cookieValue(b), "signing out issues a new token")
	dead := h.browser()
	dead.c.Jar.SetCookies(mustURL(h.URL), []*http.Cookie{{Name: "konstruct_session", Value: after, Path: "/"}})
	require.Equal(t, http.StatusSeeOther, dead.get("/account").Status, "the signed-out token is dead")

	// Only the token's hash is stored.
	var n int
	require.NoError(t, h.app.Store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE token = $1`, after).Scan(&n))
	require.Zero(t, n)
}

func cookieValue(b *browser) string {
	for _, c := range b.c.Jar.Cookies(mustURL(b.h.URL)) {
		if c.Name == "konstruct_session" {
			return c.Value
		}
	}
	return ""
}

// Over HTTPS the cookie is Secure and host-bound (__Host- prefix).
func TestSecureCookieBehindHTTPS(t *testing.T) {
	h := newHarness(t, map[string]string{"KONSTRUCT_PUBLIC_URL": "https://konstruct.example.com"})
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/sign-in", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	c := rec.Header().Get("Set-Cookie")
	require.True(t, strings.HasPrefix(c, "__Host-konstruct_session="), c)
	require.Contains(t, c, "Secure")
	require.Contains(t, c, "HttpOnly")
	require.Contains(t, c, "SameSite=Lax")
	require.NotContains(t, c, "Domain=")
	require.Contains(t, rec.Header().Get("Strict-Transport-Security"), "max-age=")
	require.Contains(t, rec.Header().Get("Content-Security-Policy"), "script-src 'self'")
}

var (
	sqlish  = `Robert'); DROP TABLE agents;-- `
	htmlish = `<script>alert("x")</script><img src=x onerror=alert(1)>`
)

// SQL and HTML typed into every text field are stored as typed and shown
// escaped; nothing is executed or injected.
func TestHostileTextIsStoredAndEscaped(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser()
	b.get("/sign-up")
	name, org := htmlish+" "+sqlish, sqlish+htmlish
	p := b.post("/sign-up", url.Values{"email": {"ada@acme.test"}, "name": {name}, "organisation": {org}, "password": {"Str0ng-Passphrase!"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	home := strings.TrimSuffix(p.Location, "/onboarding") // a new organisation lands in the setup stepper
	tenant := tenantOf(home)
	b.get(home) // the signed-in session has a new form token

	p = b.post(home+"/agents", url.Values{"name": {truncateRunes(htmlish, 90)}, "role": {sqlish + htmlish}, "persona": {htmlish},
		"system_prompt": {sqlish + htmlish}, "esc_keywords": {htmlish + ", " + sqlish}, "esc_handoff_message": {htmlish}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	agentPath := p.Location
	require.Equal(t, http.StatusSeeOther, b.post(home+"/settings", url.Values{"name": {org + "!"}}).Status)
	require.Equal(t, http.StatusSeeOther, b.post("/account/profile", url.Values{"name": {name + "!"}}).Status)
	p = b.post(home+"/invitations", url.Values{"email": {htmlish + "@x.test"}, "role": {"customer_operator"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status, "a hostile email is refused")
	require.Contains(t, p.Body, "must be an email address")

	for _, path := range []string{home, home + "/onboarding", home + "/agents", agentPath, agentPath + "/edit", home + "/users", home + "/settings",
		home + "/activity", "/account"} {
		p := b.get(path)
		require.Equal(t, http.StatusOK, p.Status, path)
		require.NotContains(t, p.Body, "<script>alert", path)
		require.NotContains(t, p.Body, "<img src=x", path)
		require.Contains(t, p.Body, "&lt;script&gt;alert(", path)
	}
	// The designer's live preview answers JSON, escaped by the browser's textContent.
	req, _ := http.NewRequest(http.MethodPost, h.URL+home+"/agents/preview", strings.NewReader(url.Values{"name": {htmlish}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", b.csrf)
	p = b.do(req)
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Header.Get("Content-Type"), "application/json")
	require.NotContains(t, p.Body, "<script>")

	// Stored exactly as typed; every table is still there.
	ctx := context.Background()
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		ten, err := tx.GetTenant(ctx, tenant)
		require.NoError(t, err)
		require.Equal(t, strings.TrimSpace(org+"!"), ten.Name)
		list, err := tx.ListAgents(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, strings.TrimSpace(sqlish+htmlish), list[0].Role)
		require.Equal(t, htmlish, list[0].Persona)
		require.Contains(t, list[0].Escalation.Keywords, htmlish)
		return nil
	}))
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

// Over-long fields get a clear message next to the field, and nothing is saved.
func TestOverLongFieldsAreRefused(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser()
	b.get("/sign-up")
	p := b.post("/sign-up", url.Values{"email": {strings.Repeat("a", 250) + "@acme.test"}, "name": {strings.Repeat("n", 201)},
		"organisation": {strings.Repeat("o", 201)}, "password": {strings.Repeat("Pw1!", 40)}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	for _, msg := range []string{"must be at most 254 characters", "must be at most 200 characters (got 201)", "use at most 128 characters"} {
		require.Contains(t, p.Body, msg)
	}
	var tenants int
	require.NoError(t, h.app.Store.WithPlatform(context.Background(), func(tx *store.Tx) error {
		n, err := tx.QueryInt(context.Background(), `SELECT count(*) FROM tenants`)
		tenants = int(n)
		return err
	}))
	require.Zero(t, tenants)

	home := b.signUp("ada@acme.test", "Ada", "Acme")
	p = b.post(home+"/agents", url.Values{"name": {strings.Repeat("x", 101)}, "role": {strings.Repeat("r", 201)},
		"persona": {strings.Repeat("p", 4001)}, "system_prompt": {strings.Repeat("s", 20001)},
		"models":              {"openai/a", "openai/b", "openai/c", "openai/d", "openai/e", "openai/f", "openai/g", "openai/h", "openai/i"},
		"esc_handoff_message": {strings.Repeat("h", 1001)}, "esc_max_failed_turns": {"1000"}, "esc_notify_channel": {"#general"},
		"tools": {"rm_rf"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	for _, msg := range []string{
		"must be at most 100 characters (got 101)", "must be at most 200 characters (got 201)", "must be at most 4000 characters (got 4001)",
		"must be at most 20000 characters (got 20001)", "at most 8 models in a chain", "must be a whole number from 0 to 100",
		"unknown tool &#34;rm_rf&#34;",
	} {
		require.Contains(t, p.Body, msg)
	}
	require.Zero(t, countAgents(t, h, tenantOf(home)))
	// The escalation schema's own limits, once the turn count is a number.
	p = b.post(home+"/agents", url.Values{"name": {"Ok"}, "esc_handoff_message": {strings.Repeat("h", 1001)}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "must be at most 1000 characters")
	p = b.post(home+"/agents", url.Values{"name": {"Ok"}, "esc_notify_channel": {"#general"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "must be a Slack channel ID such as C0123ABCD")
	require.Zero(t, countAgents(t, h, tenantOf(home)))

	// A body over the server's limit is refused before it is read.
	big := url.Values{"csrf_token": {b.csrf}, "name": {"Big"}, "system_prompt": {strings.Repeat("z", 2<<20)}}
	p = b.post(home+"/agents", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, p.Status)
	require.Zero(t, countAgents(t, h, tenantOf(home)))

	p = b.post(home+"/settings", url.Values{"name": {strings.Repeat("o", 201)}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "must be at most 200 characters")
}

var linkInLogRE = regexp.MustCompile(`"link":"(http[^"]+)"`)

// A tampered, used, revoked or expired invitation link shows a clear page and
// creates nothing; with no SMTP configured the link is written to the log.
func TestInvitationLinksWithoutSMTP(t *testing.T) {
	h := newHarness(t, map[string]string{"KONSTRUCT_SMTP_URL": "none"})
	b := h.browser()
	home := b.signUp("ada@acme.test", "Ada", "Acme")
	p := b.post(home+"/invitations", url.Values{"email": {"otto@acme.test"}, "role": {"customer_operator"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	p = b.get(p.Location)
	require.Contains(t, p.Body, "Invitation sent to otto@acme.test")
	m := linkInLogRE.FindStringSubmatch(h.logs.String())
	require.NotNil(t, m, "the invitation link is logged when no SMTP server is configured")
	require.Contains(t, h.logs.String(), `"level":"INFO","msg":"email not sent: no KONSTRUCT_SMTP_URL is configured`)
	link, err := url.Parse(strings.ReplaceAll(m[1], `\u0026`, "&"))
	require.NoError(t, err)
	token := link.Query().Get("token")
	require.NotEmpty(t, token)

	invitee := h.browser()
	for _, bad := range []string{"", "x", token[:len(token)-1], token + "x", strings.ToUpper(token)} {
		p := invitee.get("/invitations/accept?token=" + url.QueryEscape(bad))
		require.Equal(t, http.StatusNotFound, p.Status, bad)
		require.Contains(t, p.Body, "This link is not valid")
		require.Equal(t, "no-referrer", p.Header.Get("Referrer-Policy"))
		p = invitee.post("/invitations/accept", url.Values{"token": {bad}, "name": {"Otto"}, "password": {"Quiet-Observer-2024!"},
			"confirm_password": {"Quiet-Observer-2024!"}})
		require.Equal(t, http.StatusNotFound, p.Status)
	}
	p = invitee.get(link.RequestURI())
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, "Join Acme")
	p = invitee.post("/invitations/accept", url.Values{"token": {token}, "name": {"Otto"}, "password": {"Quiet-Observer-2024!"},
		"confirm_password": {"Quiet-Observer-2024!"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, home, p.Location)
	p = invitee.get(home)
	require.Contains(t, p.Body, "You joined as Operator")

	// Used: a second visit explains.
	again := h.browser()
	p = again.get(link.RequestURI())
	require.Equal(t, http.StatusGone, p.Status)
	require.Contains(t, p.Body, "This invitation was already used")
	p = again.post("/invitations/accept", url.Values{"token": {token}, "name": {"Mallory"}, "password": {"Quiet-Observer-2024!"},
		"confirm_password": {"Quiet-Observer-2024!"}})
	require.Equal(t, http.StatusGone, p.Status)

	// Revoked.
	p = b.post(home+"/invitations", url.Values{"email": {"rita@acme.test"}, "role": {"customer_admin"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	all := linkInLogRE.FindAllStringSubmatch(h.logs.String(), -1)
	rita, _ := url.Parse(strings.ReplaceAll(all[len(all)-1][1], `\u0026`, "&"))
	var invID string
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantOf(home), func(tx *store.Tx) error {
		inv, err := tx.OpenInvitationFor(context.Background(), "rita@acme.test")
		invID = inv.ID.String()
		return err
	}))
	require.Equal(t, http.StatusSeeOther, b.post(home+"/invitations/"+invID+"/revoke", nil).Status)
	p = h.browser().get(rita.RequestURI())
	require.Equal(t, http.StatusGone, p.Status)
	require.Contains(t, p.Body, "This invitation was withdrawn")

	// Expired.
	p = b.post(home+"/invitations", url.Values{"email": {"eve@acme.test"}, "role": {"customer_admin"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	all = linkInLogRE.FindAllStringSubmatch(h.logs.String(), -1)
	eve, _ := url.Parse(strings.ReplaceAll(all[len(all)-1][1], `\u0026`, "&"))
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantOf(home), func(tx *store.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE email = 'eve@acme.test'`)
		return err
	}))
	p = h.browser().get(eve.RequestURI())
	require.Equal(t, http.StatusGone, p.Status)
	require.Contains(t, p.Body, "This invitation has expired")
	p = b.get(home + "/users")
	require.Contains(t, p.Body, "expired")

	// Exactly one account was created by all of this.
	var users int
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantOf(home), func(tx *store.Tx) error {
		n, err := tx.QueryInt(context.Background(), `SELECT count(*) FROM users`)
		users = int(n)
		return err
	}))
	require.Equal(t, 2, users)
}
