package v1_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/llmkeys"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

type llmKeyJSON struct {
	Provider   string `json:"provider"`
	Masked     string `json:"masked_key"`
	BaseURL    string `json:"base_url"`
	Version    int    `json:"version"`
	ModelCount int    `json:"model_count"`
}

func llmKeysPath(tenantID uuid.UUID) string { return tenantPath(tenantID) + "/llm-keys" }

func storedLLMKeys(t *testing.T, s *apitest.Server, tenantID uuid.UUID) []store.LLMKey {
	t.Helper()
	var rows []store.LLMKey
	require.NoError(t, s.Store.WithTenant(context.Background(), tenantID, func(tx *store.Tx) error {
		var err error
		rows, err = tx.ListLLMKeys(context.Background())
		return err
	}))
	return rows
}

func auditActions(t *testing.T, s *apitest.Server, tenantID uuid.UUID, prefix string) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	require.NoError(t, s.Store.WithTenant(context.Background(), tenantID, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListAuditEvents(context.Background(), store.AuditFilter{Types: []string{prefix}})
		return err
	}))
	return out
}

// A key is checked with the provider (its model list) before it is saved: a
// refused one, a URL that is no such API and an address the platform may not
// call are not saved. A good key is sealed, shown masked, rotated in place
// and removed, each step audited.
func TestLLMKeysAreCheckedBeforeSaving(t *testing.T) {
	t.Parallel()
	provider := fakellm.New(t, fakellm.WithAPIKey("sk-tenant-right-key-9876"))
	s := apitest.Start(t, apitest.Options{Env: map[string]string{
		"HTTP_TOOL_ALLOW_CIDRS": "127.0.0.1/32", // the fake listens on loopback
		"ANTHROPIC_BASE_URL":    provider.AnthropicBaseURL(),
	}})
	ten := s.CreateTenant(t, "Keys")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	path := llmKeysPath(ten.ID) + "/openai"

	// Refused by the provider: 422 on api_key, nothing stored.
	msg := s.Do(t, http.MethodPut, path, admin.Token, map[string]string{"api_key": "sk-tenant-wrong-key-1234",
		"base_url": provider.OpenAIBaseURL()}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "api_key")
	require.Contains(t, msg, "OpenAI refused this key")
	require.Contains(t, msg, "Incorrect API key")
	// No model list at the URL: 422 on base_url.
	msg = s.Do(t, http.MethodPut, path, admin.Token, map[string]string{"api_key": "sk-tenant-right-key-9876",
		"base_url": provider.URL + "/not-an-api"}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "base_url")
	require.Contains(t, msg, "no OpenAI model list at this address")
	// An address the platform may not call (cloud metadata): refused before connecting.
	msg = s.Do(t, http.MethodPut, llmKeysPath(ten.ID)+"/ollama", admin.Token, map[string]string{"base_url": "http://169.254.169.254"}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "base_url")
	require.Contains(t, msg, "may not be reached from the platform")
	// Shape errors are caught before anyone is asked.
	s.Do(t, http.MethodPut, llmKeysPath(ten.ID)+"/anthropic", admin.Token, map[string]string{"api_key": "sk-ant-1234567890",
		"base_url": "https://elsewhere.example.com"}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "base_url")
	s.Do(t, http.MethodPut, path, admin.Token, map[string]string{"api_key": "short"}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "api_key")
	s.Do(t, http.MethodPut, llmKeysPath(ten.ID)+"/mistral", admin.Token, map[string]string{"api_key": "abcdefghijkl"}).
		ExpectError(t, http.StatusNotFound, "not_found", "")
	// The wrong key reached the provider's model list (the URL without an API
	// did too, and was answered 404); the malformed and forbidden ones nothing.
	require.Len(t, provider.ModelListRequests(), 1)
	require.Empty(t, storedLLMKeys(t, s, ten.ID), "a key that failed its check is not saved")
	require.Empty(t, auditActions(t, s, ten.ID, "llm_key."))
	var list struct {
		Keys []llmKeyJSON `json:"llm_keys"`
	}
	s.Do(t, http.MethodGet, llmKeysPath(ten.ID), admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Empty(t, list.Keys)

	// The right key: 201, masked; sealed at rest with its URL.
	r := s.Do(t, http.MethodPut, path, admin.Token, map[string]string{"api_key": "sk-tenant-right-key-9876",
		"base_url": provider.OpenAIBaseURL() + "/"}).Expect(t, http.StatusCreated)
	require.NotContains(t, string(r.Body), "right-key")
	var k llmKeyJSON
	r.JSON(t, &k)
	require.Equal(t, llmKeyJSON{Provider: "openai", Masked: "••••9876", BaseURL: provider.OpenAIBaseURL(), Version: 1, ModelCount: 3}, k)
	rows := storedLLMKeys(t, s, ten.ID)
	require.Len(t, rows, 1)
	require.NotContains(t, string(rows[0].Secret), "right-key", "sealed at rest")
	plain, err := s.App.Secrets.Open(rows[0].Secret, store.LLMKeyAAD(ten.ID, "openai"))
	require.NoError(t, err)
	require.JSONEq(t, `{"api_key":"sk-tenant-right-key-9876","base_url":"`+provider.OpenAIBaseURL()+`"}`, string(plain))
	_, err = s.App.Secrets.Open(rows[0].Secret, store.LLMKeyAAD(uuid.New(), "openai"))
	require.Error(t, err, "bound to its tenant")

	// Listed masked; an Anthropic key at the platform's Anthropic URL too.
	s.Do(t, http.MethodPut, llmKeysPath(ten.ID)+"/anthropic", admin.Token, map[string]string{"api_key": "sk-tenant-right-key-9876"}).
		Expect(t, http.StatusCreated)
	r = s.Do(t, http.MethodGet, llmKeysPath(ten.ID), admin.Token, nil).Expect(t, http.StatusOK)
	require.NotContains(t, string(r.Body), "right-key")
	r.JSON(t, &list)
	require.Len(t, list.Keys, 2)
	require.Equal(t, "anthropic", list.Keys[0].Provider)
	require.Equal(t, "••••9876", list.Keys[0].Masked)

	// Rotating: 200, the version rises; the new key is what is stored.
	rotated := fakellm.New(t, fakellm.WithAPIKey("sk-tenant-newer-key-5555"))
	s.Do(t, http.MethodPut, path, admin.Token, map[string]string{"api_key": "sk-tenant-newer-key-5555",
		"base_url": rotated.OpenAIBaseURL()}).Expect(t, http.StatusOK).JSON(t, &k)
	require.Equal(t, 2, k.Version)
	require.Equal(t, "••••5555", k.Masked)

	// Removing: 204, then it is gone (404).
	s.Do(t, http.MethodDelete, path, admin.Token, nil).Expect(t, http.StatusNoContent)
	s.Do(t, http.MethodDelete, path, admin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	require.Len(t, storedLLMKeys(t, s, ten.ID), 1)

	var actions []string
	for _, e := range auditActions(t, s, ten.ID, "llm_key.") {
		actions = append(actions, e.Action+":"+e.TargetID)
		b, _ := json.Marshal(e.Data)
		require.NotContains(t, string(b), "key-9876", "the audit trail never holds a key")
		require.NotContains(t, string(b), "key-5555")
	}
	require.Equal(t, []string{"llm_key.remove:openai", "llm_key.rotate:openai", "llm_key.add:anthropic", "llm_key.add:openai"}, actions)

	// Another tenant sees none of it.
	other := s.CreateTenant(t, "Other")
	otherAdmin := s.NewUser(t, other.ID, store.RoleCustomerAdmin)
	s.Do(t, http.MethodGet, llmKeysPath(other.ID), otherAdmin.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Empty(t, list.Keys)
	s.Do(t, http.MethodGet, llmKeysPath(ten.ID), otherAdmin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodDelete, llmKeysPath(ten.ID)+"/anthropic", otherAdmin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	require.Len(t, storedLLMKeys(t, s, ten.ID), 1)
}

// noOwnKeys is a plan without bring-your-own keys.
type noOwnKeys struct{}

func (noOwnKeys) LLMKeyPolicy(context.Context, uuid.UUID) (llmkeys.Policy, error) {
	return llmkeys.Policy{PlatformKeys: true}, nil
}

// A plan without its own keys refuses them with 402, before the provider is asked.
func TestLLMKeysNeedAPlanThatAllowsThem(t *testing.T) {
	t.Parallel()
	provider := fakellm.New(t)
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"HTTP_TOOL_ALLOW_CIDRS": "127.0.0.1/32"}})
	s.App.LLMKeys.Plans = noOwnKeys{}
	ten := s.CreateTenant(t, "Free")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	s.Do(t, http.MethodPut, llmKeysPath(ten.ID)+"/openai", admin.Token, map[string]string{"api_key": provider.APIKey() + "-longer",
		"base_url": provider.OpenAIBaseURL()}).ExpectError(t, http.StatusPaymentRequired, "plan_limit", "")
	require.Empty(t, provider.ModelListRequests())
	require.Empty(t, storedLLMKeys(t, s, ten.ID))
}
