// Package webhooks receives events from Slack (and later WhatsApp and Stripe):
// verify before parsing, resolve the tenant (from a cache), rate-limit, and
// record the event in the inbox, deduped by event ID in the same INSERT.
// Nothing slow runs here: the webhook acknowledges as soon as the event is
// durably recorded, and the inbox dispatcher hands it to Temporal.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/store"
)

// Route is where a channel's events go.
type Route struct {
	TenantID             uuid.UUID
	AgentID              uuid.UUID
	BotUserID            string
	TenantActive         bool
	TenantRatePerMinute  int // 0: the platform default
	ChannelRatePerMinute int
}

// Routes resolves an external workspace or number to its tenant and agent,
// with a short in-process cache: the lookup sits on every webhook's hot path,
// while connections change rarely. Each serve process has its own cache and
// none is told of changes, so with several processes a re-pointed, suspended
// or disconnected workspace takes effect everywhere within the TTL (30s as
// wired in internal/app).
type Routes struct {
	store       *store.Store
	ttl, negTTL time.Duration
	now         func() time.Time

	mu    sync.RWMutex
	cache map[string]routeEntry
}

type routeEntry struct {
	route   Route
	found   bool
	expires time.Time
}

// NewRoutes caches lookups for ttl (unknown IDs for a third of it).
func NewRoutes(s *store.Store, ttl time.Duration) *Routes {
	return &Routes{store: s, ttl: ttl, negTTL: ttl / 3, now: time.Now, cache: map[string]routeEntry{}}
}

// Lookup finds the route for kind/externalID; found is false when nothing is
// connected there.
func (r *Routes) Lookup(ctx context.Context, kind, externalID string) (Route, bool, error) {
	key := kind + "/" + externalID
	now := r.now()
	r.mu.RLock()
	e, ok := r.cache[key]
	r.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.route, e.found, nil
	}
	var route Route
	found := true
	// Platform scope: the external ID is how the tenant is found.
	err := r.store.WithPlatform(ctx, func(tx *store.Tx) error {
		conn, err := tx.GetChannelByExternalID(ctx, kind, externalID)
		if err != nil {
			return err
		}
		t, err := tx.GetTenant(ctx, conn.TenantID)
		if err != nil {
			return err
		}
		route = Route{TenantID: conn.TenantID, AgentID: conn.AgentID, BotUserID: conn.BotUserID,
			TenantActive: t.Status == store.TenantActive && conn.Status == "active"}
		if t.RateLimitPerMinute != nil {
			route.TenantRatePerMinute = *t.RateLimitPerMinute
		}
		if t.ChannelRatePerMinute != nil {
			route.ChannelRatePerMinute = *t.ChannelRatePerMinute
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		found, err = false, nil
	}
	if err != nil {
		return Route{}, false, fmt.Errorf("webhooks: resolve %s: %w", key, err)
	}
	ttl := r.ttl
	if !found {
		ttl = r.negTTL
	}
	r.mu.Lock()
	if len(r.cache) > 100_000 { // bound memory against floods of unknown IDs
		r.cache = map[string]routeEntry{}
	}
	r.cache[key] = routeEntry{route: route, found: found, expires: now.Add(ttl)}
	r.mu.Unlock()
	return route, found, nil
}
