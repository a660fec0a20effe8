package llm

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

// rig is a pool whose three providers all talk to one fake, which scripts
// each wire format separately.
type rig struct {
	fake *fakellm.Server
	pool *Pool
	logs *testkit.SyncBuffer
	reg  *prometheus.Registry

	mu       sync.Mutex
	handlers map[fakellm.Wire]fakellm.Handler
}

func newRig(t *testing.T, cfg PoolConfig, providers ...func(*fakellm.Server) Provider) *rig {
	t.Helper()
	r := &rig{handlers: map[fakellm.Wire]fakellm.Handler{}, logs: &testkit.SyncBuffer{}, reg: prometheus.NewRegistry()}
	r.fake = fakellm.New(t, fakellm.WithHandler(func(req fakellm.Request) fakellm.Reply {
		r.mu.Lock()
		h := r.handlers[req.Wire]
		r.mu.Unlock()
		if h == nil {
			return fakellm.Text("answer from " + string(req.Wire))
		}
		return h(req)
	}))
	if len(providers) == 0 {
		for _, pc := range providerCases {
			providers = append(providers, pc.build)
		}
	}
	var ps []Provider
	for _, build := range providers {
		ps = append(ps, build(r.fake))
	}
	cfg.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	cfg.Metrics = NewMetrics(r.reg)
	r.pool = NewPool(ps, cfg)
	return r
}

func (r *rig) on(w fakellm.Wire, h fakellm.Handler) {
	r.mu.Lock()
	r.handlers[w] = h
	r.mu.Unlock()
}

func (r *rig) count(w fakellm.Wire) int {
	n := 0
	for _, req := range r.fake.Requests() {
		if req.Wire == w {
			n++
		}
	}
	return n
}

func reply(rep fakellm.Reply) fakellm.Handler {
	return func(fakellm.Request) fakellm.Reply { return rep }
}

// refusedOpenAI is an openai provider whose connections are refused.
func refusedOpenAI(t testing.TB) func(*fakellm.Server) Provider {
	u := fakellm.RefusedURL(t)
	return func(*fakellm.Server) Provider { return NewOpenAI(OpenAIConfig{APIKey: "k", BaseURL: u + "/v1"}) }
}

var chain = []string{"openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"}

func TestPoolFallsBack(t *testing.T) {
	cases := []struct {
		name    string
		first   fakellm.Reply
		refused bool
	}{
		{name: "500", first: fakellm.Fail(http.StatusInternalServerError, "boom")},
		{name: "429", first: fakellm.Fail(http.StatusTooManyRequests, "slow down")},
		{name: "503", first: fakellm.Fail(http.StatusServiceUnavailable, "maintenance")},
		{name: "hang past attempt timeout", first: fakellm.Hang()},
		{name: "connection refused", refused: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := PoolConfig{AttemptTimeout: 200 * time.Millisecond}
			var r *rig
			if c.refused {
				r = newRig(t, cfg, refusedOpenAI(t), providerCases[1].build)
			} else {
				r = newRig(t, cfg)
				r.on(fakellm.OpenAI, reply(c.first))
			}

			resp, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
			require.NoError(t, err)
			require.Equal(t, "anthropic", resp.Provider)
			require.Equal(t, "claude-haiku-4-5", resp.Model)
			require.Equal(t, "answer from anthropic", resp.Content)

			require.Len(t, resp.Attempts, 2)
			require.Equal(t, "openai", resp.Attempts[0].Provider)
			require.Equal(t, "gpt-4o-mini", resp.Attempts[0].Model)
			require.Equal(t, OutcomeUnavailable, resp.Attempts[0].Outcome)
			require.NotEmpty(t, resp.Attempts[0].Err)
			require.False(t, resp.Attempts[0].Skipped)
			require.Equal(t, OutcomeOK, resp.Attempts[1].Outcome)
			require.Empty(t, resp.Attempts[1].Err)

			// One warn line per fallback, naming provider, model and error.
			logs := r.logs.String()
			require.Equal(t, 1, strings.Count(logs, "falling back"), logs)
			require.Contains(t, logs, "level=WARN")
			require.Contains(t, logs, "provider=openai model=gpt-4o-mini")
			require.Equal(t, 1.0, counterValue(t, r.reg, "konstruct_llm_fallbacks_total", "openai", "gpt-4o-mini"))
		})
	}
}

func TestPoolDoesNotFallBackOnBadRequest(t *testing.T) {
	r := newRig(t, PoolConfig{})
	r.on(fakellm.OpenAI, reply(fakellm.Fail(http.StatusBadRequest, "messages: invalid tool schema")))

	_, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, KindRequest, e.Kind)
	require.Equal(t, http.StatusBadRequest, e.Status)
	require.Contains(t, err.Error(), "messages: invalid tool schema", "the provider's message is surfaced")
	require.False(t, IsRetryable(err))
	require.Len(t, e.Attempts, 1)
	require.Zero(t, r.count(fakellm.Anthropic), "a malformed request would fail everywhere")
}

// A rejected key says nothing about another provider's key: fall back to a
// different provider, but skip the same provider's other models.
func TestPoolAuthErrors(t *testing.T) {
	t.Run("falls back to another provider", func(t *testing.T) {
		r := newRig(t, PoolConfig{})
		r.on(fakellm.OpenAI, reply(fakellm.Fail(http.StatusUnauthorized, "Incorrect API key provided")))
		resp, err := r.pool.Complete(context.Background(),
			[]string{"openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-haiku-4-5"}, userSays("hi"))
		require.NoError(t, err)
		require.Equal(t, "anthropic", resp.Provider)
		require.Equal(t, 1, r.count(fakellm.OpenAI), "gpt-4o shares the rejected key and is not called")
		require.Equal(t, OutcomeAuth, resp.Attempts[0].Outcome)
		require.True(t, resp.Attempts[1].Skipped)
		require.Equal(t, OutcomeAuth, resp.Attempts[1].Outcome)
	})
	t.Run("only that provider: not retryable", func(t *testing.T) {
		r := newRig(t, PoolConfig{})
		r.on(fakellm.OpenAI, reply(fakellm.Fail(http.StatusForbidden, "organization disabled")))
		_, err := r.pool.Complete(context.Background(), []string{"openai/gpt-4o-mini", "openai/gpt-4o"}, userSays("hi"))
		require.Equal(t, KindAuth, KindOf(err), err)
		require.False(t, IsRetryable(err))
		require.Contains(t, err.Error(), "organization disabled")
	})
	t.Run("with an outage elsewhere: retryable", func(t *testing.T) {
		r := newRig(t, PoolConfig{})
		r.on(fakellm.OpenAI, reply(fakellm.Fail(http.StatusUnauthorized, "bad key")))
		r.on(fakellm.Anthropic, reply(fakellm.Fail(529, "Overloaded")))
		_, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
		require.Equal(t, KindUnavailable, KindOf(err), err)
		require.True(t, IsRetryable(err), "anthropic may be back later")
	})
	t.Run("does not open the circuit", func(t *testing.T) {
		r := newRig(t, PoolConfig{BreakerFailures: 1})
		r.on(fakellm.OpenAI, reply(fakellm.Fail(http.StatusUnauthorized, "bad key")))
		for range 3 {
			_, _ = r.pool.Complete(context.Background(), chain[:1], userSays("hi"))
		}
		require.Equal(t, 3, r.count(fakellm.OpenAI))
	})
}

func TestPoolSkipsProvidersNotConfigured(t *testing.T) {
	r := newRig(t, PoolConfig{},
		func(*fakellm.Server) Provider { return NewOpenAI(OpenAIConfig{}) }, // no key, no URL
		providerCases[1].build)
	require.Equal(t, []string{"anthropic"}, r.pool.Configured())

	resp, err := r.pool.Complete(context.Background(),
		[]string{"openai/gpt-4o-mini", "ollama/llama3.2", "anthropic/claude-haiku-4-5"}, userSays("hi"))
	require.NoError(t, err)
	require.Equal(t, "anthropic", resp.Provider)
	require.Len(t, resp.Attempts, 3)
	for i, env := range []string{"KONSTRUCT_OPENAI_API_KEY", "KONSTRUCT_OLLAMA_URL"} {
		require.True(t, resp.Attempts[i].Skipped)
		require.Equal(t, OutcomeNotConfigured, resp.Attempts[i].Outcome)
		require.Contains(t, resp.Attempts[i].Err, env)
	}
}

func TestPoolNothingConfigured(t *testing.T) {
	p := NewPool([]Provider{NewOpenAI(OpenAIConfig{}), NewAnthropic(AnthropicConfig{}), NewOllama(OllamaConfig{})}, PoolConfig{})
	require.Empty(t, p.Configured())
	_, err := p.Complete(context.Background(),
		[]string{"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "ollama/llama3.2"}, userSays("hi"))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, KindNotConfigured, e.Kind)
	require.False(t, IsRetryable(err))
	for _, env := range []string{"KONSTRUCT_OPENAI_API_KEY", "KONSTRUCT_OPENAI_BASE_URL", "KONSTRUCT_ANTHROPIC_API_KEY", "KONSTRUCT_OLLAMA_URL"} {
		require.Contains(t, err.Error(), env)
	}
	require.Len(t, e.Attempts, 3)

	_, err = NewPool(nil, PoolConfig{}).Complete(context.Background(), []string{"anthropic/claude-sonnet-4-5"}, userSays("hi"))
	require.Equal(t, KindNotConfigured, KindOf(err))
	require.Contains(t, err.Error(), "KONSTRUCT_ANTHROPIC_API_KEY")

	_, err = p.Complete(context.Background(), nil, userSays("hi"))
	require.Equal(t, KindNotConfigured, KindOf(err))
}

func TestPoolRejectsMalformedChain(t *testing.T) {
	r := newRig(t, PoolConfig{})
	for _, c := range [][]string{{"gpt-4o-mini"}, {"openai/gpt-4o-mini", "opnai/gpt-4o"}, {"anthropic/"}} {
		_, err := r.pool.Complete(context.Background(), c, userSays("hi"))
		require.Equal(t, KindRequest, KindOf(err), "%v: %v", c, err)
	}
	require.Zero(t, r.fake.Count(), "nothing is called for a malformed chain")
}

func TestPoolAllUnavailable(t *testing.T) {
	r := newRig(t, PoolConfig{})
	r.on(fakellm.OpenAI, reply(fakellm.Fail(http.StatusServiceUnavailable, "openai down")))
	r.on(fakellm.Anthropic, reply(fakellm.Fail(529, "Overloaded")))

	_, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, KindUnavailable, e.Kind)
	require.True(t, IsRetryable(err))
	require.Empty(t, e.Provider, "a failure of the whole chain")
	require.Len(t, e.Attempts, 2)
	require.Contains(t, err.Error(), "openai down")
	require.Contains(t, err.Error(), "Overloaded")

	// Every attempt's error is wrapped.
	var inner []*Error
	for _, sub := range e.Err.(interface{ Unwrap() []error }).Unwrap() {
		var x *Error
		require.ErrorAs(t, sub, &x)
		inner = append(inner, x)
	}
	require.Len(t, inner, 2)
	require.Equal(t, 503, inner[0].Status)
	require.Equal(t, 529, inner[1].Status)
}

func TestPoolCircuitBreaker(t *testing.T) {
	const failures = 3
	r := newRig(t, PoolConfig{BreakerFailures: failures, BreakerCooldown: 100 * time.Millisecond})
	r.on(fakellm.OpenAI, reply(fakellm.Fail(http.StatusInternalServerError, "boom")))

	for range failures {
		resp, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
		require.NoError(t, err)
		require.Equal(t, "anthropic", resp.Provider)
	}
	require.Equal(t, failures, r.count(fakellm.OpenAI))
	require.Equal(t, 2.0, gaugeValue(t, r.reg, "konstruct_llm_circuit_state", "openai"), "open")

	// Open: openai is skipped without a call.
	resp, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
	require.NoError(t, err)
	require.Equal(t, "anthropic", resp.Provider)
	require.Equal(t, failures, r.count(fakellm.OpenAI), "not called while open")
	require.True(t, resp.Attempts[0].Skipped)
	require.Equal(t, OutcomeCircuitOpen, resp.Attempts[0].Outcome)

	// Only openai in the chain: the open circuit makes the chain unavailable.
	_, err = r.pool.Complete(context.Background(), chain[:1], userSays("hi"))
	require.True(t, IsRetryable(err), err)

	// After the cooldown one probe goes through; it fails and reopens.
	time.Sleep(150 * time.Millisecond)
	_, _ = r.pool.Complete(context.Background(), chain, userSays("hi"))
	require.Equal(t, failures+1, r.count(fakellm.OpenAI))
	_, _ = r.pool.Complete(context.Background(), chain, userSays("hi"))
	require.Equal(t, failures+1, r.count(fakellm.OpenAI), "reopened after a failed probe")

	// After another cooldown the probe succeeds and the circuit closes.
	r.on(fakellm.OpenAI, nil)
	time.Sleep(150 * time.Millisecond)
	for i := range 3 {
		resp, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
		require.NoError(t, err)
		require.Equal(t, "openai", resp.Provider)
		require.Equal(t, failures+2+i, r.count(fakellm.OpenAI))
	}
	require.Equal(t, 0.0, gaugeValue(t, r.reg, "konstruct_llm_circuit_state", "openai"), "closed")
	require.Contains(t, r.logs.String(), "circuit state changed")
}

func TestPoolCallerCancellationIsNotAProviderFailure(t *testing.T) {
	r := newRig(t, PoolConfig{BreakerFailures: 1})
	r.on(fakellm.OpenAI, reply(fakellm.Hang()))

	ctx, cancel := context.WithCancel(context.Background())
	go func() { // cancel once the request is in flight
		for deadline := time.Now().Add(5 * time.Second); r.count(fakellm.OpenAI) == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := r.pool.Complete(ctx, chain, userSays("hi"))
	require.Equal(t, KindCanceled, KindOf(err), err)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsRetryable(err))
	require.Zero(t, r.count(fakellm.Anthropic), "no fallback once the caller is gone")

	// With BreakerFailures 1 a counted failure would have opened the circuit.
	r.on(fakellm.OpenAI, nil)
	resp, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
	require.NoError(t, err)
	require.Equal(t, "openai", resp.Provider)
	require.Equal(t, 2, r.count(fakellm.OpenAI))
}

func TestPoolCallerDeadlineWins(t *testing.T) {
	r := newRig(t, PoolConfig{AttemptTimeout: time.Minute, BreakerFailures: 1})
	r.on(fakellm.OpenAI, reply(fakellm.Hang()))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := r.pool.Complete(ctx, chain, userSays("hi"))
	require.Equal(t, KindCanceled, KindOf(err), err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, r.count(fakellm.Anthropic))

	var e *Error
	require.ErrorAs(t, err, &e)
	require.Len(t, e.Attempts, 1)
	require.Equal(t, OutcomeCanceled, e.Attempts[0].Outcome)
}

func TestPoolCostAndMetrics(t *testing.T) {
	r := newRig(t, PoolConfig{})
	r.on(fakellm.Anthropic, reply(fakellm.Reply{Text: "ok", Usage: &fakellm.Usage{InputTokens: 1000, OutputTokens: 500}}))
	resp, err := r.pool.Complete(context.Background(), []string{"anthropic/claude-sonnet-4-5"}, userSays("hi"))
	require.NoError(t, err)
	// $3/M in, $15/M out: 1000×3 + 500×15 micro-USD.
	require.Equal(t, int64(10_500), resp.CostMicroUSD)

	require.Equal(t, 1.0, counterValue(t, r.reg, "konstruct_llm_calls_total", "anthropic", "claude-sonnet-4-5", OutcomeOK))
	require.Equal(t, 1000.0, counterValue(t, r.reg, "konstruct_llm_tokens_total", "anthropic", "claude-sonnet-4-5", "input"))
	require.Equal(t, 500.0, counterValue(t, r.reg, "konstruct_llm_tokens_total", "anthropic", "claude-sonnet-4-5", "output"))
	require.Equal(t, 10_500.0, counterValue(t, r.reg, "konstruct_llm_cost_microusd_total", "anthropic", "claude-sonnet-4-5"))

	r.on(fakellm.Ollama, reply(fakellm.Reply{Text: "ok", Usage: &fakellm.Usage{InputTokens: 1000, OutputTokens: 500}}))
	resp, err = r.pool.Complete(context.Background(), []string{"ollama/llama3.2"}, userSays("hi"))
	require.NoError(t, err)
	require.Zero(t, resp.CostMicroUSD, "local models are free")
}

func TestPoolConcurrentUse(t *testing.T) {
	r := newRig(t, PoolConfig{BreakerFailures: 2, BreakerCooldown: 20 * time.Millisecond})
	var n int
	var mu sync.Mutex
	r.on(fakellm.OpenAI, func(fakellm.Request) fakellm.Reply {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%3 == 0 {
			return fakellm.Fail(http.StatusInternalServerError, "flaky")
		}
		return fakellm.Text("ok")
	})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				resp, err := r.pool.Complete(context.Background(), chain, userSays("hi"))
				if err != nil || (resp.Provider != "openai" && resp.Provider != "anthropic") {
					t.Errorf("unexpected answer %+v, %v", resp, err)
				}
			}
		})
	}
	wg.Wait()
}

func TestAsErrorTreatsUnknownErrorsAsUnavailable(t *testing.T) {
	p := NewPool([]Provider{stubProvider{name: "openai", err: errors.New("surprise")}, stubProvider{name: "anthropic"}}, PoolConfig{Logger: slog.New(slog.DiscardHandler)})
	resp, err := p.Complete(context.Background(), chain, userSays("hi"))
	require.NoError(t, err)
	require.Equal(t, "anthropic", resp.Provider)
}

// stubProvider answers at once without I/O.
type stubProvider struct {
	name string
	err  error
}

func (s stubProvider) Name() string { return s.name }

func (s stubProvider) Complete(context.Context, string, Request) (Response, error) {
	if s.err != nil {
		return Response{}, s.err
	}
	return Response{Content: "ok", StopReason: StopEnd, Usage: Usage{InputTokens: 10, OutputTokens: 2}}, nil
}

func metricFamily(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// findMetric returns the metric of family name whose label values are values,
// in label order.
func findMetric(t *testing.T, reg *prometheus.Registry, name string, values ...string) *dto.Metric {
	t.Helper()
	mf := metricFamily(t, reg, name)
	require.NotNil(t, mf, "metric %s not found", name)
outer:
	for _, m := range mf.GetMetric() {
		labels := m.GetLabel()
		if len(labels) != len(values) {
			continue
		}
		// Gather sorts labels by name; compare as a set.
		for _, v := range values {
			found := false
			for _, l := range labels {
				if l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		return m
	}
	require.Failf(t, "metric not found", "%s%v", name, values)
	return nil
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, values ...string) float64 {
	return findMetric(t, reg, name, values...).GetCounter().GetValue()
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string, values ...string) float64 {
	return findMetric(t, reg, name, values...).GetGauge().GetValue()
}
