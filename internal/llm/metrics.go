package llm

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Metrics are the pool's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	calls     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	fallbacks *prometheus.CounterVec
	circuit   *prometheus.GaugeVec
	tokens    *prometheus.CounterVec
	cost      *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (if not nil).
// It panics if they are already registered there, like MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_llm_calls_total",
			Help: "Model attempts made by the LLM pool, by outcome (ok, unavailable, request_error, auth_error, not_configured, circuit_open, canceled).",
		}, []string{"provider", "model", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "konstruct_llm_call_duration_seconds",
			Help:    "Duration of model calls that reached the provider, successful or not.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120},
		}, []string{"provider"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_llm_fallbacks_total",
			Help: "Times the pool moved on from a model to the next one in the chain, by the model it left.",
		}, []string{"provider", "model"}),
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "konstruct_llm_circuit_state",
			Help: "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_llm_tokens_total",
			Help: "Tokens used by answered calls, by direction (input, output).",
		}, []string{"provider", "model", "direction"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_llm_cost_microusd_total",
			Help: "List-price cost of answered calls in micro-USD.",
		}, []string{"provider", "model"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.latency, m.fallbacks, m.circuit, m.tokens, m.cost)
	}
	return m
}

func (m *Metrics) attempt(a Attempt) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(a.Provider, a.Model, a.Outcome).Inc()
	if !a.Skipped {
		m.latency.WithLabelValues(a.Provider).Observe(a.Duration.Seconds())
	}
}

func (m *Metrics) answered(r Response) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(r.Provider, r.Model, "input").Add(float64(r.Usage.InputTokens))
	m.tokens.WithLabelValues(r.Provider, r.Model, "output").Add(float64(r.Usage.OutputTokens))
	if r.CostMicroUSD > 0 {
		m.cost.WithLabelValues(r.Provider, r.Model).Add(float64(r.CostMicroUSD))
	}
}

func (m *Metrics) fallback(provider, model string) {
	if m == nil {
		return
	}
	m.fallbacks.WithLabelValues(provider, model).Inc()
}

func (m *Metrics) circuitState(provider string, s gobreaker.State) {
	if m == nil {
		return
	}
	v := 0.0
	switch s {
	case gobreaker.StateHalfOpen:
		v = 1
	case gobreaker.StateOpen:
		v = 2
	}
	m.circuit.WithLabelValues(provider).Set(v)
}
