package app_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
)

// The agent's Tools page lists each tool with its JSON schema; an HTTP tool
// declared with a broken schema is refused with the field marked and the
// header value not echoed; a good one is listed with its schema, its header
// name and never its value.
func TestPortalDeclaresHTTPTool(t *testing.T) {
	h := newHarness(t, nil)
	b := h.browser()
	home := b.signUp("tina@tools.test", "Tina", "Tools Inc")
	tenant := uuid.MustParse(home[len("/t/"):])
	ag := seedAgents(t, h, tenant, "Tess")[0]
	path := home + "/agents/" + ag.ID.String() + "/tools"

	show := b.get(home + "/agents/" + ag.ID.String())
	require.Contains(t, show.Body, `href="`+path+`"`, "the agent page links to its tools")
	p := b.get(path)
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Contains(t, p.Body, `data-testid="schema-current_time"`)
	require.Contains(t, html.UnescapeString(p.Body), `"timezone": {`, "the schema is pretty-printed")
	require.Contains(t, p.Body, "<details>")

	form := url.Values{"name": {"get_order"}, "description": {"Looks up an order."}, "method": {"GET"},
		"url_template": {"https://api.example.com/orders/{order_id}"}, "headers": {"X-Api-Key: sk_live_portal_secret"},
		"parameters": {`{"type": 12}`}}
	p = b.post(path, form)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "not a valid JSON Schema (2020-12)")
	require.NotContains(t, p.Body, "sk_live_portal_secret", "a secret is not echoed back")
	require.Contains(t, p.Body, `value="get_order"`, "typed values stay")

	form.Set("parameters", `{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string"}}}`)
	p = b.post(path, form)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = b.get(p.Location)
	require.Contains(t, p.Body, "Declared get_order")
	require.Contains(t, p.Body, `data-testid="schema-get_order"`)
	require.Contains(t, p.Body, "<code>X-Api-Key</code>")
	require.NotContains(t, p.Body, "sk_live_portal_secret")

	ctx := context.Background()
	var tools []store.HTTPTool
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		var err error
		tools, err = tx.ListHTTPTools(ctx, ag.ID)
		return err
	}))
	require.Len(t, tools, 1)
	require.NotContains(t, string(tools[0].Headers), "sk_live_portal_secret", "sealed at rest")

	// Switched off and on again from the page.
	p = b.post(path+"/"+tools[0].ID.String()+"/enabled", nil)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = b.get(p.Location)
	require.Contains(t, p.Body, "get_order is off")
	require.Contains(t, p.Body, `data-testid="enable-get_order"`)
	p = b.post(path+"/"+tools[0].ID.String()+"/enabled", url.Values{"enabled": {"on"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Contains(t, b.get(p.Location).Body, `data-testid="disable-get_order"`)

	p = b.post(path+"/"+tools[0].ID.String()+"/delete", nil)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.NotContains(t, b.get(path).Body, `data-testid="schema-get_order"`)
}
