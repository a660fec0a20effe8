package v1_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

// The users and invitations routes answer as api/openapi.yaml describes them
// (every answer here is checked against the spec by apitest): shapes,
// statuses and the field named by each refusal.
func TestUsersAndInvitationsMatchSpec(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Team")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	other := s.CreateTenant(t, "Elsewhere")
	users := tenantPath(ten.ID) + "/users"
	invs := tenantPath(ten.ID) + "/invitations"

	var list struct {
		Users []struct {
			ID    uuid.UUID `json:"id"`
			Email string    `json:"email"`
		}
	}
	s.Do(t, http.MethodGet, users, admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Users, 2)

	var grace struct {
		ID   uuid.UUID `json:"id"`
		Role string    `json:"role"`
	}
	s.Do(t, http.MethodPost, users, admin.Token, map[string]string{"email": "grace@example.test", "name": "Grace",
		"password": "a long passphrase of words", "role": "customer_operator"}).Expect(t, http.StatusCreated).JSON(t, &grace)
	require.Equal(t, "customer_operator", grace.Role)
	for field, body := range map[string]map[string]string{
		"email":    {"email": "grace@example.test", "password": "a long passphrase of words", "role": "customer_operator"},
		"password": {"email": "hopper@example.test", "password": "short", "role": "customer_operator"},
		"role":     {"email": "hopper@example.test", "password": "a long passphrase of words", "role": "platform_admin"},
	} {
		s.Do(t, http.MethodPost, users, admin.Token, body).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", field)
	}
	s.Do(t, http.MethodPatch, users+"/"+grace.ID.String(), admin.Token, map[string]string{"role": "customer_admin"}).Expect(t, http.StatusOK)
	s.Do(t, http.MethodPatch, users+"/"+admin.ID.String(), admin.Token, map[string]string{"role": "customer_operator"}).
		ExpectError(t, http.StatusConflict, "conflict", "")
	s.Do(t, http.MethodDelete, users+"/"+admin.ID.String(), admin.Token, nil).ExpectError(t, http.StatusConflict, "conflict", "")
	s.Do(t, http.MethodDelete, users+"/"+grace.ID.String(), admin.Token, nil).Expect(t, http.StatusNoContent)
	s.Do(t, http.MethodDelete, users+"/"+grace.ID.String(), admin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodGet, users, op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodGet, tenantPath(other.ID)+"/users", admin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")

	var inv struct {
		ID        uuid.UUID `json:"id"`
		Status    string    `json:"status"`
		EmailSent *bool     `json:"email_sent"`
	}
	s.Do(t, http.MethodPost, invs, admin.Token, map[string]string{"email": "ada@example.test", "role": "customer_admin"}).
		Expect(t, http.StatusCreated).JSON(t, &inv)
	require.Equal(t, "pending", inv.Status)
	require.NotNil(t, inv.EmailSent)
	s.Do(t, http.MethodPost, invs, admin.Token, map[string]string{"email": "ada@example.test", "role": "customer_admin"}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "email")
	s.Do(t, http.MethodPost, invs, admin.Token, map[string]string{"email": "bob@example.test", "role": "owner"}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "role")
	var invList struct{ Invitations []map[string]any }
	s.Do(t, http.MethodGet, invs, admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &invList)
	require.Len(t, invList.Invitations, 1)
	require.NotContains(t, invList.Invitations[0], "email_sent", "only creation and resend say whether the email went out")
	s.Do(t, http.MethodPost, invs+"/"+inv.ID.String()+"/resend", admin.Token, nil).Expect(t, http.StatusOK)
	s.Do(t, http.MethodDelete, invs+"/"+inv.ID.String(), admin.Token, nil).Expect(t, http.StatusNoContent)
	s.Do(t, http.MethodDelete, invs+"/"+inv.ID.String(), admin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPost, invs+"/"+inv.ID.String()+"/resend", admin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodGet, invs, op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
}
