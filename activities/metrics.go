package activities

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the conversation engine's Prometheus series. A nil *Metrics
// records nothing, so tests may omit it.
type Metrics struct {
	turnLatency *prometheus.HistogramVec
	duplicates  *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		turnLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "konstruct_turn_latency_seconds",
			Help:    "Time from a message reaching the webhook to its reply being posted.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"channel"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_duplicate_sends_avoided_total",
			Help: "Retried sends that found their message already posted, by how it was found.",
		}, []string{"channel", "how"}),
	}
	reg.MustRegister(m.turnLatency, m.duplicates)
	return m
}

func (m *Metrics) observeTurn(channel string, d time.Duration) {
	if m != nil {
		m.turnLatency.WithLabelValues(channel).Observe(d.Seconds())
	}
}

func (m *Metrics) duplicateAvoided(channel, how string) {
	if m != nil {
		m.duplicates.WithLabelValues(channel, how).Inc()
	}
}
