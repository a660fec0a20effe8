// Package ratelimit limits events per key per minute in Redis (GCRA through
// go-redis/redis_rate: one round trip, shared by every API process).
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limiter checks and counts events.
type Limiter struct {
	l *redis_rate.Limiter
}

// New returns a limiter on rdb.
func New(rdb *redis.Client) *Limiter { return &Limiter{l: redis_rate.NewLimiter(rdb)} }

// Result says whether an event may proceed and, if not, when to retry.
type Result struct {
	Allowed    bool
	Limit      int // per minute
	Remaining  int
	RetryAfter time.Duration
}

// Allow counts one event for key against perMinute events per minute, with a
// burst of the same size.
func (l *Limiter) Allow(ctx context.Context, key string, perMinute int) (Result, error) {
	res, err := l.l.Allow(ctx, "konstruct:rl:"+key, redis_rate.PerMinute(perMinute))
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: %s: %w", key, err)
	}
	return Result{Allowed: res.Allowed > 0, Limit: perMinute, Remaining: res.Remaining, RetryAfter: res.RetryAfter}, nil
}

// Reset forgets the count for key (after a successful sign-in, say).
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.l.Reset(ctx, "konstruct:rl:"+key); err != nil {
		return fmt.Errorf("ratelimit: reset %s: %w", key, err)
	}
	return nil
}
