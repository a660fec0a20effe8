package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
)

// Two tenants: nothing of tenant A (agents, users, conversations, channels,
// invitations) is reachable by tenant B's admin, through the portal or the
// API, even with A's IDs in hand. Each attempt is a 404 that names nothing,
// and A's data is unchanged afterwards.
func TestTenantBCannotReachTenantA(t *testing.T) {
	h := newHarness(t, nil)
	a := h.browser()
	homeA := a.signUp("ada@a.test", "Ada", "Alpha Ltd")
	tenantA := uuid.MustParse(strings.TrimPrefix(homeA, "/t/"))
	sa := seedShowcase(t, h, tenantA, "alpha")
	b := h.browser()
	homeB := b.signUp("bob@b.test", "Bob", "Beta Ltd")
	tenantB := uuid.MustParse(strings.TrimPrefix(homeB, "/t/"))
	apiB := h.api("bob@b.test", "Str0ng-Passphrase!")

	agentA, convA, chanA, userA, invA := sa.Agents[0].ID, sa.Conversations[0].ID, sa.Channel.ID, sa.Operator.ID, sa.Invitation.ID
	escA := sa.Escalation.ID.String()
	secrets := []string{tenantA.String(), agentA.String(), "Alpha Ltd", "Sam", "Grace Hopper", "grace@alpha.test", "linus@alpha.test", "Katherine Johnson"}
	noLeak := func(t *testing.T, body string) {
		t.Helper()
		for _, s := range secrets {
			require.NotContains(t, body, s)
		}
	}

	// Portal, as B's admin: A's pages under A's tenant ID are 404s.
	for _, path := range []string{
		homeA, homeA + "/agents", homeA + "/agents/" + agentA.String(), homeA + "/agents/" + agentA.String() + "/edit",
		homeA + "/conversations", homeA + "/conversations/" + convA.String(), homeA + "/channels", homeA + "/users",
		homeA + "/usage", homeA + "/settings", homeA + "/activity", homeA + "/activity?format=csv",
		homeA + "/escalations", homeA + "/escalations/" + escA, homeA + "/escalations/" + escA + "/live",
		homeB + "/escalations/" + escA, homeB + "/escalations/" + escA + "/live",
		// A's IDs under B's own tenant: not found either (RLS hides them).
		homeB + "/agents/" + agentA.String(), homeB + "/agents/" + agentA.String() + "/edit",
		homeB + "/conversations/" + convA.String(),
		// Platform pages.
		"/admin", "/admin/tenants", "/admin/agents", "/admin/users", "/admin/tenants/" + tenantA.String(),
	} {
		p := b.get(path)
		require.Contains(t, []int{http.StatusNotFound, http.StatusForbidden}, p.Status, path)
		noLeak(t, p.Body)
	}
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{homeA + "/agents", url.Values{"name": {"Injected"}}},
		{homeA + "/agents/" + agentA.String(), url.Values{"name": {"Hijacked"}}},
		{homeA + "/agents/" + agentA.String() + "/status", url.Values{"status": {"inactive"}}},
		{homeA + "/agents/" + agentA.String() + "/delete", nil},
		{homeA + "/channels/" + chanA.String() + "/delete", nil},
		{homeA + "/users/" + userA.String() + "/role", url.Values{"role": {"customer_admin"}}},
		{homeA + "/users/" + userA.String() + "/delete", nil},
		{homeA + "/invitations", url.Values{"email": {"mole@b.test"}, "role": {"customer_admin"}}},
		{homeA + "/invitations/" + invA.String() + "/resend", nil},
		{homeA + "/invitations/" + invA.String() + "/revoke", nil},
		{homeA + "/settings", url.Values{"name": {"Owned"}}},
		{homeA + "/settings/support", url.Values{"slack_channel_id": {"C0MOLE"}, "first_response_minutes": {"1"}, "hand_back_minutes": {"2"}}},
		{homeA + "/escalations/" + escA + "/messages", url.Values{"text": {"from B"}}},
		{homeA + "/escalations/" + escA + "/resolve", nil},
		{homeB + "/escalations/" + escA + "/messages", url.Values{"text": {"from B"}}},
		{homeB + "/escalations/" + escA + "/resolve", nil},
		{homeB + "/agents/" + agentA.String(), url.Values{"name": {"Hijacked"}}},
		{homeB + "/agents/" + agentA.String() + "/delete", nil},
		{homeB + "/channels/" + chanA.String() + "/delete", nil},
		{homeB + "/users/" + userA.String() + "/role", url.Values{"role": {"customer_admin"}}},
		{homeB + "/users/" + userA.String() + "/delete", nil},
		{homeB + "/invitations/" + invA.String() + "/resend", nil},
		{homeB + "/invitations/" + invA.String() + "/revoke", nil},
		{"/admin/tenants/" + tenantA.String() + "/delete", url.Values{"confirm": {"Alpha Ltd"}}},
		{"/admin/tenants/" + tenantA.String() + "/status", url.Values{"status": {"suspended"}}},
	} {
		p := b.post(post.path, post.form)
		require.Contains(t, []int{http.StatusNotFound, http.StatusForbidden}, p.Status, "%s: %s", post.path, p.Body)
		noLeak(t, p.Body)
	}

	// API, as B's admin.
	var body string
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/tenants/" + tenantA.String()},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/agents"},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/agents/" + agentA.String()},
		{"PATCH", "/api/v1/tenants/" + tenantA.String() + "/agents/" + agentA.String()},
		{"DELETE", "/api/v1/tenants/" + tenantA.String() + "/agents/" + agentA.String()},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/users"},
		{"PATCH", "/api/v1/tenants/" + tenantA.String() + "/users/" + userA.String()},
		{"DELETE", "/api/v1/tenants/" + tenantA.String() + "/users/" + userA.String()},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/invitations"},
		{"POST", "/api/v1/tenants/" + tenantA.String() + "/invitations"},
		{"POST", "/api/v1/tenants/" + tenantA.String() + "/invitations/" + invA.String() + "/resend"},
		{"DELETE", "/api/v1/tenants/" + tenantA.String() + "/invitations/" + invA.String()},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/conversations"},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/conversations/" + convA.String() + "/messages"},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/audit"},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/audit?format=csv"},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/escalations"},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/escalations/" + escA},
		{"POST", "/api/v1/tenants/" + tenantA.String() + "/escalations/" + escA + "/messages"},
		{"POST", "/api/v1/tenants/" + tenantA.String() + "/escalations/" + escA + "/resolve"},
		{"GET", "/api/v1/tenants/" + tenantA.String() + "/support-settings"},
		{"GET", "/api/v1/tenants/" + tenantB.String() + "/escalations/" + escA},
		{"POST", "/api/v1/tenants/" + tenantB.String() + "/escalations/" + escA + "/messages"},
		{"POST", "/api/v1/tenants/" + tenantB.String() + "/escalations/" + escA + "/resolve"},
		// A's IDs in B's tenant.
		{"GET", "/api/v1/tenants/" + tenantB.String() + "/agents/" + agentA.String()},
		{"DELETE", "/api/v1/tenants/" + tenantB.String() + "/agents/" + agentA.String()},
		{"PATCH", "/api/v1/tenants/" + tenantB.String() + "/users/" + userA.String()},
		{"DELETE", "/api/v1/tenants/" + tenantB.String() + "/users/" + userA.String()},
		{"POST", "/api/v1/tenants/" + tenantB.String() + "/invitations/" + invA.String() + "/resend"},
		{"DELETE", "/api/v1/tenants/" + tenantB.String() + "/invitations/" + invA.String()},
		{"GET", "/api/v1/tenants/" + tenantB.String() + "/conversations/" + convA.String() + "/messages"},
	} {
		var payload any
		if c.method == "PATCH" {
			payload = map[string]any{"name": "Hijacked", "role": "customer_admin"}
		}
		if c.method == "POST" {
			payload = map[string]any{"email": "mole@b.test", "role": "customer_admin"}
			if strings.Contains(c.path, "/escalations/") {
				payload = map[string]any{"text": "from B"}
			}
		}
		status := apiB.call(c.method, c.path, payload, &body)
		require.Equal(t, http.StatusNotFound, status, "%s %s: %s", c.method, c.path, body)
		noLeak(t, body)
	}
	// B's own lists hold none of A's things.
	for _, path := range []string{"/users", "/invitations", "/agents", "/conversations", "/channels", "/escalations"} {
		var raw map[string]any
		require.Equal(t, http.StatusOK, apiB.call("GET", "/api/v1/tenants/"+tenantB.String()+path, nil, &raw), path)
		s := strings.ToLower(strings.Join(flatten(raw), " "))
		for _, secret := range secrets {
			require.NotContains(t, s, strings.ToLower(secret), path)
		}
	}
	for _, path := range []string{homeB + "/agents", homeB + "/conversations", homeB + "/users", homeB + "/channels", homeB + "/activity", homeB,
		homeB + "/escalations", homeB + "/escalations?state=all", homeB + "/settings",
		homeB + "/activity?format=csv", homeB + "/activity?conversation_id=" + convA.String()} {
		p := b.get(path)
		require.Equal(t, http.StatusOK, p.Status, path)
		noLeak(t, p.Body)
	}

	// A is untouched: nothing was recorded for A's escalation.
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantA, func(tx *store.Tx) error {
		n, err := tx.QueryInt(context.Background(), `SELECT count(*) FROM inbox WHERE source = 'escalation'`)
		require.Zero(t, n, "B's attempts recorded no staff action for A")
		return err
	}))
	p := a.get(homeA + "/agents/" + agentA.String())
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, "Sam")
	require.NotContains(t, p.Body, "Hijacked")
	p = a.get(homeA + "/users")
	require.Contains(t, p.Body, "grace@alpha.test")
	require.Contains(t, p.Body, "linus@alpha.test")
	require.Contains(t, p.Body, "Operator")
	require.NotContains(t, p.Body, "mole@b.test")
	p = a.get(homeA + "/channels")
	require.Contains(t, p.Body, "alpha Slack")
	p = a.get(homeA + "/settings")
	require.Contains(t, p.Body, `value="Alpha Ltd"`)
	// A's own transcript links to its workflow in the Temporal Web UI.
	p = a.get(homeA + "/conversations/" + convA.String())
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, `href="http://temporal-ui.test:8233/namespaces/default/workflows/`+sa.Conversations[0].WorkflowID+`"`)
	require.Contains(t, p.Body, "Where is my order #4521?")
	require.Empty(t, h.smtp.Messages(), "no invitation went out")
}

func flatten(v any) []string {
	switch x := v.(type) {
	case map[string]any:
		var out []string
		for k, e := range x {
			out = append(out, k)
			out = append(out, flatten(e)...)
		}
		return out
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, flatten(e)...)
		}
		return out
	case string:
		return []string{x}
	}
	return nil
}
