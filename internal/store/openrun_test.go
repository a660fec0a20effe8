package store_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

// A retried workflow task re-runs its Open after the lost attempt recorded
// turns: the run still sees the count it saw first; a new run sees them all.
func TestOpenRunNumbersTurnsAsTheRunFirstSawThem(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "a") // its conversation has one message at turn 1
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		turns, err := tx.OpenRun(ctx, a.conversation.ID, "run-1")
		require.NoError(t, err)
		require.Equal(t, 1, turns)
		_, err = tx.AddMessage(ctx, store.Message{ConversationID: a.conversation.ID, Turn: 2, Role: "user", Content: "lost attempt", IdempotencyKey: "m2"})
		require.NoError(t, err)
		turns, err = tx.OpenRun(ctx, a.conversation.ID, "run-1")
		require.NoError(t, err)
		require.Equal(t, 1, turns, "the same run numbers turn 2 again")
		turns, err = tx.OpenRun(ctx, a.conversation.ID, "run-2")
		require.NoError(t, err)
		require.Equal(t, 2, turns, "a new run continues after every recorded turn")
		_, err = tx.OpenRun(ctx, uuid.New(), "run-3")
		require.ErrorIs(t, err, store.ErrNotFound)
		return nil
	}))
}
