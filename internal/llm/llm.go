// Package llm talks to language models. A [Provider] adapts one vendor API
// (OpenAI or any OpenAI-compatible server, Anthropic, Ollama) to a common
// [Request]/[Response] shape; a [Pool] walks an agent's ordered model chain
// ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", ...), falling back on
// failures that another model might not have, with a circuit breaker per
// provider and errors that tell a Temporal activity whether to retry.
package llm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Role is the author of a message. The system prompt is not a message: it is
// Request.System, because the wire formats place it differently.
type Role string

const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool" // the result of a tool call
)

// Message is one turn of a conversation.
type Message struct {
	Role       Role
	Content    string
	ToolCalls  []ToolCall // assistant messages that called tools
	ToolCallID string     // for RoleTool: which call this answers
	// Images are sent with a user message, before its text, to models that
	// can see (SupportsVision); the pool gives any other model Text in their
	// place, so a model that cannot see never gets one (it would refuse the
	// whole request).
	Images []Image
}

// Image is a picture a user sent: its bytes, sent base64-encoded in each
// vendor's own shape (OpenAI image_url data URL, Anthropic image block,
// Ollama images).
type Image struct {
	MimeType string // image/jpeg, image/png, image/webp or image/gif, checked on the bytes
	Data     []byte
	// Text replaces the image for a model that cannot see: a description
	// written by one that can, or a note that an image was left out.
	Text string
}

// ToolDef offers a tool to the model.
type ToolDef struct {
	Name, Description string
	Parameters        json.RawMessage // JSON Schema of an object
}

// ToolCall is the model asking for a tool to run.
type ToolCall struct {
	ID, Name  string
	Arguments json.RawMessage // a JSON object
}

// Request is what is sent to a model.
type Request struct {
	System      string
	Messages    []Message
	Tools       []ToolDef
	MaxTokens   int // 0 = provider default (1024 for Anthropic, which requires a value)
	Temperature *float64
}

// Usage counts tokens.
type Usage struct{ InputTokens, OutputTokens int }

// Normalised stop reasons.
const (
	StopEnd       = "end"
	StopToolUse   = "tool_use"
	StopMaxTokens = "max_tokens"
)

// Response is a model's answer.
type Response struct {
	Provider, Model string // who actually served it, as named in the chain
	Content         string
	ToolCalls       []ToolCall
	StopReason      string // StopEnd, StopToolUse or StopMaxTokens
	Usage           Usage
	CostMicroUSD    int64     // from the pricing table; 0 for unknown models
	Attempts        []Attempt // every chain entry tried, in order, for audit and metrics
	KeySource       string    // whose key paid: KeyPlatform or KeyTenant
}

// Attempt outcomes; they are also the "outcome" label of the calls metric.
const (
	OutcomeOK            = "ok"
	OutcomeUnavailable   = "unavailable"
	OutcomeRequest       = "request_error"
	OutcomeAuth          = "auth_error"
	OutcomeNotConfigured = "not_configured"
	OutcomeCircuitOpen   = "circuit_open"
	OutcomeCanceled      = "canceled"
)

// Attempt records one entry of the chain as the pool handled it.
type Attempt struct {
	Provider, Model string
	Outcome         string // one of the Outcome constants
	Err             string // empty on success
	Duration        time.Duration
	// Skipped is set when the provider was not called: its circuit is open, it
	// is not configured, or it already rejected our credentials in this chain.
	Skipped bool
	// KeySource is whose key the attempt used: KeyPlatform or KeyTenant.
	KeySource string
}

// Whose key a call used.
const (
	KeyPlatform = "platform"
	KeyTenant   = "tenant"
)

// Keys say whose keys a call may use: the tenant's own, by provider, and the
// platform's where the tenant's plan allows. The zero value uses the
// platform's keys only.
type Keys struct {
	TenantID string
	Own      map[string]Credentials // by provider
	// NoPlatform: the tenant's plan does not allow the platform's keys.
	NoPlatform bool
}

// Provider adapts one vendor API. Complete returns an *Error on failure so
// the pool can tell an outage from a bad request.
type Provider interface {
	Name() string // "openai", "anthropic", "ollama"
	Complete(ctx context.Context, model string, req Request) (Response, error)
}

// configurable is implemented by providers that can exist without
// configuration (the constructors always return a Provider, so wiring code
// can build all of them from the environment and let the pool skip the ones
// that have no key or URL).
type configurable interface {
	Configured() bool
}

// Provider names known to the platform.
const (
	ProviderOpenAI    = "openai"
	ProviderAnthropic = "anthropic"
	ProviderOllama    = "ollama"
)

var knownProviders = []string{ProviderOpenAI, ProviderAnthropic, ProviderOllama}

func isKnownProvider(name string) bool {
	for _, k := range knownProviders {
		if k == name {
			return true
		}
	}
	return false
}

// ParseModel splits "provider/model" and checks that the provider is one the
// platform knows. The error says what is wrong, for showing to an operator.
func ParseModel(s string) (provider, model string, err error) {
	provider, model, err = splitModel(s)
	if err != nil {
		return "", "", err
	}
	if !isKnownProvider(provider) {
		return "", "", fmt.Errorf("llm: parse model %q: unknown provider %q (known: %s)", s, provider, strings.Join(knownProviders, ", "))
	}
	return provider, model, nil
}

// splitModel checks only the shape, so the pool can also serve providers
// registered under other names (tests, future vendors).
func splitModel(s string) (provider, model string, err error) {
	provider, model, ok := strings.Cut(s, "/")
	switch {
	case !ok:
		return "", "", fmt.Errorf("llm: parse model %q: want provider/model, e.g. openai/gpt-4o-mini", s)
	case provider == "":
		return "", "", fmt.Errorf("llm: parse model %q: provider is empty (want provider/model)", s)
	case model == "":
		return "", "", fmt.Errorf("llm: parse model %q: model is empty (want provider/model)", s)
	case strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\n"):
		return "", "", fmt.Errorf("llm: parse model %q: contains whitespace", s)
	case strings.ToLower(provider) != provider:
		return "", "", fmt.Errorf("llm: parse model %q: provider must be lower case (%q)", s, strings.ToLower(provider))
	}
	return provider, model, nil
}

// newCallID makes a tool-call ID for servers that send none: the
// conversation needs one to pair the call with its result, on any provider
// the chain falls back to later.
func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "call_" + hex.EncodeToString(b[:])
}
