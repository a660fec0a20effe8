// Package apitest runs Konstruct's full HTTP handler in-process for REST
// tests: a fresh migrated Postgres database, the shared Redis, a fake Slack
// Web API, the real composition root (app.New, Bootstrap, HTTPServer) behind
// an httptest server, and a platform admin signed in. Every answer a test
// receives through it is checked against api/openapi.yaml, so a handler and
// the spec cannot drift apart without a test failing.
package apitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/app"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/config"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

// Options tune one server.
type Options struct {
	// Env overrides KONSTRUCT_* settings, named without the prefix
	// (e.g. "RATE_LIMIT_LOGIN_PER_MINUTE": "3").
	Env map[string]string
}

// Server is one in-process Konstruct HTTP server on its own database.
type Server struct {
	URL   string
	App   *app.App
	HTTP  *api.Server
	DB    testkit.Database
	Slack *fakeslack.Server
	Spec  *Spec
	Store *store.Store

	AdminEmail    string
	AdminPassword string
	AdminToken    string

	// ClientIP is sent as X-Forwarded-For on every request (the server
	// trusts the loopback proxy), so the per-address sign-in limit of one
	// test never meets another's in the shared Redis.
	ClientIP string

	client *http.Client
	logs   *syncBuffer
}

var (
	specOnce sync.Once
	spec     *Spec
	specErr  error
)

// LoadedSpec parses api/openapi.yaml once per test binary.
func LoadedSpec() (*Spec, error) {
	specOnce.Do(func() { spec, specErr = LoadSpec(api.OpenAPI) })
	return spec, specErr
}

// Start builds the server. It skips (or, under CI=true, fails) when Postgres
// or Redis is missing, like every testkit helper.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	db := testkit.NewDatabase(t)
	testkit.NewRedis(t) // availability check with a clear message
	sl := fakeslack.New(t)

	sp, err := LoadedSpec()
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &Server{
		DB: db, Slack: sl, Spec: sp,
		AdminEmail:    "admin-" + randHex(4) + "@konstruct.test",
		AdminPassword: "pw-" + randHex(12),
		ClientIP:      fmt.Sprintf("198.18.%d.%d", randByte(), randByte()),
		logs:          &syncBuffer{},
	}
	env := map[string]string{
		"DATABASE_URL":                db.AppURL,
		"MIGRATE_DATABASE_URL":        db.OwnerURL,
		"REDIS_URL":                   testkit.RedisURL(),
		"TEMPORAL_ADDRESS":            testkit.TemporalAddress(),
		"TEMPORAL_UI_URL":             "http://127.0.0.1:8233",
		"ENCRYPTION_KEY":              base64.StdEncoding.EncodeToString(key),
		"BOOTSTRAP_ADMIN_EMAIL":       s.AdminEmail,
		"BOOTSTRAP_ADMIN_PASSWORD":    s.AdminPassword,
		"SLACK_API_URL":               sl.URL(),
		"SLACK_SIGNING_SECRET":        "signing-" + randHex(8),
		"RATE_LIMIT_LOGIN_PER_MINUTE": "1000",
		"LOG_LEVEL":                   "debug",
	}
	for k, v := range opts.Env {
		env[strings.TrimPrefix(k, config.Prefix)] = v
	}
	cfg, err := config.Load(func(name string) (string, bool) {
		v, ok := env[strings.TrimPrefix(name, config.Prefix)]
		return v, ok
	})
	if err != nil {
		t.Fatalf("apitest: config: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("apitest: app.New: %v", err)
	}
	t.Cleanup(a.Close)
	if err := a.Bootstrap(ctx); err != nil {
		t.Fatalf("apitest: bootstrap: %v", err)
	}
	s.App, s.Store = a, a.Store
	s.HTTP = a.HTTPServer()
	hs := httptest.NewServer(s.HTTP)
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	s.client = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	s.AdminToken = s.Login(t, s.AdminEmail, s.AdminPassword)
	return s
}

// Response is one answer, read in full.
type Response struct {
	Method string
	Path   string
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s %s: body is not the JSON expected (%v): %s", r.Method, r.Path, err, r.Body)
	}
}

// Object decodes the body as a JSON object.
func (r *Response) Object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Err decodes the error envelope.
func (r *Response) Err(t testing.TB) apiutil.ErrorDetail {
	t.Helper()
	var e apiutil.ErrorBody
	r.JSON(t, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%s %s: %d without an error envelope: %s", r.Method, r.Path, r.Status, r.Body)
	}
	return e.Error
}

// Expect fails the test unless the status is want.
func (r *Response) Expect(t testing.TB, want int) *Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", r.Method, r.Path, r.Status, want, r.Body)
	}
	return r
}

// ExpectError fails the test unless the answer is status with the error
// envelope carrying code and field ("" for no field); it returns the message.
func (r *Response) ExpectError(t testing.TB, status int, code, field string) string {
	t.Helper()
	r.Expect(t, status)
	e := r.Err(t)
	if e.Code != code || e.Field != field {
		t.Fatalf("%s %s: error code %q field %q, want code %q field %q (message %q)", r.Method, r.Path,
			e.Code, e.Field, code, field, e.Message)
	}
	return e.Message
}

// NewRequest builds a request to path. body: nil for none, string or []byte
// sent as is, anything else as JSON; a body gets Content-Type
// application/json. token, when set, goes in the Authorization header.
func (s *Server) NewRequest(t testing.TB, method, path, token string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("apitest: marshal body: %v", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// Do sends a request (see NewRequest) and checks the answer against the spec.
func (s *Server) Do(t testing.TB, method, path, token string, body any) *Response {
	t.Helper()
	return s.Send(t, s.NewRequest(t, method, path, token, body))
}

// Send sends req over HTTP and checks the answer against the spec.
func (s *Server) Send(t testing.TB, req *http.Request) *Response {
	t.Helper()
	if req.Header.Get("X-Forwarded-For") == "" {
		req.Header.Set("X-Forwarded-For", s.ClientIP)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("apitest: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("apitest: %s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	r := &Response{Method: req.Method, Path: req.URL.Path, Status: res.StatusCode, Header: res.Header, Body: body}
	s.check(t, r)
	return r
}

// Serve runs a request through the handler in-process, without a network
// round trip (for fuzzing), and checks the answer against the spec.
func (s *Server) Serve(t testing.TB, method, path, token string, body any) *Response {
	t.Helper()
	req := s.NewRequest(t, method, path, token, body)
	req.RequestURI = req.URL.RequestURI()
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Forwarded-For", s.ClientIP)
	rec := httptest.NewRecorder()
	s.HTTP.ServeHTTP(rec, req)
	r := &Response{Method: method, Path: req.URL.Path, Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	s.check(t, r)
	return r
}

func (s *Server) check(t testing.TB, r *Response) {
	t.Helper()
	if r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
		t.Errorf("%s %s: server error %d: %s", r.Method, r.Path, r.Status, r.Body)
	}
	if err := s.Spec.CheckResponse(r.Method, r.Path, r.Status, r.Header, r.Body); err != nil {
		t.Fatalf("openapi.yaml contract: %v", err)
	}
}

// Login exchanges email and password for a bearer token.
func (s *Server) Login(t testing.TB, email, password string) string {
	t.Helper()
	r := s.Do(t, http.MethodPost, "/api/v1/auth/token", "", map[string]string{"email": email, "password": password})
	r.Expect(t, http.StatusCreated)
	var tok struct {
		Token string `json:"token"`
	}
	r.JSON(t, &tok)
	return tok.Token
}

// Tenant is the JSON of a tenant.
type Tenant struct {
	ID     uuid.UUID `json:"id"`
	Name   string    `json:"name"`
	Status string    `json:"status"`
}

// CreateTenant creates a tenant as the platform admin.
func (s *Server) CreateTenant(t testing.TB, name string) Tenant {
	t.Helper()
	var ten Tenant
	s.Do(t, http.MethodPost, "/api/v1/tenants", s.AdminToken, map[string]string{"name": name}).
		Expect(t, http.StatusCreated).JSON(t, &ten)
	return ten
}

// User is a user created for a test, signed in.
type User struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Email    string
	Password string
	Role     string
	Token    string
}

// NewUser creates a user of tenantID with role directly in the store and
// signs it in through POST /api/v1/auth/token.
func (s *Server) NewUser(t testing.TB, tenantID uuid.UUID, role string) User {
	t.Helper()
	u := User{TenantID: tenantID, Email: role + "-" + randHex(4) + "@example.test", Password: "pw-" + randHex(12), Role: role}
	hash, err := auth.HashPassword(u.Password)
	if err != nil {
		t.Fatalf("apitest: hash password: %v", err)
	}
	ctx := context.Background()
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		created, err := tx.CreateUser(ctx, store.User{Email: u.Email, Name: role, PasswordHash: hash, Role: role})
		u.ID = created.ID
		return err
	})
	if err != nil {
		t.Fatalf("apitest: create user: %v", err)
	}
	u.Token = s.Login(t, u.Email, u.Password)
	return u
}

// Agent is the JSON of an agent (the fields tests look at most).
type Agent struct {
	ID       uuid.UUID `json:"id"`
	TenantID uuid.UUID `json:"tenant_id"`
	Name     string    `json:"name"`
	Models   []string  `json:"models"`
	Status   string    `json:"status"`
}

// CreateAgent creates an agent named name in tenantID.
func (s *Server) CreateAgent(t testing.TB, token string, tenantID uuid.UUID, name string) Agent {
	t.Helper()
	var ag Agent
	s.Do(t, http.MethodPost, "/api/v1/tenants/"+tenantID.String()+"/agents", token,
		map[string]any{"name": name, "models": []string{"openai/gpt-4o-mini"}}).
		Expect(t, http.StatusCreated).JSON(t, &ag)
	return ag
}

// Workspace registers a fresh Slack workspace in the fake Slack and returns
// its team ID and bot token.
func (s *Server) Workspace() (teamID, botToken string) {
	teamID = "T" + strings.ToUpper(randHex(5))
	botToken = "xoxb-" + randHex(6) + "-" + randHex(10)
	s.Slack.AddWorkspace(teamID, botToken, "U"+strings.ToUpper(randHex(4)))
	return teamID, botToken
}

// Channel is the JSON of a channel connection.
type Channel struct {
	ID         uuid.UUID `json:"id"`
	AgentID    uuid.UUID `json:"agent_id"`
	ExternalID string    `json:"external_id"`
}

// ConnectSlack connects a fresh fake workspace to agentID.
func (s *Server) ConnectSlack(t testing.TB, token string, tenantID, agentID uuid.UUID) Channel {
	t.Helper()
	team, bot := s.Workspace()
	var ch Channel
	s.Do(t, http.MethodPost, "/api/v1/tenants/"+tenantID.String()+"/channels/slack", token,
		map[string]string{"team_id": team, "bot_token": bot, "agent_id": agentID.String()}).
		Expect(t, http.StatusCreated).JSON(t, &ch)
	return ch
}

// SeedConversation records a Slack conversation of agentID with turns turns
// (a user message and an assistant reply each) through the store, as the
// conversation workflow's activities would.
func (s *Server) SeedConversation(t testing.TB, tenantID, agentID uuid.UUID, turns int) store.Conversation {
	t.Helper()
	ctx := context.Background()
	thread := fmt.Sprintf("%d.%06d", time.Now().Unix(), randByte())
	key := "T0SEED:C0SEED:" + thread + randHex(3)
	var cv store.Conversation
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		cv, err = tx.EnsureConversation(ctx, store.Conversation{AgentID: agentID, Channel: store.ChannelSlack,
			ExternalKey: key, WorkflowID: "conversation/" + tenantID.String() + "/slack/" + key, UserRef: "U0ALICE"})
		if err != nil {
			return err
		}
		for turn := 1; turn <= turns; turn++ {
			if _, err := tx.AddMessage(ctx, store.Message{ConversationID: cv.ID, Turn: turn, Role: "user",
				Content: fmt.Sprintf("question %d", turn), Author: "U0ALICE", IdempotencyKey: fmt.Sprintf("%s/%d/in", cv.ID, turn)}); err != nil {
				return err
			}
			if _, err := tx.AddMessage(ctx, store.Message{ConversationID: cv.ID, Turn: turn, Role: "assistant",
				Content: fmt.Sprintf("answer %d", turn), Author: "agent", Provider: "openai", Model: "gpt-4o-mini",
				IdempotencyKey: fmt.Sprintf("%s/%d/out", cv.ID, turn)}); err != nil {
				return err
			}
		}
		cv, err = tx.GetConversation(ctx, cv.ID)
		return err
	})
	if err != nil {
		t.Fatalf("apitest: seed conversation: %v", err)
	}
	return cv
}

// Logs returns what the server logged so far.
func (s *Server) Logs() string { return s.logs.String() }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randByte() int {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return int(b[0])
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 4<<20 { // keep the tail bounded in long runs
		s.b.Reset()
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
