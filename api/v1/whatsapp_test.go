package v1_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

type whatsAppChannelJSON struct {
	channelJSON
	WABAID           string  `json:"waba_id"`
	TemplateName     *string `json:"template_name"`
	TemplateLanguage *string `json:"template_language"`
	TokenError       string  `json:"token_error"`
}

func whatsAppPath(tenantID uuid.UUID) string { return channelsPath(tenantID) + "/whatsapp" }

// Connecting a WhatsApp number: the agent must declare its business function
// (Meta's policy), the token is checked with the Graph API before anything
// is stored and stored sealed, a number another tenant has is a conflict,
// and the template is set on the connection.
func TestConnectWhatsApp(t *testing.T) {
	t.Parallel()
	graph := fakewhatsapp.New(t)
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"WHATSAPP_API_URL": graph.URL(), "WHATSAPP_API_VERSION": "v25.0"}})
	const number, token = "106540352242922", "EAAGm0PX4ZCpsBA-right-token"
	graph.AddNumber(number, token, "+1 555-078-3881", "Acme Support")
	ten := s.CreateTenant(t, "WhatsApp")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, u.Token, ten.ID, "Ada")
	body := func(over map[string]string) map[string]string {
		b := map[string]string{"phone_number_id": number, "waba_id": "102290129340398", "access_token": token, "agent_id": ag.ID.String()}
		for k, v := range over {
			b[k] = v
		}
		return b
	}

	// No business function: refused before Meta is asked.
	msg := s.Do(t, http.MethodPost, whatsAppPath(ten.ID), u.Token, body(nil)).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "business_function")
	require.Contains(t, msg, "business function")
	require.Empty(t, graph.Requests(), "nothing asked of Meta for an agent that cannot be connected")
	s.Do(t, http.MethodPatch, agentPath(ten.ID, ag.ID), u.Token, map[string]string{"business_function": "Order tracking and returns for Acme's shop"}).
		Expect(t, http.StatusOK)

	for field, over := range map[string]map[string]string{
		"phone_number_id": {"phone_number_id": "+1 555 078 3881"},
		"waba_id":         {"waba_id": ""},
		"access_token":    {"access_token": "two words"},
		"agent_id":        {"agent_id": "nope"},
		"template_name":   {"template_name": "We Have A Reply", "template_language": "en_US"},
	} {
		s.Do(t, http.MethodPost, whatsAppPath(ten.ID), u.Token, body(over)).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", field)
	}
	s.Do(t, http.MethodPost, whatsAppPath(ten.ID), u.Token, body(map[string]string{"agent_id": uuid.NewString()})).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "agent_id")

	// Meta refuses a wrong token, and knows no such number for the right one.
	msg = s.Do(t, http.MethodPost, whatsAppPath(ten.ID), u.Token, body(map[string]string{"access_token": "EAAG-wrong"})).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "access_token")
	require.Contains(t, msg, "Meta refused this access token")
	s.Do(t, http.MethodPost, whatsAppPath(ten.ID), u.Token, body(map[string]string{"phone_number_id": "999999"})).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "phone_number_id")
	graph.Fail(fakewhatsapp.OpPhoneNumber, fakewhatsapp.Failure{Code: 2, Status: http.StatusServiceUnavailable})
	s.Do(t, http.MethodPost, whatsAppPath(ten.ID), u.Token, body(nil)).ExpectError(t, http.StatusServiceUnavailable, "unavailable", "")
	var list struct {
		Channels []whatsAppChannelJSON `json:"channels"`
	}
	s.Do(t, http.MethodGet, channelsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Empty(t, list.Channels, "nothing stored on a refusal")

	r := s.Do(t, http.MethodPost, whatsAppPath(ten.ID), u.Token,
		body(map[string]string{"template_name": "we_have_a_reply", "template_language": "en_US"})).Expect(t, http.StatusCreated)
	require.NotContains(t, string(r.Body), token, "the token never leaves the server")
	var ch whatsAppChannelJSON
	r.JSON(t, &ch)
	require.Equal(t, "whatsapp", ch.Kind)
	require.Equal(t, number, ch.ExternalID)
	require.Equal(t, "Acme Support (+1 555-078-3881)", ch.DisplayName)
	require.Equal(t, "102290129340398", ch.WABAID)
	require.Equal(t, "we_have_a_reply", *ch.TemplateName)
	require.Equal(t, "en_US", *ch.TemplateLanguage)
	check := graph.Requests()[len(graph.Requests())-1]
	require.Equal(t, "/v25.0/"+number, check.Path)
	require.Equal(t, "Bearer "+token, check.Authorization, "the token was checked with the Graph API")
	secret := storedSecret(t, s, ch.ID)
	require.NotEmpty(t, secret)
	require.False(t, bytes.Contains(secret, []byte(token)), "stored sealed")

	// Another tenant cannot take the number.
	other := s.CreateTenant(t, "Other")
	ou := s.NewUser(t, other.ID, store.RoleCustomerAdmin)
	oag := s.CreateAgent(t, ou.Token, other.ID, "Sam")
	s.Do(t, http.MethodPatch, agentPath(other.ID, oag.ID), ou.Token, map[string]string{"business_function": "Sales"}).Expect(t, http.StatusOK)
	s.Do(t, http.MethodPost, whatsAppPath(other.ID), ou.Token, body(map[string]string{"agent_id": oag.ID.String()})).
		ExpectError(t, http.StatusConflict, "conflict", "")

	// The business function cannot be cleared while the agent answers on WhatsApp.
	s.Do(t, http.MethodPatch, agentPath(ten.ID, ag.ID), u.Token, map[string]string{"business_function": " "}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "business_function")

	// The template is set on the connection; only for WhatsApp.
	chPath := channelsPath(ten.ID) + "/" + ch.ID.String()
	s.Do(t, http.MethodPatch, chPath, u.Token, map[string]string{"template_name": "reopen_chat", "template_language": "de"}).
		Expect(t, http.StatusOK).JSON(t, &ch)
	require.Equal(t, "reopen_chat", *ch.TemplateName)
	require.Equal(t, "de", *ch.TemplateLanguage)
	s.Do(t, http.MethodPatch, chPath, u.Token, map[string]string{"template_name": "reopen_chat"}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "template_name")
	s.Do(t, http.MethodPatch, chPath, u.Token, map[string]string{"template_name": "reopen_chat", "template_language": "German"}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "template_language")
	slack := s.ConnectSlack(t, u.Token, ten.ID, ag.ID)
	s.Do(t, http.MethodPatch, channelsPath(ten.ID)+"/"+slack.ID.String(), u.Token, map[string]string{"template_name": "x", "template_language": "en"}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "template_name")
	s.Do(t, http.MethodPatch, channelsPath(other.ID)+"/"+ch.ID.String(), ou.Token, map[string]string{"template_name": "x", "template_language": "en"}).
		Expect(t, http.StatusNotFound)

	// Connecting again (a new token) keeps the template when none is sent.
	graph.AddNumber(number, token+"-2", "+1 555-078-3881", "Acme Support")
	s.Do(t, http.MethodPost, whatsAppPath(ten.ID), u.Token, body(map[string]string{"access_token": token + "-2"})).
		Expect(t, http.StatusCreated).JSON(t, &ch)
	require.Equal(t, "reopen_chat", *ch.TemplateName)

	// An operator reads but does not connect.
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	s.Do(t, http.MethodPost, whatsAppPath(ten.ID), op.Token, body(nil)).Expect(t, http.StatusForbidden)
	require.True(t, strings.HasPrefix(ch.DisplayName, "Acme"))
}
