package app_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakestripe"
)

var paramRE = regexp.MustCompile(`:[a-z_]+|\*[a-z_]+`)

// actor is one role, signed in both ways: a portal session and an API token.
type actor struct {
	name      string
	principal *authz.Principal // nil: anonymous
	email     string
	password  string
	browser   *browser
	token     string
}

func (a *actor) signIn(h *harness) {
	a.browser = h.browser()
	if a.principal == nil {
		a.browser.get("/sign-in") // an anonymous session with a form token
		return
	}
	a.browser.signIn(a.email, a.password)
}

// TestEveryRouteEveryRole walks every route the server has, API and portal,
// as every role (and anonymously), against the caller's own tenant and
// another one, and checks the answer against the policy: allowed requests
// pass the guard (no 401/403/404 and no server error); refused ones get
// exactly 401, 403 or 404 (the portal sends anonymous page views to sign in).
// A Gin route registered without a permission fails the test.
func TestEveryRouteEveryRole(t *testing.T) {
	// Billing on (stripe-mock), so its routes answer as in production.
	h := newHarness(t, fakestripe.New(t).Env())
	ctx := context.Background()
	enf := h.srv.Registry.Enforcer()

	// Every Gin route went through the registry, so it has a permission.
	routes := h.srv.Registry.Routes()
	require.NotEmpty(t, routes)
	for _, r := range h.srv.Engine.Routes() {
		_, ok := h.srv.Registry.Perm(r.Method, r.Path)
		require.True(t, ok, "%s %s is registered on the engine without a permission: register it through Registry.Handle", r.Method, r.Path)
	}
	require.Len(t, routes, len(h.srv.Engine.Routes()), "the registry and the engine list the same routes")

	// Tenant A with an admin and an operator; tenant B with an admin.
	adminA := h.browser()
	homeA := adminA.signUp("admin@a.test", "Admin A", "Tenant A")
	tenantA := uuid.MustParse(strings.TrimPrefix(homeA, "/t/"))
	homeB := h.browser().signUp("admin@b.test", "Admin B", "Tenant B")
	tenantB := uuid.MustParse(strings.TrimPrefix(homeB, "/t/"))
	opPassword := "Operator-Pass-Word-9"
	var operator store.User
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantA, func(tx *store.Tx) error {
		hash, err := auth.HashPassword(opPassword)
		if err != nil {
			return err
		}
		operator, err = tx.CreateUser(ctx, store.User{Email: "operator@a.test", Name: "Operator A", PasswordHash: hash, Role: store.RoleCustomerOperator})
		return err
	}))
	principalOf := func(email string) *authz.Principal {
		var u store.User
		require.NoError(t, h.app.Store.WithPlatform(ctx, func(tx *store.Tx) error {
			var err error
			u, err = tx.GetUserByEmail(ctx, email)
			return err
		}))
		p := auth.PrincipalOf(u)
		return &p
	}
	actors := []*actor{
		{name: "platform_admin", principal: principalOf(rootEmail), email: rootEmail, password: rootPassword},
		{name: "customer_admin", principal: principalOf("admin@a.test"), email: "admin@a.test", password: "Str0ng-Passphrase!"},
		{name: "customer_operator", principal: principalOf(operator.Email), email: operator.Email, password: opPassword},
		{name: "anonymous"},
	}
	for _, a := range actors {
		a.signIn(h)
		if a.principal != nil {
			a.token = h.api(a.email, a.password).token
		}
	}

	// fixture creates, in tenant, the object a path parameter names. Each
	// request gets fresh objects, so deleting one does not disturb the next.
	var lastAgent uuid.UUID // the path's :agent_id, for a :tool_id after it
	fixture := func(tenant uuid.UUID, param string) string {
		if param == ":user_ref" {
			return "U0FIXTURE" // an end user is a channel's user ID, with or without memories
		}
		if param == ":provider" { // an LLM provider the tenant has its own key for
			require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
				_, _, err := tx.PutLLMKey(ctx, store.LLMKey{Provider: "openai", Secret: []byte{1}, Last4: "abcd"})
				return err
			}))
			return "openai"
		}
		var id uuid.UUID
		require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
			agent, err := tx.CreateAgent(ctx, store.Agent{Name: "Fixture " + tenant.String()[:8]})
			if err != nil {
				return err
			}
			switch param {
			case ":agent_id":
				id, lastAgent = agent.ID, agent.ID
			case ":tool_id":
				h, err := tx.CreateHTTPTool(ctx, store.HTTPTool{ID: uuid.New(), AgentID: lastAgent, Name: "fixture",
					Description: "d", Method: "GET", URLTemplate: "https://api.example.com/x", Parameters: []byte(`{"type":"object"}`),
					Timeout: time.Second, Enabled: true})
				id = h.ID
				return err
			case ":conversation_id":
				cv, err := tx.EnsureConversation(ctx, store.Conversation{AgentID: agent.ID, Channel: store.ChannelSlack,
					ExternalKey: uuid.NewString(), WorkflowID: "wf-" + uuid.NewString(), UserRef: "U1"})
				id = cv.ID
				return err
			case ":media_id":
				cv, err := tx.EnsureConversation(ctx, store.Conversation{AgentID: agent.ID, Channel: store.ChannelWhatsApp,
					ExternalKey: uuid.NewString(), WorkflowID: "wf-" + uuid.NewString(), UserRef: "15550001"})
				if err != nil {
					return err
				}
				img := []byte("GIF89a fixture")
				sum := sha256.Sum256(img)
				m, err := tx.AddMedia(ctx, store.Media{ConversationID: cv.ID, Source: store.SourceWhatsApp, SourceID: uuid.NewString(),
					MimeType: "image/gif", SHA256: sum[:], Data: img, Turn: 1})
				id = m.ID
				return err
			case ":escalation_id":
				cv, err := tx.EnsureConversation(ctx, store.Conversation{AgentID: agent.ID, Channel: store.ChannelSlack,
					ExternalKey: uuid.NewString(), WorkflowID: "wf-" + uuid.NewString(), UserRef: "U1"})
				if err != nil {
					return err
				}
				h, err := tx.CreateHandoff(ctx, store.Handoff{ConversationID: cv.ID, AgentID: agent.ID, WorkflowID: cv.WorkflowID,
					IdempotencyKey: cv.WorkflowID + ":escalation:1", Trigger: store.TriggerKeyword, Reason: "fixture", Channel: store.ChannelSlack})
				id = h.ID
				return err
			case ":channel_id":
				// A WhatsApp number: every channel route takes one (the
				// webhook check takes nothing else).
				ch, err := tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: agent.ID, Kind: store.ChannelWhatsApp,
					ExternalID: fmt.Sprint(uuid.New().ID()), Secret: []byte{1}})
				id = ch.ID
				return err
			case ":user_id":
				u, err := tx.CreateUser(ctx, store.User{Email: uuid.NewString()[:8] + "@fixture.test", PasswordHash: "x", Role: store.RoleCustomerOperator})
				id = u.ID
				return err
			case ":invitation_id":
				inv, err := tx.CreateInvitation(ctx, store.Invitation{Email: uuid.NewString()[:8] + "@invitee.test",
					Role: store.RoleCustomerOperator, ExpiresAt: time.Now().Add(time.Hour)}, []byte(uuid.NewString()[:32]))
				id = inv.ID
				return err
			case ":document_id":
				sum := sha256.Sum256([]byte(uuid.NewString()))
				d, _, err := tx.UpsertDocument(ctx, store.Document{Title: "Fixture doc " + uuid.NewString()[:8], SourceType: "text",
					Content: []byte("fixture"), ContentHash: sum[:]})
				if err != nil {
					return err
				}
				id = d.ID
				// Ready, so a retry starts no workflow that no worker would run.
				_, err = tx.SetDocumentStatus(ctx, d.ID, d.Version, store.DocReady, "")
				return err
			default:
				t.Fatalf("route parameter %s has no fixture in this test: add one", param)
			}
			return nil
		}))
		return id.String()
	}
	freshTenant := func() uuid.UUID {
		id := uuid.New()
		require.NoError(t, h.app.Store.WithTenant(ctx, id, func(tx *store.Tx) error {
			_, err := tx.CreateTenant(ctx, id, "Scratch "+id.String()[:8])
			return err
		}))
		return id
	}

	checked := 0
	for _, route := range routes {
		method, pattern, _ := strings.Cut(route, " ")
		perm, _ := h.srv.Registry.Perm(method, pattern)
		for _, a := range actors {
			for _, dom := range []string{"own", "other"} {
				if !strings.Contains(pattern, ":tenant_id") && dom == "other" {
					continue // the route names no tenant: one check is enough
				}
				name := fmt.Sprintf("%s/%s/%s", route, a.name, dom)
				t.Run(name, func(t *testing.T) {
					var tenant uuid.UUID
					switch {
					case a.name == "platform_admin":
						tenant = freshTenant() // the platform admin may delete it
					case dom == "own":
						tenant = tenantA
					default:
						tenant = tenantB
					}
					path := paramRE.ReplaceAllStringFunc(pattern, func(p string) string {
						switch p {
						case ":tenant_id":
							return tenant.String()
						case "*filepath":
							return "/app.css"
						}
						return fixture(tenant, p)
					})
					pathTenant := ""
					if strings.Contains(pattern, ":tenant_id") {
						pathTenant = tenant.String()
					}
					want := enf.Decide(a.principal, pathTenant, perm)
					res := call(t, h, a, method, path)
					defer res.Body.Close()
					body, _ := io.ReadAll(res.Body)
					got := res.StatusCode
					api := strings.HasPrefix(pattern, "/api/")
					portal := !api && !strings.HasPrefix(pattern, "/webhooks/") && !strings.HasPrefix(pattern, "/slack/") &&
						pattern != "/healthz" && pattern != "/readyz" && pattern != "/metrics"
					switch want {
					case authz.Allow:
						if perm == authz.Public {
							// The guard lets everyone in; what the handler makes of an
							// empty request (a webhook refusing an unsigned body, say)
							// is its own business. It must not fail.
							if got != http.StatusServiceUnavailable { // "not configured here" is a fine answer
								require.Less(t, got, 500, "%s %s: %s", method, path, body)
							}
							break
						}
						require.NotContains(t, []int{401, 403, 404}, got, "%s %s as %s (%s tenant) is allowed by the policy: %s", method, path, a.name, dom, body)
						require.Less(t, got, 500, "%s %s: %s", method, path, body)
					case authz.Unauthenticated:
						if portal && method == http.MethodGet {
							require.Equal(t, http.StatusSeeOther, got)
							require.True(t, strings.HasPrefix(res.Header.Get("Location"), "/sign-in?next="), res.Header.Get("Location"))
						} else {
							require.Equal(t, http.StatusUnauthorized, got, "%s %s: %s", method, path, body)
						}
					default:
						require.Equal(t, int(want), got, "%s %s as %s (%s tenant): %s", method, path, a.name, dom, body)
					}
					if want != authz.Allow {
						if api {
							require.Contains(t, res.Header.Get("Content-Type"), "application/json")
						} else if portal && got != http.StatusSeeOther {
							require.Contains(t, res.Header.Get("Content-Type"), "text/html")
						}
						if dom == "other" && a.principal != nil {
							require.NotContains(t, string(body), tenant.String(), "a refusal reveals nothing of the other tenant")
							require.NotContains(t, string(body), "Fixture "+tenant.String()[:8])
							require.NotContains(t, string(body), "Tenant B")
						}
					}
					if pattern == "/sign-out" {
						a.signIn(h) // that request ended the session
					}
					checked++
				})
			}
		}
	}
	t.Logf("%d routes, %d requests checked against the policy", len(routes), checked)
}

// call sends one request as a: API routes with the bearer token, the rest
// with the browser's session cookie and form token.
func call(t *testing.T, h *harness, a *actor, method, path string) *http.Response {
	t.Helper()
	var body io.Reader
	contentType := ""
	api := strings.HasPrefix(path, "/api/")
	if method != http.MethodGet {
		if api {
			body, contentType = strings.NewReader(`{}`), "application/json"
		} else {
			body, contentType = strings.NewReader(url.Values{"csrf_token": {a.browser.csrf}}.Encode()), "application/x-www-form-urlencoded"
		}
	}
	req, err := http.NewRequest(method, h.URL+path, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if api && a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	res, err := a.browser.c.Do(req)
	require.NoError(t, err)
	return res
}
