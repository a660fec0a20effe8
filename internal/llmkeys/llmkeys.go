// Package llmkeys keeps tenants' own LLM credentials ("bring your own key"):
// an OpenAI key (with an optional OpenAI-compatible base URL such as a vLLM
// or LiteLLM server), an Anthropic key, an Ollama server. Each is checked
// with the provider by listing its models before it is saved, sealed at rest
// (secrets.Box, bound to the tenant and provider), shown only masked (its
// last four characters), rotated in place and audited. The portal and the
// REST API change keys through Service; the conversation activities read
// them with Keys, so the LLM pool uses a tenant's key for that tenant's
// calls only, and the platform's keys only where the tenant's plan allows.
package llmkeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/secrets"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools/httptool"
)

// Policy is what a tenant's plan allows about model keys.
type Policy struct {
	OwnKeys      bool // the tenant may bring its own keys
	PlatformKeys bool // the tenant's calls may use the platform's keys
}

// Plans decides a tenant's Policy. Billing implements it from the tenant's
// plan; until that is wired, AllowAll lets every tenant do both.
type Plans interface {
	LLMKeyPolicy(ctx context.Context, tenantID uuid.UUID) (Policy, error)
}

// AllowAll is the Plans of a platform without billing: every tenant may use
// its own keys and the platform's.
type AllowAll struct{}

// LLMKeyPolicy allows both.
func (AllowAll) LLMKeyPolicy(context.Context, uuid.UUID) (Policy, error) {
	return Policy{OwnKeys: true, PlatformKeys: true}, nil
}

// Service changes and reads tenants' keys.
type Service struct {
	Store   *store.Store
	Secrets *secrets.Box
	Plans   Plans // nil: AllowAll
	// HTTP checks keys. It must be the guarded client (httptool): the URL
	// is the tenant's choice and must not reach the platform's network.
	HTTP *http.Client
	// DefaultBaseURLs are where a key without its own URL is used, by
	// provider: the platform's KONSTRUCT_OPENAI_BASE_URL and
	// KONSTRUCT_ANTHROPIC_BASE_URL ("" is the vendor's API).
	DefaultBaseURLs map[string]string
	CheckTimeout    time.Duration // default 15s
	Logger          *slog.Logger
}

// Input is a key as an operator enters it.
type Input struct {
	APIKey  string
	BaseURL string
}

// Key is a tenant's key as it may be shown: masked.
type Key struct {
	Provider   string
	Last4      string // the key's last four characters ("" for Ollama, which has none)
	BaseURL    string // "" is the provider's own API
	Version    int
	ModelCount int
	CheckedAt  time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Label names the provider for people.
func (k Key) Label() string { return llm.ProviderLabel(k.Provider) }

// Masked is the key as shown: "••••abcd".
func (k Key) Masked() string {
	if k.Last4 == "" {
		return ""
	}
	return "••••" + k.Last4
}

func view(k store.LLMKey) Key {
	return Key{Provider: k.Provider, Last4: k.Last4, BaseURL: k.BaseURL, Version: k.Version, ModelCount: k.ModelCount,
		CheckedAt: k.CheckedAt, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt}
}

// sealed is what the secret holds: the key and the URL it is used with,
// authenticated together so a changed column cannot send the key elsewhere.
type sealed struct {
	APIKey  string `json:"api_key,omitempty"`
	BaseURL string `json:"base_url,omitempty"`
}

func (s *Service) plans() Plans {
	if s.Plans == nil {
		return AllowAll{}
	}
	return s.Plans
}

func actor(p authz.Principal) string { return "user:" + p.UserID.String() }

// Known reports whether the platform speaks to provider.
func Known(provider string) bool { return slices.Contains(llm.KnownProviders(), provider) }

// List returns the tenant's keys, masked, by provider.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID) ([]Key, error) {
	var rows []store.LLMKey
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		rows, err = tx.ListLLMKeys(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(rows))
	for _, r := range rows {
		out = append(out, view(r))
	}
	return out, nil
}

// Put checks in with the provider (by listing its models) and, when it
// answers, stores it sealed as the tenant's key for provider, replacing
// (rotating) the one it had. Nothing is stored when the check fails: bad
// input and a refused key come back as apperr.Fields naming the field. created
// is false for a rotation.
func (s *Service) Put(ctx context.Context, p authz.Principal, tenantID uuid.UUID, provider string, in Input) (Key, bool, error) {
	if !Known(provider) {
		return Key{}, false, apperr.NotFound("provider " + provider)
	}
	policy, err := s.plans().LLMKeyPolicy(ctx, tenantID)
	if err != nil {
		return Key{}, false, fmt.Errorf("llmkeys: plan: %w", err)
	}
	if !policy.OwnKeys {
		return Key{}, false, apperr.New(http.StatusPaymentRequired, "plan_limit",
			"your plan does not include your own model keys; upgrade the plan to add one")
	}
	c, err := normalise(provider, in)
	if err != nil {
		return Key{}, false, err
	}
	models, err := s.check(ctx, c)
	if err != nil {
		return Key{}, false, err
	}
	blob, err := json.Marshal(sealed{APIKey: c.APIKey, BaseURL: c.BaseURL})
	if err != nil {
		return Key{}, false, err
	}
	secret, err := s.Secrets.Seal(blob, store.LLMKeyAAD(tenantID, provider))
	if err != nil {
		return Key{}, false, fmt.Errorf("llmkeys: seal: %w", err)
	}
	last4 := ""
	if n := len(c.APIKey); n >= 4 {
		last4 = c.APIKey[n-4:]
	}
	var row store.LLMKey
	var created bool
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		if row, created, err = tx.PutLLMKey(ctx, store.LLMKey{Provider: provider, Secret: secret, BaseURL: c.BaseURL,
			Last4: last4, ModelCount: len(models)}); err != nil {
			return err
		}
		action := "llm_key.rotate"
		if created {
			action = "llm_key.add"
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: action, TargetType: "llm_key", TargetID: provider,
			Data: map[string]any{"provider": provider, "last4": last4, "base_url": c.BaseURL, "version": row.Version,
				"models": len(models)}})
	})
	if err != nil {
		return Key{}, false, fmt.Errorf("llmkeys: put %s: %w", provider, err)
	}
	return view(row), created, nil
}

// Delete removes the tenant's key for provider: its calls use the
// platform's key again, where the plan allows.
func (s *Service) Delete(ctx context.Context, p authz.Principal, tenantID uuid.UUID, provider string) (Key, error) {
	if !Known(provider) {
		return Key{}, apperr.NotFound("provider " + provider)
	}
	var row store.LLMKey
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		if row, err = tx.DeleteLLMKey(ctx, provider); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return apperr.NotFound(llm.ProviderLabel(provider) + " key").Wrap(err)
			}
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "llm_key.remove", TargetType: "llm_key",
			TargetID: provider, Data: map[string]any{"provider": provider, "last4": row.Last4, "version": row.Version}})
	})
	if err != nil {
		return Key{}, err
	}
	return view(row), nil
}

// normalise checks the shape of in for provider, before anyone is called.
func normalise(provider string, in Input) (llm.Credentials, error) {
	c := llm.Credentials{Provider: provider, APIKey: strings.TrimSpace(in.APIKey), BaseURL: strings.TrimSpace(in.BaseURL)}
	var errs apperr.Fields
	label := llm.ProviderLabel(provider)
	switch provider {
	case llm.ProviderOllama:
		if c.APIKey != "" {
			errs.Add("api_key", "Ollama takes no key: give its URL")
		}
		if c.BaseURL == "" {
			errs.Add("base_url", "give the URL of your Ollama server, such as http://ollama.example.com:11434")
		}
	case llm.ProviderAnthropic:
		if c.BaseURL != "" {
			errs.Add("base_url", "Anthropic keys are used with Anthropic's API: leave the URL empty")
		}
		fallthrough
	default:
		switch {
		case c.APIKey == "":
			errs.Add("api_key", "enter your "+label+" API key")
		case len(c.APIKey) < 8 || len(c.APIKey) > 500 || strings.ContainsAny(c.APIKey, " \t\r\n"):
			errs.Add("api_key", "must be an API key as "+label+" shows it: 8 to 500 characters, no spaces")
		}
	}
	if c.BaseURL != "" {
		if msg := checkBaseURL(c.BaseURL); msg != "" {
			errs.Add("base_url", msg)
		}
		c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	}
	return c, errs.Err()
}

func checkBaseURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return "must be an http:// or https:// URL"
	case u.User != nil:
		return "must not contain a user name or password"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	case len(raw) > 500:
		return "must be at most 500 characters"
	}
	return ""
}

// check lists the provider's models with c. A refusal is a field error that
// says what the provider said; nothing answering is one too, since the
// operator can fix the URL or retry.
func (s *Service) check(ctx context.Context, c llm.Credentials) ([]string, error) {
	timeout := s.CheckTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	call := c
	if call.BaseURL == "" {
		call.BaseURL = s.DefaultBaseURLs[c.Provider]
	}
	models, err := llm.ListModelsWith(cctx, call, s.HTTP)
	if err == nil {
		return models, nil
	}
	label := llm.ProviderLabel(c.Provider)
	where := "base_url"
	if c.BaseURL == "" {
		where = "api_key"
	}
	var e *llm.Error
	errors.As(err, &e)
	detail := ""
	if e != nil && e.Message != "" {
		detail = " (" + e.Message + ")"
	}
	s.logger().InfoContext(ctx, "llm key check failed", "provider", c.Provider, "base_url", c.BaseURL, "err", err)
	switch {
	case httptool.IsRefused(err):
		var re *httptool.RefusedError
		errors.As(err, &re)
		return nil, apperr.Fields{apperr.Invalid("base_url", "this server may not be reached from the platform: "+re.Why+
			". Use a public address, or ask the platform's operator to allow it (KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS)").Wrap(err)}
	case llm.KindOf(err) == llm.KindAuth:
		if c.Provider == llm.ProviderOllama {
			return nil, apperr.Fields{apperr.Invalid("base_url", "the server refused the request"+detail).Wrap(err)}
		}
		return nil, apperr.Fields{apperr.Invalid("api_key", label+" refused this key"+detail).Wrap(err)}
	case llm.KindOf(err) == llm.KindRequest:
		return nil, apperr.Fields{apperr.Invalid(where, "no "+label+" model list at this address"+detail+
			": check the URL"+urlHint(c.Provider)).Wrap(err)}
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return nil, apperr.Fields{apperr.Invalid(where, label+" did not answer within "+timeout.String()+"; check the URL or try again").Wrap(err)}
	default:
		return nil, apperr.Fields{apperr.Invalid(where, label+" could not be reached to check the key"+detail+
			"; check the URL or try again").Wrap(err)}
	}
}

func urlHint(provider string) string {
	if provider == llm.ProviderOpenAI {
		return " (an OpenAI-compatible server's base URL usually ends in /v1)"
	}
	return ""
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// Keys turns a tenant's stored keys (read by the caller in its own
// transaction) into what the LLM pool needs for one call: each key opened,
// with its version, and whether the tenant's plan lets the call fall back to
// the platform's keys. A key that cannot be opened is passed on as unusable,
// with a reason the operator can act on, rather than silently dropped.
func (s *Service) Keys(ctx context.Context, tenantID uuid.UUID, rows []store.LLMKey) (llm.Keys, error) {
	policy, err := s.plans().LLMKeyPolicy(ctx, tenantID)
	if err != nil {
		return llm.Keys{}, fmt.Errorf("llmkeys: plan: %w", err)
	}
	keys := llm.Keys{TenantID: tenantID.String(), NoPlatform: !policy.PlatformKeys}
	if !policy.OwnKeys || len(rows) == 0 {
		return keys, nil
	}
	keys.Own = make(map[string]llm.Credentials, len(rows))
	for _, r := range rows {
		c := llm.Credentials{Provider: r.Provider, Version: r.Version}
		var v sealed
		plain, err := s.Secrets.Open(r.Secret, store.LLMKeyAAD(tenantID, r.Provider))
		if err == nil {
			err = json.Unmarshal(plain, &v)
		}
		if err != nil {
			s.logger().ErrorContext(ctx, "a tenant's LLM key cannot be opened", "tenant_id", tenantID, "provider", r.Provider, "err", err)
			c.Unusable = "the organisation's " + llm.ProviderLabel(r.Provider) + " key cannot be decrypted: enter it again in Settings"
		}
		c.APIKey, c.BaseURL = v.APIKey, v.BaseURL
		if c.BaseURL == "" {
			c.BaseURL = s.DefaultBaseURLs[r.Provider]
		}
		keys.Own[r.Provider] = c
	}
	return keys, nil
}
