package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Kind says what a failure means for the chain and for the caller's retries.
type Kind int

const (
	// KindUnavailable: the model could not answer now (connection refused,
	// DNS, timeout, 429, 5xx, 529 overloaded). The pool falls back to the next
	// model; when the whole chain is unavailable the caller should retry later.
	KindUnavailable Kind = iota + 1
	// KindRequest: the request itself was rejected (400, 404, 413, 422, or
	// refused before sending). It would fail on every model, so the pool does
	// not fall back and the caller must not retry.
	KindRequest
	// KindAuth: the provider rejected our credentials or account (401, 402,
	// 403). That says nothing about other providers, each of which has its own
	// key, so the pool falls back to models of a different provider and skips
	// further models of this one. Retrying does not help until the key is fixed.
	KindAuth
	// KindNotConfigured: the provider has no key/URL. Skipped in a chain; an
	// error only when nothing in the chain is configured. The message names
	// the environment variable to set.
	KindNotConfigured
	// KindCanceled: the caller's context ended. Not a provider failure: it
	// neither falls back nor counts against the provider's circuit.
	KindCanceled
)

func (k Kind) String() string {
	switch k {
	case KindUnavailable:
		return "unavailable"
	case KindRequest:
		return "request rejected"
	case KindAuth:
		return "credentials rejected"
	case KindNotConfigured:
		return "not configured"
	case KindCanceled:
		return "canceled"
	default:
		return fmt.Sprintf("kind(%d)", int(k))
	}
}

func (k Kind) outcome() string {
	switch k {
	case KindUnavailable:
		return OutcomeUnavailable
	case KindRequest:
		return OutcomeRequest
	case KindAuth:
		return OutcomeAuth
	case KindNotConfigured:
		return OutcomeNotConfigured
	case KindCanceled:
		return OutcomeCanceled
	default:
		return "unknown"
	}
}

// Error is the one error type of this package.
type Error struct {
	Kind            Kind
	Provider, Model string // empty for a failure of the whole chain
	Status          int    // HTTP status, 0 when there was no HTTP answer
	// Message is the provider's own explanation (e.g. OpenAI's error.message),
	// kept separate so it can be shown to an operator without transport noise.
	Message string
	Err     error
	// Attempts is set on errors returned by Pool.Complete: every chain entry
	// tried, for audit and metrics even when nothing answered.
	Attempts []Attempt
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("llm: ")
	if e.Provider != "" {
		b.WriteString(e.Provider)
		b.WriteByte('/')
		b.WriteString(e.Model)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	switch {
	case e.Message != "":
		b.WriteString(": ")
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or 0.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// IsRetryable reports whether retrying the same call later may succeed:
// true only when every model was unavailable (outage, throttling, timeout).
// Request and credential errors need a change first; a canceled caller is
// not retried by us.
func IsRetryable(err error) bool { return KindOf(err) == KindUnavailable }

// kindForStatus classifies an HTTP error status.
func kindForStatus(status int) Kind {
	switch {
	case status == http.StatusUnauthorized, status == http.StatusPaymentRequired, status == http.StatusForbidden:
		return KindAuth
	case status == http.StatusRequestTimeout, status == http.StatusConflict, status == http.StatusTooManyRequests:
		return KindUnavailable
	case status >= 500: // includes Anthropic's 529 overloaded
		return KindUnavailable
	default: // 400, 404, 413, 422 and other 4xx
		return KindRequest
	}
}

// kindForTransport classifies an error that came without an HTTP status.
// Connection, DNS, TLS and timeout errors, a connection dropped mid-body and
// a body that is not the JSON we expect all mean the server could not answer
// properly now. Anything else (a client library refusing the request before
// sending it) is a request error: another attempt would fail the same way.
func kindForTransport(err error) Kind {
	var (
		urlErr *url.Error
		netErr net.Error
		synErr *json.SyntaxError
		typErr *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// The pool tells the caller's cancellation apart from the attempt's
		// timeout; for the provider both mean "no answer in time".
		return KindUnavailable
	case errors.As(err, &urlErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &synErr), errors.As(err, &typErr):
		return KindUnavailable
	default:
		return KindRequest
	}
}

// envHint names the environment variables that configure a provider.
func envHint(provider string) string {
	switch provider {
	case ProviderOpenAI:
		return "KONSTRUCT_OPENAI_API_KEY (or KONSTRUCT_OPENAI_BASE_URL for an OpenAI-compatible server)"
	case ProviderAnthropic:
		return "KONSTRUCT_ANTHROPIC_API_KEY"
	case ProviderOllama:
		return "KONSTRUCT_OLLAMA_URL"
	default:
		return "the configuration of provider " + provider
	}
}

func notConfigured(provider, model string) *Error {
	return &Error{
		Kind: KindNotConfigured, Provider: provider, Model: model,
		Message: fmt.Sprintf("provider %s is not configured: set %s", provider, envHint(provider)),
	}
}

// truncate keeps provider messages short enough for logs and UIs.
func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
