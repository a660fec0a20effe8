package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Check probes one dependency.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
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
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Down   []string          `json:"down,omitempty"`
}

// Ready probes every dependency at once and answers 503 naming those down.
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
			if err != nil {
				body.Checks[chk.Name] = "down: " + err.Error()
				body.Down = append(body.Down, chk.Name)
				return
			}
			body.Checks[chk.Name] = "ok"
		}()
	}
	wg.Wait()
	status := http.StatusOK
	if len(body.Down) > 0 {
		body.Status = "unavailable"
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, body)
}
