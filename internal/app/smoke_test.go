package app_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPortalSmoke(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser()
	p := b.get("/")
	require.Equal(t, http.StatusSeeOther, p.Status)
	p = b.get("/sign-in")
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	home := b.signUp("ada@acme.test", "Ada Lovelace", "Acme")
	for _, path := range []string{home, home + "/agents", home + "/agents/new", home + "/conversations", home + "/channels", home + "/users", home + "/usage", home + "/settings", home + "/activity", "/account", "/nope"} {
		p := b.get(path)
		t.Logf("%s → %d", path, p.Status)
		if p.Status >= 500 {
			t.Fatalf("%s: %s", path, p.Body)
		}
	}
	p = b.post(home+"/agents", url.Values{"name": {"Ada bot"}, "models": {"openai/gpt-4o-mini", ""}, "tools": {"current_time"}})
	t.Logf("create agent → %d %s", p.Status, p.Location)
	p = b.follow(p.Location)
	require.Equal(t, http.StatusOK, p.Status)
	r := h.browser()
	r.signIn(rootEmail, rootPassword)
	for _, path := range []string{"/admin", "/admin/tenants", "/admin/agents", "/admin/users", home} {
		p := r.get(path)
		t.Logf("%s → %d", path, p.Status)
		require.Less(t, p.Status, 500, p.Body)
	}
}
