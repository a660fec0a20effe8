package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/internal/app"
	"github.com/konstruct/konstruct/internal/config"
	"github.com/konstruct/konstruct/internal/mail/mailtest"
	"github.com/konstruct/konstruct/internal/testkit"
)

const (
	rootEmail    = "root@konstruct.test"
	rootPassword = "Platform-Admin-Pass-1"
)

// harness is the whole platform (app.New + HTTPServer) against a fresh
// database, served by httptest, with an in-process SMTP server.
type harness struct {
	t    testing.TB
	app  *app.App
	srv  *api.Server
	http *httptest.Server
	db   testkit.Database
	smtp *mailtest.Server
	logs *testkit.SyncBuffer
	URL  string
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// newHarness starts the platform. env overrides KONSTRUCT_* settings; the
// SMTP URL "none" leaves mail unconfigured (links go to the log).
func newHarness(t testing.TB, env map[string]string) *harness {
	t.Helper()
	h := &harness{t: t, db: testkit.NewDatabase(t), logs: &testkit.SyncBuffer{}}
	testkit.NewRedis(t) // skips (or fails under CI) with a clear message when Redis is down
	h.smtp = mailtest.Start(t)
	h.http = httptest.NewUnstartedServer(nil)
	h.URL = "http://" + h.http.Listener.Addr().String()
	vars := map[string]string{
		"KONSTRUCT_DATABASE_URL":                h.db.AppURL,
		"KONSTRUCT_MIGRATE_DATABASE_URL":        h.db.OwnerURL,
		"KONSTRUCT_REDIS_URL":                   testkit.RedisURL(),
		"KONSTRUCT_TEMPORAL_ADDRESS":            testkit.TemporalAddress(),
		"KONSTRUCT_TEMPORAL_UI_URL":             "http://temporal-ui.test:8233",
		"KONSTRUCT_PUBLIC_URL":                  h.URL,
		"KONSTRUCT_ENCRYPTION_KEY":              randomKey(),
		"KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL":       rootEmail,
		"KONSTRUCT_BOOTSTRAP_ADMIN_PASSWORD":    rootPassword,
		"KONSTRUCT_RATE_LIMIT_LOGIN_PER_MINUTE": "10000",
		"KONSTRUCT_SMTP_URL":                    h.smtp.URL(),
		"KONSTRUCT_MAIL_FROM":                   "Konstruct <no-reply@konstruct.test>",
		"KONSTRUCT_LOG_LEVEL":                   "debug",
	}
	for k, v := range env {
		vars[k] = v
	}
	if vars["KONSTRUCT_SMTP_URL"] == "none" {
		delete(vars, "KONSTRUCT_SMTP_URL")
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	require.NoError(t, err)
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	h.app, err = app.New(ctx, cfg, logger)
	require.NoError(t, err)
	t.Cleanup(h.app.Close)
	require.NoError(t, h.app.Bootstrap(ctx))
	h.srv = h.app.HTTPServer()
	h.http.Config.Handler = h.srv
	h.http.Start()
	t.Cleanup(h.http.Close)
	return h
}

// browser is an HTTP client with its own cookie jar, like one browser.
type browser struct {
	t    testing.TB
	h    *harness
	c    *http.Client
	csrf string
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: h.t, h: h, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	Status   int
	Body     string
	Location string
	Header   http.Header
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	p := page{Status: res.StatusCode, Body: string(body), Location: res.Header.Get("Location"), Header: res.Header}
	if m := csrfRE.FindStringSubmatch(p.Body); m != nil {
		b.csrf = m[1]
	}
	return p
}

// get fetches a path (no redirects followed).
func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.h.URL+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// follow fetches a path and follows same-site redirects.
func (b *browser) follow(path string) page {
	b.t.Helper()
	p := b.get(path)
	for i := 0; i < 5 && p.Status >= 300 && p.Status < 400; i++ {
		p = b.get(p.Location)
	}
	return p
}

// post submits a form with the current CSRF token (unless form sets one).
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok {
		if b.csrf == "" {
			b.get("/sign-in")
		}
		form.Set("csrf_token", b.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, b.h.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in through the sign-in form.
func (b *browser) signIn(email, password string) page {
	b.t.Helper()
	b.get("/sign-in")
	p := b.post("/sign-in", url.Values{"email": {email}, "password": {password}})
	require.Equal(b.t, http.StatusSeeOther, p.Status, "sign-in as %s: %s", email, p.Body)
	b.get(p.Location) // the session's form token is new: read it
	return p
}

// signUp creates a tenant and its admin through the sign-up form and returns
// the tenant's dashboard path.
func (b *browser) signUp(email, name, org string) string {
	b.t.Helper()
	b.get("/sign-up")
	p := b.post("/sign-up", url.Values{"email": {email}, "name": {name}, "organisation": {org}, "password": {"Str0ng-Passphrase!"}})
	require.Equal(b.t, http.StatusSeeOther, p.Status, "sign-up: %s", p.Body)
	// A new organisation lands in the setup stepper.
	home, ok := strings.CutSuffix(p.Location, "/onboarding")
	require.True(b.t, ok && strings.HasPrefix(home, "/t/"), p.Location)
	b.get(p.Location)
	return home
}

// apiClient calls the REST API with a bearer token.
type apiClient struct {
	t     testing.TB
	h     *harness
	token string
}

func (h *harness) api(email, password string) *apiClient {
	h.t.Helper()
	c := &apiClient{t: h.t, h: h}
	var out struct {
		Token string `json:"token"`
	}
	status := c.call(http.MethodPost, "/api/v1/auth/token", map[string]string{"email": email, "password": password}, &out)
	require.Equal(h.t, http.StatusCreated, status)
	c.token = out.Token
	return c
}

func (c *apiClient) call(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.h.URL+path, r)
	require.NoError(c.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	if out != nil && len(raw) > 0 && res.StatusCode < 300 {
		require.NoError(c.t, json.Unmarshal(raw, out), string(raw))
	}
	if out != nil && res.StatusCode >= 300 {
		if s, ok := out.(*string); ok {
			*s = string(raw)
		}
	}
	return res.StatusCode
}
