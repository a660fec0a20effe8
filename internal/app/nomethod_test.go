package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A known address asked with a method it does not serve answers 405: the
// portal's page (in the viewer's shell) for portal addresses, the JSON error
// envelope for the API, the webhooks, health and metrics.
func TestMethodNotAllowed(t *testing.T) {
	h := newHarness(t, nil)
	send := func(b *browser, method, path string) page {
		t.Helper()
		req, err := http.NewRequest(method, h.URL+path, strings.NewReader("csrf_token="+b.csrf))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return b.do(req)
	}

	anon := h.browser()
	p := send(anon, http.MethodPut, "/sign-in")
	require.Equal(t, http.StatusMethodNotAllowed, p.Status)
	require.Contains(t, p.Header.Get("Content-Type"), "text/html")
	require.Contains(t, p.Body, "This page can&#39;t do that")
	require.NotEmpty(t, p.Header.Get("Content-Security-Policy"), "the portal's security headers")

	admin := h.browser()
	home := admin.signUp("ada@acme.test", "Ada Lovelace", "Acme Robotics")
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, home + "/usage"},
		{http.MethodDelete, home + "/channels"},
		{http.MethodPut, home + "/agents/new"},
	} {
		p := send(admin, c.method, c.path)
		require.Equal(t, http.StatusMethodNotAllowed, p.Status, "%s %s", c.method, c.path)
		require.Contains(t, p.Header.Get("Content-Type"), "text/html")
		require.Contains(t, p.Body, "does not accept a "+c.method+" request")
		require.Contains(t, p.Body, "Ada Lovelace", "shown in the viewer's shell")
	}

	for _, c := range []struct{ method, path string }{
		{http.MethodPut, "/api/v1/tenants"},
		{http.MethodGet, "/webhooks/slack/events"},
		{http.MethodPost, "/healthz"},
		{http.MethodPost, "/metrics"},
	} {
		p := send(admin, c.method, c.path)
		require.Equal(t, http.StatusMethodNotAllowed, p.Status, "%s %s", c.method, c.path)
		require.Contains(t, p.Header.Get("Content-Type"), "application/json")
		var e struct{ Error struct{ Code string } }
		require.NoError(t, json.Unmarshal([]byte(p.Body), &e), p.Body)
		require.Equal(t, "method_not_allowed", e.Error.Code)
	}
}
