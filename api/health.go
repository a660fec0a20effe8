package api

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Check probes one dependency.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
	// Degrades marks a dependency the API still does its job without (webhooks
	// are recorded in the inbox while Temporal is down): its failure makes the
	// answer "degraded" with 200, so a load balancer keeps sending traffic,
	// instead of "unavailable" with 503.
	Degrades bool
	// Detail, when set, adds what it returns under details[Name].
	Detail func() any
}

// Health answers /healthz and /readyz.
type Health struct {
	Checks  []Check
	Timeout time.Duration
}

// Live answers while the process is up.
func (h *Health) Live(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

type readyBody struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Down     []string          `json:"down,omitempty"`
	Degraded []string          `json:"degraded,omitempty"`
	Details  map[string]any    `json:"details,omitempty"`
}

// Ready probes every dependency at once and answers 503 naming those down,
// or 200 "degraded" naming those down that the API can do without.
func (h *Health) Ready(c *gin.Context) {
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), timeout)
	defer cancel()
	body := readyBody{Status: "ok", Checks: make(map[string]string, len(h.Checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, chk := range h.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := chk.Probe(ctx)
			mu.Lock()
			defer mu.Unlock()
			if chk.Detail != nil {
				if body.Details == nil {
					body.Details = map[string]any{}
				}
				body.Details[chk.Name] = chk.Detail()
			}
			switch {
			case err != nil && chk.Degrades:
				body.Checks[chk.Name] = "degraded: " + err.Error()
				body.Degraded = append(body.Degraded, chk.Name)
			case err != nil:
				body.Checks[chk.Name] = "down: " + err.Error()
				body.Down = append(body.Down, chk.Name)
			default:
				body.Checks[chk.Name] = "ok"
			}
		}()
	}
	wg.Wait()
	sort.Strings(body.Down)
	sort.Strings(body.Degraded)
	status := http.StatusOK
	switch {
	case len(body.Down) > 0:
		body.Status = "unavailable"
		status = http.StatusServiceUnavailable
	case len(body.Degraded) > 0:
		body.Status = "degraded"
	}
	c.JSON(status, body)
}
