package v1_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

type tenantJSON struct {
	ID                   uuid.UUID `json:"id"`
	Name                 string    `json:"name"`
	Status               string    `json:"status"`
	RateLimitPerMinute   *int      `json:"rate_limit_per_minute"`
	ChannelRatePerMinute *int      `json:"channel_rate_per_minute"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
}

func tenantPath(id uuid.UUID) string { return "/api/v1/tenants/" + id.String() }

func TestTenantsLifecycle(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	admin := s.AdminToken

	var created tenantJSON
	s.Do(t, http.MethodPost, "/api/v1/tenants", admin, map[string]string{"name": "  Acme Support  "}).
		Expect(t, http.StatusCreated).JSON(t, &created)
	require.NotEqual(t, uuid.Nil, created.ID)
	require.Equal(t, "Acme Support", created.Name, "the name is trimmed")
	require.Equal(t, "active", created.Status)
	require.Nil(t, created.RateLimitPerMinute)
	require.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)

	var got tenantJSON
	s.Do(t, http.MethodGet, tenantPath(created.ID), admin, nil).Expect(t, http.StatusOK).JSON(t, &got)
	require.Equal(t, created, got)

	other := s.CreateTenant(t, "Beta")
	var list struct{ Tenants []tenantJSON }
	s.Do(t, http.MethodGet, "/api/v1/tenants", admin, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Tenants, 2)
	require.Equal(t, other.ID, list.Tenants[0].ID, "newest first")

	// PATCH changes only what is sent.
	var renamed tenantJSON
	s.Do(t, http.MethodPatch, tenantPath(created.ID), admin, map[string]any{"name": "Acme Care", "status": nil}).
		Expect(t, http.StatusOK).JSON(t, &renamed)
	require.Equal(t, "Acme Care", renamed.Name)
	require.Equal(t, "active", renamed.Status)
	require.False(t, renamed.UpdatedAt.Before(created.UpdatedAt))
	var limited tenantJSON
	s.Do(t, http.MethodPatch, tenantPath(created.ID), admin, map[string]any{"rate_limit_per_minute": 1200, "channel_rate_per_minute": 30}).
		Expect(t, http.StatusOK).JSON(t, &limited)
	require.Equal(t, "Acme Care", limited.Name)
	require.Equal(t, 1200, *limited.RateLimitPerMinute)
	require.Equal(t, 30, *limited.ChannelRatePerMinute)

	// Delete: 204, then the tenant is gone, with its users' tokens.
	u := s.NewUser(t, created.ID, store.RoleCustomerAdmin)
	agent := s.CreateAgent(t, u.Token, created.ID, "Ada")
	s.ConnectSlack(t, u.Token, created.ID, agent.ID)
	s.SeedConversation(t, created.ID, agent.ID, 2)
	r := s.Do(t, http.MethodDelete, tenantPath(created.ID), admin, nil).Expect(t, http.StatusNoContent)
	require.Empty(t, r.Body)
	s.Do(t, http.MethodGet, tenantPath(created.ID), admin, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodDelete, tenantPath(created.ID), admin, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPatch, tenantPath(created.ID), admin, map[string]string{"name": "x"}).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodGet, "/api/v1/me", u.Token, nil).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	s.Do(t, http.MethodGet, tenantPath(uuid.New()), admin, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodGet, "/api/v1/tenants/not-a-uuid", admin, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	// Listing under a tenant that does not exist is a 404 too, not an empty list.
	for _, sub := range []string{"/agents", "/channels", "/conversations"} {
		s.Do(t, http.MethodGet, tenantPath(created.ID)+sub, admin, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	}
}

func TestTenantValidation(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Valid")
	for _, c := range []struct {
		name   string
		method string
		body   any
		field  string
	}{
		{"missing name", http.MethodPost, map[string]any{}, "name"},
		{"empty name", http.MethodPost, map[string]any{"name": ""}, "name"},
		{"blank name", http.MethodPost, map[string]any{"name": " \t\n "}, "name"},
		{"long name", http.MethodPost, map[string]any{"name": strings.Repeat("é", 201)}, "name"},
		{"NUL in name", http.MethodPost, map[string]any{"name": "Acme\x00"}, "name"},
		{"line break in name", http.MethodPost, map[string]any{"name": "Acme\nCorp"}, "name"},
		{"patch empty name", http.MethodPatch, map[string]any{"name": ""}, "name"},
		{"patch long name", http.MethodPatch, map[string]any{"name": strings.Repeat("n", 201)}, "name"},
		{"patch NUL in name", http.MethodPatch, map[string]any{"name": "\x00"}, "name"},
		{"patch status", http.MethodPatch, map[string]any{"status": "paused"}, "status"},
		{"patch zero limit", http.MethodPatch, map[string]any{"rate_limit_per_minute": 0}, "rate_limit_per_minute"},
		{"patch huge limit", http.MethodPatch, map[string]any{"channel_rate_per_minute": 1_000_001}, "channel_rate_per_minute"},
		{"patch both limits bad", http.MethodPatch, map[string]any{"rate_limit_per_minute": -1, "channel_rate_per_minute": -1}, "rate_limit_per_minute"},
	} {
		path := "/api/v1/tenants"
		if c.method == http.MethodPatch {
			path = tenantPath(ten.ID)
		}
		msg := s.Do(t, c.method, path, s.AdminToken, c.body).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", c.field)
		require.NotEmpty(t, msg, c.name)
	}
	// 200 characters (not bytes) is fine.
	s.Do(t, http.MethodPost, "/api/v1/tenants", s.AdminToken, map[string]any{"name": strings.Repeat("é", 200)}).Expect(t, http.StatusCreated)
	// JSON types are checked before values.
	s.Do(t, http.MethodPatch, tenantPath(ten.ID), s.AdminToken, `{"rate_limit_per_minute":"fast"}`).
		ExpectError(t, http.StatusBadRequest, "wrong_type", "rate_limit_per_minute")
	s.Do(t, http.MethodPatch, tenantPath(ten.ID), s.AdminToken, `{"rate_limit_per_minute":1.5}`).
		ExpectError(t, http.StatusBadRequest, "wrong_type", "rate_limit_per_minute")
}

// What a customer admin and a customer operator may do with tenants.
func TestTenantPermissions(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	own := s.CreateTenant(t, "Own")
	other := s.CreateTenant(t, "Other")
	admin := s.NewUser(t, own.ID, store.RoleCustomerAdmin)
	operator := s.NewUser(t, own.ID, store.RoleCustomerOperator)

	for _, u := range []apitest.User{admin, operator} {
		s.Do(t, http.MethodPost, "/api/v1/tenants", u.Token, map[string]string{"name": "Mine"}).ExpectError(t, http.StatusForbidden, "forbidden", "")
		s.Do(t, http.MethodGet, "/api/v1/tenants", u.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
		s.Do(t, http.MethodGet, tenantPath(own.ID), u.Token, nil).Expect(t, http.StatusOK)
		s.Do(t, http.MethodDelete, tenantPath(own.ID), u.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
		// Another tenant does not exist for them: 404, never 403.
		s.Do(t, http.MethodGet, tenantPath(other.ID), u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodPatch, tenantPath(other.ID), u.Token, map[string]string{"name": "Pwned"}).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodDelete, tenantPath(other.ID), u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	}
	// The customer admin renames its own tenant, but cannot suspend it or change its limits.
	r := s.Do(t, http.MethodPatch, tenantPath(own.ID), admin.Token, map[string]string{"name": "Own Co"}).Expect(t, http.StatusOK)
	require.Equal(t, "Own Co", r.Object(t)["name"])
	s.Do(t, http.MethodPatch, tenantPath(own.ID), admin.Token, map[string]string{"status": "suspended"}).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodPatch, tenantPath(own.ID), admin.Token, map[string]int{"rate_limit_per_minute": 5}).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodPatch, tenantPath(own.ID), operator.Token, map[string]string{"name": "Op Co"}).ExpectError(t, http.StatusForbidden, "forbidden", "")
	var got tenantJSON
	s.Do(t, http.MethodGet, tenantPath(other.ID), s.AdminToken, nil).Expect(t, http.StatusOK).JSON(t, &got)
	require.Equal(t, "Other", got.Name, "the other tenant is untouched")
}

// Suspending a tenant locks its users out (403) until it is reactivated.
func TestTenantSuspension(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Suspend Me")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	bystander := s.CreateTenant(t, "Bystander")
	b := s.NewUser(t, bystander.ID, store.RoleCustomerAdmin)

	r := s.Do(t, http.MethodPatch, tenantPath(ten.ID), s.AdminToken, map[string]string{"status": "suspended"}).Expect(t, http.StatusOK)
	require.Equal(t, "suspended", r.Object(t)["status"])
	for _, path := range []string{"/api/v1/me", tenantPath(ten.ID), tenantPath(ten.ID) + "/agents"} {
		msg := s.Do(t, http.MethodGet, path, u.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
		require.Contains(t, msg, "suspended")
	}
	s.Do(t, http.MethodPost, tenantPath(ten.ID)+"/agents", u.Token, map[string]string{"name": "x"}).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodPost, tokenPath, "", map[string]string{"email": u.Email, "password": u.Password}).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodGet, "/api/v1/me", b.Token, nil).Expect(t, http.StatusOK)
	// The platform admin still sees and manages it.
	s.Do(t, http.MethodGet, tenantPath(ten.ID)+"/agents", s.AdminToken, nil).Expect(t, http.StatusOK)

	s.Do(t, http.MethodPatch, tenantPath(ten.ID), s.AdminToken, map[string]string{"status": "active"}).Expect(t, http.StatusOK)
	s.Do(t, http.MethodGet, "/api/v1/me", u.Token, nil).Expect(t, http.StatusOK)
}
