package v1_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

type httpToolJSON struct {
	ID          uuid.UUID         `json:"id"`
	AgentID     uuid.UUID         `json:"agent_id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Method      string            `json:"method"`
	URLTemplate string            `json:"url_template"`
	Headers     map[string]string `json:"headers"`
	Parameters  json.RawMessage   `json:"parameters"`
	SideEffects bool              `json:"side_effects"`
	TimeoutMS   int64             `json:"timeout_ms"`
	Enabled     bool              `json:"enabled"`
}

func toolsPath(tenantID, agentID uuid.UUID) string { return agentPath(tenantID, agentID) + "/tools" }

func orderTool() map[string]any {
	return map[string]any{
		"name":         "get_order",
		"description":  "Looks up an order by its number.",
		"url_template": "https://api.example.com/orders/{order_id}",
		"headers":      map[string]string{"X-Api-Key": "sk_live_very_secret"},
		"parameters": map[string]any{"type": "object", "required": []string{"order_id"},
			"properties": map[string]any{"order_id": map[string]any{"type": "string"}}},
	}
}

func TestHTTPToolLifecycle(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Tools")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, u.Token, ten.ID, "Tess")

	var h httpToolJSON
	r := s.Do(t, http.MethodPost, toolsPath(ten.ID, ag.ID), u.Token, orderTool()).Expect(t, http.StatusCreated)
	require.NotContains(t, string(r.Body), "sk_live_very_secret", "a header value is never returned")
	r.JSON(t, &h)
	require.Equal(t, "get_order", h.Name)
	require.Equal(t, "GET", h.Method)
	require.Equal(t, map[string]string{"X-Api-Key": "********"}, h.Headers)
	require.EqualValues(t, 10000, h.TimeoutMS)
	require.True(t, h.Enabled)
	require.False(t, h.SideEffects)

	// Sealed at rest: the row holds ciphertext, not the key.
	require.NoError(t, s.App.Store.WithTenant(context.Background(), ten.ID, func(tx *store.Tx) error {
		row, err := tx.GetHTTPTool(context.Background(), ag.ID, h.ID)
		require.NotContains(t, string(row.Headers), "sk_live_very_secret")
		require.NotEmpty(t, row.Headers)
		return err
	}))

	// The listing shows every tool with its schema.
	var list struct {
		Tools []struct {
			Kind, Name string
			Enabled    bool
			Parameters json.RawMessage
			HTTP       *httpToolJSON
		}
	}
	r = s.Do(t, http.MethodGet, toolsPath(ten.ID, ag.ID), u.Token, nil).Expect(t, http.StatusOK)
	require.NotContains(t, string(r.Body), "sk_live_very_secret")
	r.JSON(t, &list)
	byName := map[string]int{}
	for i, tl := range list.Tools {
		byName[tl.Name] = i
	}
	ct := list.Tools[byName["current_time"]]
	require.Equal(t, "builtin", ct.Kind)
	require.False(t, ct.Enabled)
	require.Contains(t, string(ct.Parameters), "timezone")
	got := list.Tools[byName["get_order"]]
	require.Equal(t, "http", got.Kind)
	require.Equal(t, h.ID, got.HTTP.ID)
	require.JSONEq(t, `{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string"}}}`, string(got.Parameters))

	// Patch: only the fields sent; headers kept unless sent.
	var p httpToolJSON
	s.Do(t, http.MethodPatch, toolsPath(ten.ID, ag.ID)+"/"+h.ID.String(), u.Token,
		map[string]any{"enabled": false, "side_effects": true, "method": "post"}).Expect(t, http.StatusOK).JSON(t, &p)
	require.False(t, p.Enabled)
	require.True(t, p.SideEffects)
	require.Equal(t, "POST", p.Method)
	require.Equal(t, map[string]string{"X-Api-Key": "********"}, p.Headers)
	s.Do(t, http.MethodGet, toolsPath(ten.ID, ag.ID)+"/"+h.ID.String(), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &p)
	require.False(t, p.Enabled)

	// A second tool of the same name is refused, naming the field.
	s.Do(t, http.MethodPost, toolsPath(ten.ID, ag.ID), u.Token, orderTool()).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "name")

	// An operator can read but not declare.
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	s.Do(t, http.MethodGet, toolsPath(ten.ID, ag.ID), op.Token, nil).Expect(t, http.StatusOK)
	s.Do(t, http.MethodPost, toolsPath(ten.ID, ag.ID), op.Token, orderTool()).ExpectError(t, http.StatusForbidden, "forbidden", "")

	s.Do(t, http.MethodDelete, toolsPath(ten.ID, ag.ID)+"/"+h.ID.String(), u.Token, nil).Expect(t, http.StatusNoContent)
	s.Do(t, http.MethodGet, toolsPath(ten.ID, ag.ID)+"/"+h.ID.String(), u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
}

func TestHTTPToolBadDeclarations(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Bad")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, u.Token, ten.ID, "Bo")
	for field, change := range map[string]func(m map[string]any){
		"parameters":   func(m map[string]any) { m["parameters"] = map[string]any{"type": 12} },
		"name":         func(m map[string]any) { m["name"] = "current_time" },
		"url_template": func(m map[string]any) { m["url_template"] = "https://{host}/x" },
		"headers":      func(m map[string]any) { m["headers"] = map[string]string{"Content-Length": "1"} },
		"method":       func(m map[string]any) { m["method"] = "CONNECT" },
		"timeout_ms":   func(m map[string]any) { m["timeout_ms"] = 0 },
		"description":  func(m map[string]any) { m["description"] = " " },
	} {
		body := orderTool()
		change(body)
		msg := s.Do(t, http.MethodPost, toolsPath(ten.ID, ag.ID), u.Token, body).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", field)
		require.NotEmpty(t, msg, field)
	}
	body := orderTool()
	body["parameters"] = "not an object"
	s.Do(t, http.MethodPost, toolsPath(ten.ID, ag.ID), u.Token, body).Expect(t, http.StatusUnprocessableEntity)
	s.Do(t, http.MethodPost, toolsPath(ten.ID, ag.ID), u.Token, map[string]any{"name": "x", "bogus": 1}).
		ExpectError(t, http.StatusBadRequest, "unknown_field", "bogus")
	var list struct{ Tools []struct{ Kind string } }
	s.Do(t, http.MethodGet, toolsPath(ten.ID, ag.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	for _, tl := range list.Tools {
		require.Equal(t, "builtin", tl.Kind, "nothing was declared")
	}
}

// Another tenant's agent and tools are not found, under either tenant's path.
func TestHTTPToolsOfAnotherTenant(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := s.CreateTenant(t, "A")
	b := s.CreateTenant(t, "B")
	ua := s.NewUser(t, a.ID, store.RoleCustomerAdmin)
	ub := s.NewUser(t, b.ID, store.RoleCustomerAdmin)
	agentA := s.CreateAgent(t, ua.Token, a.ID, "Ann")
	agentB := s.CreateAgent(t, ub.Token, b.ID, "Bea")
	var hb httpToolJSON
	s.Do(t, http.MethodPost, toolsPath(b.ID, agentB.ID), ub.Token, orderTool()).Expect(t, http.StatusCreated).JSON(t, &hb)

	for _, path := range []string{toolsPath(a.ID, agentB.ID), toolsPath(b.ID, agentB.ID)} {
		s.Do(t, http.MethodGet, path, ua.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodPost, path, ua.Token, orderTool()).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodGet, path+"/"+hb.ID.String(), ua.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodPatch, path+"/"+hb.ID.String(), ua.Token, map[string]any{"enabled": false}).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodDelete, path+"/"+hb.ID.String(), ua.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	}
	// B's tool under A's own agent: not found either.
	s.Do(t, http.MethodGet, toolsPath(a.ID, agentA.ID)+"/"+hb.ID.String(), ua.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	var got httpToolJSON
	s.Do(t, http.MethodGet, toolsPath(b.ID, agentB.ID)+"/"+hb.ID.String(), ub.Token, nil).Expect(t, http.StatusOK).JSON(t, &got)
	require.True(t, got.Enabled, "unchanged")
	require.True(t, strings.HasPrefix(got.URLTemplate, "https://"))
}
