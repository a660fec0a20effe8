package ratelimit_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/ratelimit"
	"github.com/konstruct/konstruct/internal/testkit"
)

func TestAllowCountsPerKey(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.New(testkit.NewRedis(t))
	key, other := "test:"+uuid.NewString(), "test:"+uuid.NewString()

	for i := 0; i < 3; i++ {
		r, err := l.Allow(ctx, key, 3)
		require.NoError(t, err)
		require.True(t, r.Allowed, "event %d", i+1)
	}
	r, err := l.Allow(ctx, key, 3)
	require.NoError(t, err)
	require.False(t, r.Allowed)
	require.Positive(t, r.RetryAfter)
	require.Equal(t, 3, r.Limit)

	r, err = l.Allow(ctx, other, 3)
	require.NoError(t, err)
	require.True(t, r.Allowed, "keys are counted apart")

	require.NoError(t, l.Reset(ctx, key))
	r, err = l.Allow(ctx, key, 3)
	require.NoError(t, err)
	require.True(t, r.Allowed, "reset clears the count")
}
