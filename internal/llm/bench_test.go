package llm

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	openai "github.com/sashabaranov/go-openai"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

// Run with: go test -run '^$' -bench . -benchmem ./internal/llm/
//
// BenchmarkPool minus BenchmarkDirectClient is the pool's overhead per call
// (request/response mapping, chain walk, breaker, per-attempt context,
// metrics); BenchmarkPoolOverhead measures the same difference interleaved,
// and BenchmarkPoolNoIO the pool machinery alone.

func benchFake(b *testing.B) *fakellm.Server {
	return fakellm.New(b, fakellm.WithHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Text("ok") }))
}

func benchPool(providers ...Provider) *Pool {
	return NewPool(providers, PoolConfig{
		Metrics: NewMetrics(prometheus.NewRegistry()),
		Logger:  slog.New(slog.DiscardHandler),
	})
}

func directClient(s *fakellm.Server) *openai.Client {
	c := openai.DefaultConfig(s.APIKey())
	c.BaseURL = s.OpenAIBaseURL()
	c.HTTPClient = newHTTPClient() // the same transport settings as the provider
	return openai.NewClientWithConfig(c)
}

var directReq = openai.ChatCompletionRequest{
	Model:    "gpt-4o-mini",
	Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "hi"}},
}

func BenchmarkDirectClient(b *testing.B) {
	client := directClient(benchFake(b))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.CreateChatCompletion(ctx, directReq); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPool(b *testing.B) {
	s := benchFake(b)
	pool := benchPool(NewOpenAI(OpenAIConfig{APIKey: s.APIKey(), BaseURL: s.OpenAIBaseURL()}))
	chain, req, ctx := []string{"openai/gpt-4o-mini"}, userSays("hi"), context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pool.Complete(ctx, chain, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoolOverhead alternates a direct call and a pool call to the same
// fake, so drift in the machine's speed affects both, and reports the mean
// difference.
func BenchmarkPoolOverhead(b *testing.B) {
	s := benchFake(b)
	client := directClient(s)
	pool := benchPool(NewOpenAI(OpenAIConfig{APIKey: s.APIKey(), BaseURL: s.OpenAIBaseURL()}))
	chain, req, ctx := []string{"openai/gpt-4o-mini"}, userSays("hi"), context.Background()
	var direct, pooled time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := client.CreateChatCompletion(ctx, directReq); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := pool.Complete(ctx, chain, req); err != nil {
			b.Fatal(err)
		}
		pooled += time.Since(t1)
		direct += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(direct.Microseconds())/float64(n), "direct-µs/call")
	b.ReportMetric(float64(pooled.Microseconds())/float64(n), "pool-µs/call")
	b.ReportMetric(float64((pooled-direct).Nanoseconds())/1e3/float64(n), "overhead-µs/call")
}

// BenchmarkPoolNoIO is the pool alone, over a provider that answers at once.
func BenchmarkPoolNoIO(b *testing.B) {
	pool := benchPool(stubProvider{name: "openai"})
	chain, req, ctx := []string{"openai/gpt-4o-mini"}, userSays("hi"), context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pool.Complete(ctx, chain, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFallbackRefused: the first model's server refuses connections,
// the second (Ollama, on the fake) answers. The breaker is kept closed so
// that every iteration pays the refused connection.
func BenchmarkFallbackRefused(b *testing.B) {
	s := benchFake(b)
	pool := NewPool([]Provider{
		NewOpenAI(OpenAIConfig{APIKey: "k", BaseURL: fakellm.RefusedURL(b) + "/v1"}),
		NewOllama(OllamaConfig{BaseURL: s.OllamaURL()}),
	}, PoolConfig{BreakerFailures: 1 << 30, Logger: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())})
	chain, req, ctx := []string{"openai/gpt-4o-mini", "ollama/llama3.2"}, userSays("hi"), context.Background()
	var refused time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		resp, err := pool.Complete(ctx, chain, req)
		if err != nil || resp.Provider != "ollama" {
			b.Fatal(resp.Provider, err)
		}
		refused += resp.Attempts[0].Duration
		n++
	}
	b.ReportMetric(float64(refused.Nanoseconds())/1e3/float64(n), "refused-attempt-µs")
}

// BenchmarkOpenCircuitSkip: the first provider's circuit is open, so it is
// skipped; the second answers.
func BenchmarkOpenCircuitSkip(b *testing.B) {
	s := benchFake(b)
	pool := NewPool([]Provider{
		NewOpenAI(OpenAIConfig{APIKey: "k", BaseURL: fakellm.RefusedURL(b) + "/v1"}),
		NewOllama(OllamaConfig{BaseURL: s.OllamaURL()}),
	}, PoolConfig{BreakerFailures: 1, BreakerCooldown: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	chain, req, ctx := []string{"openai/gpt-4o-mini", "ollama/llama3.2"}, userSays("hi"), context.Background()
	if _, err := pool.Complete(ctx, chain, req); err != nil { // opens openai's circuit
		b.Fatal(err)
	}
	var skip time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		resp, err := pool.Complete(ctx, chain, req)
		if err != nil || resp.Attempts[0].Outcome != OutcomeCircuitOpen {
			b.Fatal(resp.Attempts, err)
		}
		skip += resp.Attempts[0].Duration
		n++
	}
	b.ReportMetric(float64(skip.Nanoseconds())/float64(n), "skip-ns")
}

// BenchmarkPoolTenantKey alternates a call with the platform's key and one
// with a tenant's own key (its cached client: looked up by tenant, provider
// and version) to the same fake, and reports what the tenant's path adds.
// 100 tenants take turns, so the lookup is not always the same entry.
func BenchmarkPoolTenantKey(b *testing.B) {
	s := fakellm.New(b, fakellm.WithAPIKey(""), fakellm.WithHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Text("ok") }))
	pool := benchPool(NewOpenAI(OpenAIConfig{APIKey: "platform", BaseURL: s.OpenAIBaseURL()}))
	keys := make([]Keys, 100)
	for i := range keys {
		keys[i] = Keys{TenantID: "tenant-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Own: map[string]Credentials{
			ProviderOpenAI: {Provider: ProviderOpenAI, APIKey: "own", BaseURL: s.OpenAIBaseURL(), Version: 1}}}
	}
	chain, req, ctx := []string{"openai/gpt-4o-mini"}, userSays("hi"), context.Background()
	var platform, tenant time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := pool.Complete(ctx, chain, req); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		resp, err := pool.CompleteWith(ctx, keys[n%len(keys)], chain, req)
		if err != nil || resp.KeySource != KeyTenant {
			b.Fatal(resp.KeySource, err)
		}
		tenant += time.Since(t1)
		platform += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(platform.Microseconds())/float64(n), "platform-µs/call")
	b.ReportMetric(float64(tenant.Microseconds())/float64(n), "tenant-µs/call")
	b.ReportMetric(float64((tenant-platform).Nanoseconds())/1e3/float64(n), "tenant-extra-µs/call")
}
