package inbox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics describe the inbox: its backlog (from the last measurement, the
// whole inbox, every tenant) and this process's deliveries.
type Metrics struct {
	pending     prometheus.Gauge
	oldest      prometheus.Gauge
	deliveries  *prometheus.CounterVec
	failures    *prometheus.CounterVec
	handover    *prometheus.HistogramVec
	claimErrors prometheus.Counter
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "konstruct_inbox_pending",
			Help: "Recorded webhook events not yet handed to Temporal (the whole inbox, measured every few seconds).",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "konstruct_inbox_oldest_age_seconds",
			Help: "Age of the oldest event waiting in the inbox; 0 when none waits.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_inbox_delivered_total",
			Help: "Inbox events this process handed over, by source.",
		}, []string{"source"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "konstruct_inbox_failures_total",
			Help: "Failed hand-overs by source and kind (transient: retried with backoff; permanent: rejected).",
		}, []string{"source", "kind"}),
		handover: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "konstruct_inbox_handover_seconds",
			Help:    "From an event's arrival to its hand-over to Temporal, by source.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, 1, 5, 30, 120, 600},
		}, []string{"source"}),
		claimErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "konstruct_inbox_claim_errors_total",
			Help: "Dispatcher claims that failed (Postgres unreachable).",
		}),
	}
	reg.MustRegister(m.pending, m.oldest, m.deliveries, m.failures, m.handover, m.claimErrors)
	return m
}

func (m *Metrics) backlog(b *Backlog) {
	if m == nil || b.Err != nil {
		return
	}
	m.pending.Set(float64(b.Pending))
	m.oldest.Set(b.OldestAge.Seconds())
}

func (m *Metrics) delivered(source string, since time.Duration) {
	if m != nil {
		m.deliveries.WithLabelValues(source).Inc()
		m.handover.WithLabelValues(source).Observe(since.Seconds())
	}
}

func (m *Metrics) failed(source, kind string) {
	if m != nil {
		m.failures.WithLabelValues(source, kind).Inc()
	}
}

func (m *Metrics) claimFailed() {
	if m != nil {
		m.claimErrors.Inc()
	}
}
