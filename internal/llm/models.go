package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
)

// ModelLister is implemented by providers that can list their models: the
// cheap, side-effect-free call that checks a key (or a server) before it is
// saved. ListModels returns an *Error on failure.
type ModelLister interface {
	ListModels(ctx context.Context) ([]string, error)
}

// ListModels calls GET {base}/models (OpenAI's and every compatible
// server's model list).
func (p *openAIProvider) ListModels(ctx context.Context) ([]string, error) {
	list, err := p.client.ListModels(ctx)
	if err != nil {
		e := openAIError("", err)
		e.Err = fmt.Errorf("openai: list models: %w", err)
		return nil, e
	}
	out := make([]string, 0, len(list.Models))
	for _, m := range list.Models {
		out = append(out, m.ID)
	}
	return out, nil
}

// ListModels calls GET /v1/models (one page of up to 1000: enough to show
// that the key works).
func (p *anthropicProvider) ListModels(ctx context.Context) ([]string, error) {
	page, err := p.client.Models.List(ctx, anthropic.ModelListParams{Limit: param.NewOpt(int64(1000))})
	if err != nil {
		e := anthropicError("", err)
		e.Err = fmt.Errorf("anthropic: list models: %w", err)
		return nil, e
	}
	out := make([]string, 0, len(page.Data))
	for _, m := range page.Data {
		out = append(out, m.ID)
	}
	return out, nil
}

// ListModels calls Ollama's GET /api/tags (the models pulled on the server).
func (p *ollamaProvider) ListModels(ctx context.Context) ([]string, error) {
	fail := func(kind Kind, status int, msg string, err error) *Error {
		return &Error{Kind: kind, Provider: ProviderOllama, Status: status, Message: msg, Err: err}
	}
	if p.url == "" {
		return nil, notConfigured(ProviderOllama, "")
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.url, "/api/chat")+"/api/tags", nil)
	if err != nil {
		return nil, fail(KindRequest, 0, "", fmt.Errorf("ollama: build tags request: %w", err))
	}
	hreq.Header.Set("Accept", "application/json")
	res, err := p.client.Do(hreq)
	if err != nil {
		return nil, fail(kindForTransport(err), 0, "", fmt.Errorf("ollama: list models: %w", err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return nil, fail(kindForTransport(err), res.StatusCode, "", fmt.Errorf("ollama: read tags: %w", err))
	}
	if res.StatusCode >= 400 {
		return nil, fail(kindForStatus(res.StatusCode), res.StatusCode, truncate(string(b), 500), fmt.Errorf("ollama: list models: %s", res.Status))
	}
	var tags struct {
		Models *[]struct {
			Name  string `json:"name"`
			Model string `json:"model"`
		} `json:"models"`
	}
	if err := json.Unmarshal(b, &tags); err != nil || tags.Models == nil {
		// Something answered, but not Ollama: the URL points elsewhere.
		return nil, fail(KindRequest, res.StatusCode, "the server at this URL does not answer like Ollama (GET /api/tags)",
			fmt.Errorf("ollama: decode tags: %v", err))
	}
	out := make([]string, 0, len(*tags.Models))
	for _, m := range *tags.Models {
		out = append(out, m.Name)
	}
	return out, nil
}

// Credentials are a tenant's own key (or server) for one provider.
type Credentials struct {
	Provider string // ProviderOpenAI, ProviderAnthropic or ProviderOllama
	APIKey   string // OpenAI and Anthropic
	BaseURL  string // an OpenAI-compatible base URL ending in /v1, Anthropic's base URL, or the Ollama server
	// Version tells rotations of a tenant's key apart: the pool keeps one
	// client per tenant, provider and version.
	Version int
	// Unusable says why a stored key cannot be used (it cannot be
	// decrypted, say): the pool skips the tenant's key with this message.
	Unusable string
}

// NewProvider builds a provider from a tenant's credentials, calling out
// through hc (the platform's guarded client for tenants' URLs).
func NewProvider(c Credentials, hc *http.Client) (Provider, error) {
	switch c.Provider {
	case ProviderOpenAI:
		return NewOpenAI(OpenAIConfig{APIKey: c.APIKey, BaseURL: c.BaseURL, HTTPClient: hc}), nil
	case ProviderAnthropic:
		return NewAnthropic(AnthropicConfig{APIKey: c.APIKey, BaseURL: c.BaseURL, HTTPClient: hc}), nil
	case ProviderOllama:
		return NewOllama(OllamaConfig{BaseURL: c.BaseURL, HTTPClient: hc}), nil
	}
	return nil, fmt.Errorf("llm: unknown provider %q (known: %s)", c.Provider, strings.Join(knownProviders, ", "))
}

// ListModelsWith checks credentials the way a key is checked before it is
// saved: it lists the provider's models through hc. The error is an *Error
// whose Kind says what went wrong (KindAuth: the key was refused;
// KindRequest: the URL serves no such API; KindUnavailable: nothing answered).
func ListModelsWith(ctx context.Context, c Credentials, hc *http.Client) ([]string, error) {
	pr, err := NewProvider(c, hc)
	if err != nil {
		return nil, &Error{Kind: KindRequest, Provider: c.Provider, Err: err}
	}
	return pr.(ModelLister).ListModels(ctx)
}

// ProviderLabel is how a provider is called in messages to people.
func ProviderLabel(provider string) string {
	switch provider {
	case ProviderOpenAI:
		return "OpenAI"
	case ProviderAnthropic:
		return "Anthropic"
	case ProviderOllama:
		return "Ollama"
	}
	return provider
}

// KnownProviders lists the providers the platform speaks to.
func KnownProviders() []string { return append([]string(nil), knownProviders...) }
