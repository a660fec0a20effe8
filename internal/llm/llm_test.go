package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseModel(t *testing.T) {
	cases := []struct {
		in              string
		provider, model string
		errHas          string
	}{
		{in: "openai/gpt-4o-mini", provider: "openai", model: "gpt-4o-mini"},
		{in: "anthropic/claude-sonnet-4-5", provider: "anthropic", model: "claude-sonnet-4-5"},
		{in: "ollama/llama3.2", provider: "ollama", model: "llama3.2"},
		{in: "openai/meta-llama/Llama-3.1-8B", provider: "openai", model: "meta-llama/Llama-3.1-8B"},
		{in: "gpt-4o-mini", errHas: "want provider/model"},
		{in: "/gpt-4o", errHas: "provider is empty"},
		{in: "openai/", errHas: "model is empty"},
		{in: "mistral/large", errHas: `unknown provider "mistral"`},
		{in: "OpenAI/gpt-4o", errHas: "lower case"},
		{in: "openai/gpt 4o", errHas: "whitespace"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			p, m, err := ParseModel(c.in)
			if c.errHas != "" {
				require.ErrorContains(t, err, c.errHas)
				require.ErrorContains(t, err, fmt.Sprintf("%q", c.in), "the error names the input")
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.provider, p)
			require.Equal(t, c.model, m)
		})
	}
}

func TestKindForStatus(t *testing.T) {
	cases := map[int]Kind{
		400: KindRequest, 401: KindAuth, 402: KindAuth, 403: KindAuth, 404: KindRequest,
		408: KindUnavailable, 409: KindUnavailable, 413: KindRequest, 422: KindRequest,
		429: KindUnavailable, 500: KindUnavailable, 502: KindUnavailable, 503: KindUnavailable,
		504: KindUnavailable, 529: KindUnavailable,
	}
	for status, want := range cases {
		require.Equal(t, want, kindForStatus(status), "HTTP %d", status)
	}
}

func TestKindForTransport(t *testing.T) {
	var syntaxErr *json.SyntaxError
	require.ErrorAs(t, json.Unmarshal([]byte("{x"), &struct{}{}), &syntaxErr)
	cases := []struct {
		err  error
		want Kind
	}{
		{context.DeadlineExceeded, KindUnavailable},
		{&url.Error{Op: "Post", URL: "http://x", Err: errors.New("dial tcp: connection refused")}, KindUnavailable},
		{fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), KindUnavailable},
		{syntaxErr, KindUnavailable},
		{errors.New("streaming is required for operations that may take longer than 10 minutes"), KindRequest},
	}
	for _, c := range cases {
		require.Equal(t, c.want, kindForTransport(c.err), c.err.Error())
	}
}

func TestErrorFormatAndUnwrap(t *testing.T) {
	inner := errors.New("dial tcp: connection refused")
	e := &Error{Kind: KindUnavailable, Provider: "openai", Model: "gpt-4o", Err: fmt.Errorf("openai: create chat completion: %w", inner)}
	require.Equal(t, "llm: openai/gpt-4o: unavailable: openai: create chat completion: dial tcp: connection refused", e.Error())
	require.ErrorIs(t, e, inner)
	require.True(t, IsRetryable(fmt.Errorf("activity: %w", e)), "found through wrapping")

	e = &Error{Kind: KindRequest, Provider: "anthropic", Model: "claude-haiku-4-5", Status: http.StatusBadRequest, Message: "invalid_request_error: max_tokens: too large"}
	require.Equal(t, "llm: anthropic/claude-haiku-4-5: request rejected (HTTP 400): invalid_request_error: max_tokens: too large", e.Error())
	require.False(t, IsRetryable(e))
	require.False(t, IsRetryable(errors.New("plain")))
	require.False(t, IsRetryable(nil))
}

func TestCost(t *testing.T) {
	u := Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}
	cases := map[string]int64{
		"gpt-4o-mini":                         750_000, // $0.15 + $0.60
		"openai/gpt-4o-mini":                  750_000,
		"gpt-4o-mini-2024-07-18":              750_000,
		"gpt-4o":                              12_500_000,
		"gpt-4o-2024-08-06":                   12_500_000,
		"gpt-4.1-nano":                        500_000,
		"o3-mini-2025-01-31":                  5_500_000,
		"anthropic/claude-sonnet-4-5":         18_000_000,
		"claude-sonnet-4-5-20250929":          18_000_000,
		"claude-haiku-4-5":                    6_000_000,
		"claude-opus-4-1-20250805":            90_000_000,
		"claude-3-7-sonnet-latest":            18_000_000,
		"ollama/llama3.2":                     0,
		"openai/some-self-hosted-model":       0,
		"anthropic/claude-sonnet-4-6-preview": 0, // unknown: not priced as sonnet 4
	}
	for model, want := range cases {
		require.Equal(t, want, Cost(model, u), model)
	}
	// Rounded to the nearest micro-USD: 7 tokens of gpt-4o-mini input = 1.05.
	require.Equal(t, int64(1), Cost("gpt-4o-mini", Usage{InputTokens: 7}))
	require.Equal(t, int64(0), Cost("gpt-4o-mini", Usage{}))
}
