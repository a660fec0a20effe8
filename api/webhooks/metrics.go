package webhooks

import "github.com/prometheus/client_golang/prometheus"

// Metrics count webhook requests by outcome and rate-limit rejections.
type Metrics struct {
	requests    *prometheus.CounterVec
	ack         *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_webhook_requests_total",
			Help: "Webhook requests by source and outcome (accepted, duplicate, ignored, unknown_team, bad_signature, ...).",
		}, []string{"source", "outcome"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "konstruct_webhook_ack_seconds",
			Help:    "Time to acknowledge a webhook, by source.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1, 5},
		}, []string{"source"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_rate_limit_rejections_total",
			Help: "Inbound messages over a rate limit, by channel and scope (tenant or channel).",
		}, []string{"channel", "scope"}),
	}
	reg.MustRegister(m.requests, m.ack, m.rateLimited)
	return m
}

func (m *Metrics) outcome(source, outcome string) {
	if m != nil {
		m.requests.WithLabelValues(source, outcome).Inc()
	}
}

func (m *Metrics) acked(source string, seconds float64) {
	if m != nil {
		m.ack.WithLabelValues(source).Observe(seconds)
	}
}

func (m *Metrics) limited(channel, scope string) {
	if m != nil {
		m.rateLimited.WithLabelValues(channel, scope).Inc()
	}
}
