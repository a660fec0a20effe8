package llm

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

var embedChain = []string{"openai/text-embedding-3-small", "ollama/nomic-embed-text"}

// embedRig is a pool of the three providers over one fake whose embedding
// endpoints are scripted per wire.
type embedRig struct {
	fake *fakellm.Server
	pool *Pool
	logs *testkit.SyncBuffer
	reg  *prometheus.Registry

	mu       sync.Mutex
	handlers map[fakellm.Wire]fakellm.Handler
}

func newEmbedRig(t *testing.T, cfg PoolConfig, openaiURL string) *embedRig {
	t.Helper()
	r := &embedRig{handlers: map[fakellm.Wire]fakellm.Handler{}, logs: &testkit.SyncBuffer{}, reg: prometheus.NewRegistry()}
	r.fake = fakellm.New(t, fakellm.WithEmbedHandler(func(req fakellm.Request) fakellm.Reply {
		r.mu.Lock()
		h := r.handlers[req.Wire]
		r.mu.Unlock()
		if h == nil {
			return fakellm.Reply{}
		}
		return h(req)
	}))
	if openaiURL == "" {
		openaiURL = r.fake.OpenAIBaseURL()
	}
	cfg.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	cfg.Metrics = NewMetrics(r.reg)
	r.pool = NewPool([]Provider{
		NewOpenAI(OpenAIConfig{APIKey: r.fake.APIKey(), BaseURL: openaiURL}),
		NewAnthropic(AnthropicConfig{APIKey: r.fake.APIKey(), BaseURL: r.fake.AnthropicBaseURL()}),
		NewOllama(OllamaConfig{BaseURL: r.fake.OllamaURL()}),
	}, cfg)
	return r
}

func (r *embedRig) on(w fakellm.Wire, h fakellm.Handler) {
	r.mu.Lock()
	r.handlers[w] = h
	r.mu.Unlock()
}

func (r *embedRig) count(w fakellm.Wire) int {
	n := 0
	for _, req := range r.fake.EmbedRequests() {
		if req.Wire == w {
			n++
		}
	}
	return n
}

func TestEmbedOpenAI(t *testing.T) {
	r := newEmbedRig(t, PoolConfig{}, "")
	inputs := []string{"My favourite colour is teal", "the cat sat on the mat"}
	resp, err := r.pool.Embed(context.Background(), embedChain[:1], inputs)
	require.NoError(t, err)
	require.Equal(t, "openai", resp.Provider)
	require.Equal(t, "text-embedding-3-small", resp.Model)
	require.Equal(t, "openai/text-embedding-3-small", resp.EmbeddingModel())
	require.Equal(t, 1536, resp.Dimensions)
	require.Len(t, resp.Vectors, 2)
	for i, in := range inputs {
		require.InDeltaSlice(t, fakellm.Embedding(in, 1536), resp.Vectors[i], 1e-6, "vector %d in input order", i)
	}
	// The fake counts words: 5 + 6 tokens; $0.02/M → 11 × 0.02 micro-USD rounds to 0.
	require.Equal(t, Usage{InputTokens: 11}, resp.Usage)
	require.Len(t, resp.Attempts, 1)
	require.Equal(t, OutcomeOK, resp.Attempts[0].Outcome)

	reqs := r.fake.EmbedRequests()
	require.Len(t, reqs, 1)
	require.Equal(t, "/v1/embeddings", reqs[0].Path)
	require.Equal(t, inputs, reqs[0].Inputs)
	require.Equal(t, "Bearer "+fakellm.DefaultAPIKey, reqs[0].Header.Get("Authorization"))
	require.Empty(t, r.fake.Requests(), "no chat request")

	require.Equal(t, 1.0, counterValue(t, r.reg, "konstruct_llm_calls_total", "openai", "text-embedding-3-small", OutcomeOK))
	require.Equal(t, 11.0, counterValue(t, r.reg, "konstruct_llm_tokens_total", "openai", "text-embedding-3-small", "input"))
}

func TestEmbedOllama(t *testing.T) {
	r := newEmbedRig(t, PoolConfig{}, "")
	resp, err := r.pool.Embed(context.Background(), embedChain[1:], []string{"hello world"})
	require.NoError(t, err)
	require.Equal(t, "ollama/nomic-embed-text", resp.EmbeddingModel())
	require.Equal(t, 768, resp.Dimensions)
	require.InDeltaSlice(t, fakellm.Embedding("hello world", 768), resp.Vectors[0], 1e-6)
	require.Equal(t, 2, resp.Usage.InputTokens)
	require.Zero(t, resp.CostMicroUSD, "local models are free")
	reqs := r.fake.EmbedRequests()
	require.Len(t, reqs, 1)
	require.Equal(t, "/api/embed", reqs[0].Path)
	require.Equal(t, fakellm.Ollama, reqs[0].Wire)
}

// When OpenAI fails (an error status or a refused connection) the Ollama
// model answers, and the response says so with its own dimension, so the
// vectors are stored under the model that made them.
func TestEmbedFallsBack(t *testing.T) {
	for _, c := range []struct {
		name    string
		reply   fakellm.Reply
		refused bool
	}{
		{name: "500", reply: fakellm.Fail(http.StatusInternalServerError, "boom")},
		{name: "429", reply: fakellm.Fail(http.StatusTooManyRequests, "slow down")},
		{name: "hang past attempt timeout", reply: fakellm.Hang()},
		{name: "connection refused", refused: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := ""
			if c.refused {
				url = fakellm.RefusedURL(t) + "/v1"
			}
			r := newEmbedRig(t, PoolConfig{AttemptTimeout: 200 * time.Millisecond}, url)
			r.on(fakellm.OpenAI, func(fakellm.Request) fakellm.Reply { return c.reply })

			resp, err := r.pool.Embed(context.Background(), embedChain, []string{"a fact", "another fact"})
			require.NoError(t, err)
			require.Equal(t, "ollama", resp.Provider)
			require.Equal(t, "nomic-embed-text", resp.Model)
			require.Equal(t, 768, resp.Dimensions)
			require.Len(t, resp.Vectors, 2)
			require.Len(t, resp.Attempts, 2)
			require.Equal(t, OutcomeUnavailable, resp.Attempts[0].Outcome)
			require.Equal(t, OutcomeOK, resp.Attempts[1].Outcome)
			require.Contains(t, r.logs.String(), "embedding falling back")
			require.Equal(t, 1.0, counterValue(t, r.reg, "konstruct_llm_fallbacks_total", "openai", "text-embedding-3-small"))
		})
	}
}

func TestEmbedRequestErrorsDoNotFallBack(t *testing.T) {
	r := newEmbedRig(t, PoolConfig{}, "")
	r.on(fakellm.OpenAI, func(fakellm.Request) fakellm.Reply { return fakellm.Fail(http.StatusBadRequest, "too long") })
	_, err := r.pool.Embed(context.Background(), embedChain, []string{"x"})
	require.Error(t, err)
	require.Equal(t, KindRequest, KindOf(err))
	require.False(t, IsRetryable(err))
	require.Zero(t, r.count(fakellm.Ollama))

	// Anthropic has no embedding API: a configuration mistake, said plainly.
	_, err = r.pool.Embed(context.Background(), []string{"anthropic/claude-haiku-4-5"}, []string{"x"})
	require.ErrorContains(t, err, "does not serve embeddings")

	// Empty input is refused before any call (the APIs reject it with a 400).
	_, err = r.pool.Embed(context.Background(), embedChain, []string{"ok", "  "})
	require.ErrorContains(t, err, "input 1 is empty")
	_, err = r.pool.Embed(context.Background(), embedChain, nil)
	require.Equal(t, KindRequest, KindOf(err))
	require.Len(t, r.fake.EmbedRequests(), 1)
}

func TestEmbedAllUnavailableIsRetryable(t *testing.T) {
	r := newEmbedRig(t, PoolConfig{}, "")
	fail := func(fakellm.Request) fakellm.Reply { return fakellm.Fail(http.StatusServiceUnavailable, "down") }
	r.on(fakellm.OpenAI, fail)
	r.on(fakellm.Ollama, fail)
	_, err := r.pool.Embed(context.Background(), embedChain, []string{"x"})
	require.True(t, IsRetryable(err), err)
	require.Contains(t, err.Error(), "no model in the chain")
}

// The embedding endpoint has its own breaker: failures open it, an open
// circuit skips the provider's embeddings without a call, and chat on the
// same provider is not affected.
func TestEmbedCircuitBreaker(t *testing.T) {
	r := newEmbedRig(t, PoolConfig{BreakerFailures: 2, BreakerCooldown: time.Hour}, "")
	r.on(fakellm.OpenAI, func(fakellm.Request) fakellm.Reply { return fakellm.Fail(http.StatusBadGateway, "bad gateway") })
	for range 2 {
		_, err := r.pool.Embed(context.Background(), embedChain, []string{"x"})
		require.NoError(t, err)
	}
	require.Equal(t, 2, r.count(fakellm.OpenAI))
	resp, err := r.pool.Embed(context.Background(), embedChain, []string{"x"})
	require.NoError(t, err)
	require.Equal(t, 2, r.count(fakellm.OpenAI), "skipped while open")
	require.Equal(t, OutcomeCircuitOpen, resp.Attempts[0].Outcome)
	require.True(t, resp.Attempts[0].Skipped)
	require.Equal(t, 2.0, gaugeValue(t, r.reg, "konstruct_llm_circuit_state", "openai-embeddings"), "open")
	require.Equal(t, 0.0, gaugeValue(t, r.reg, "konstruct_llm_circuit_state", "openai"), "chat's circuit stays closed")

	chat, err := r.pool.Complete(context.Background(), []string{"openai/gpt-4o-mini"}, userSays("hi"))
	require.NoError(t, err)
	require.Equal(t, "openai", chat.Provider)
}

// An OpenAI-compatible server that answers a wrong number of vectors is
// treated as broken, and the chain moves on.
func TestEmbedRejectsMalformedAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":1,"total_tokens":1}}`))
	}))
	t.Cleanup(srv.Close)
	r := newEmbedRig(t, PoolConfig{}, srv.URL+"/v1")
	resp, err := r.pool.Embed(context.Background(), embedChain, []string{"one", "two"})
	require.NoError(t, err)
	require.Equal(t, "ollama", resp.Provider)
	require.True(t, strings.Contains(resp.Attempts[0].Err, "answered 1 vectors for 2 inputs"), resp.Attempts[0].Err)
}
