package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

const memModel = "openai/text-embedding-3-small"

// remember adds and embeds one memory with the fake's embedding.
func remember(t *testing.T, ctx context.Context, s *store.Store, sd seeded, user, key string, turn int, content string, dims int) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	require.NoError(t, s.WithTenant(ctx, sd.tenant.ID, func(tx *store.Tx) error {
		ok, err := tx.AddMemory(ctx, store.Memory{AgentID: sd.agent.ID, EndUserRef: user, ConversationID: sd.conversation.ID,
			Turn: turn, Kind: store.MemoryMessage, Role: "user", Content: content, IdempotencyKey: key})
		require.NoError(t, err)
		require.True(t, ok)
		pending, err := tx.PendingMemories(ctx, sd.agent.ID, user, nil, 0, 10, 5)
		require.NoError(t, err)
		require.Len(t, pending, 1)
		id = pending[0].ID
		model := memModel
		if dims != 1536 {
			model = "ollama/nomic-embed-text"
		}
		return tx.SetMemoryEmbeddings(ctx, model, []uuid.UUID{id}, [][]float32{fakellm.Embedding(content, dims)})
	}))
	return id
}

func recall(t *testing.T, ctx context.Context, s *store.Store, sd seeded, q store.RecallQuery) []store.Recalled {
	t.Helper()
	var out []store.Recalled
	require.NoError(t, s.WithTenant(ctx, sd.tenant.ID, func(tx *store.Tx) error {
		var err error
		out, err = tx.RecallMemories(ctx, q)
		return err
	}))
	return out
}

func contents(rs []store.Recalled) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Content)
	}
	return out
}

func TestRecallMemories(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a, b := seed(t, ctx, s, "a"), seed(t, ctx, s, "b")

	remember(t, ctx, s, a, "U1", "k1", 1, "my favourite colour is teal", 1536)
	remember(t, ctx, s, a, "U1", "k2", 2, "I live in Lisbon near the river", 1536)
	remember(t, ctx, s, a, "U1", "k3", 3, "the invoice number is 4471", 1536)
	remember(t, ctx, s, a, "U2", "k4", 1, "my favourite colour is orange", 1536) // another end user
	remember(t, ctx, s, b, "U1", "k5", 1, "my favourite colour is purple", 1536) // another tenant, same user ref
	remember(t, ctx, s, a, "U1", "k6", 4, "my favourite colour is crimson", 768) // another model
	q := fakellm.Embedding("what is my favourite colour?", 1536)

	got := recall(t, ctx, s, a, store.RecallQuery{AgentID: a.agent.ID, EndUserRef: "U1", Model: memModel, Vector: q, K: 2})
	require.Len(t, got, 2)
	require.Equal(t, "my favourite colour is teal", got[0].Content)
	require.Less(t, got[0].Distance, got[1].Distance)
	require.Equal(t, memModel, got[0].EmbeddingModel)
	require.Equal(t, 1536, got[0].Dims)
	for _, r := range recall(t, ctx, s, a, store.RecallQuery{AgentID: a.agent.ID, EndUserRef: "U1", Model: memModel, Vector: q, K: 10}) {
		for _, other := range []string{"orange", "purple", "crimson"} {
			require.NotContains(t, r.Content, other, "another user's, tenant's or model's memory was recalled")
		}
	}

	// What is still in the window (this conversation from turn 1 on) is not recalled.
	got = recall(t, ctx, s, a, store.RecallQuery{AgentID: a.agent.ID, EndUserRef: "U1", Model: memModel, Vector: q, K: 10,
		ExcludeConversation: a.conversation.ID, ExcludeFromTurn: 2})
	require.Equal(t, []string{"my favourite colour is teal"}, contents(got))

	// Tenant B, asking for user U1 of its own, sees only its own row.
	got = recall(t, ctx, s, b, store.RecallQuery{AgentID: a.agent.ID, EndUserRef: "U1", Model: memModel, Vector: q, K: 10})
	require.Empty(t, got, "B asking with A's agent ID")
	got = recall(t, ctx, s, b, store.RecallQuery{AgentID: b.agent.ID, EndUserRef: "U1", Model: memModel, Vector: q, K: 10})
	require.Equal(t, []string{"my favourite colour is purple"}, contents(got))

	// The 768-dimension model has its own space.
	got = recall(t, ctx, s, a, store.RecallQuery{AgentID: a.agent.ID, EndUserRef: "U1", Model: "ollama/nomic-embed-text",
		Vector: fakellm.Embedding("favourite colour", 768), K: 10})
	require.Equal(t, []string{"my favourite colour is crimson"}, contents(got))

	// Exact search agrees here.
	got = recall(t, ctx, s, a, store.RecallQuery{AgentID: a.agent.ID, EndUserRef: "U1", Model: memModel, Vector: q, K: 1, Exact: true})
	require.Equal(t, []string{"my favourite colour is teal"}, contents(got))

	// Forget removes U1's memories of tenant A only.
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.AddMemory(ctx, store.Memory{AgentID: a.agent.ID, EndUserRef: "U1", ConversationID: a.conversation.ID,
			Turn: 4, Kind: store.MemorySummary, Role: "system", Content: "summary: likes teal", IdempotencyKey: "s1"})
		require.NoError(t, err)
		msgs, sums, err := tx.ForgetEndUser(ctx, "U1")
		require.NoError(t, err)
		require.Equal(t, 4, msgs)
		require.Equal(t, 1, sums)
		return nil
	}))
	require.Empty(t, recall(t, ctx, s, a, store.RecallQuery{AgentID: a.agent.ID, EndUserRef: "U1", Model: memModel, Vector: q, K: 10}))
	require.Len(t, recall(t, ctx, s, a, store.RecallQuery{AgentID: a.agent.ID, EndUserRef: "U2", Model: memModel, Vector: q, K: 10}), 1)
	require.Len(t, recall(t, ctx, s, b, store.RecallQuery{AgentID: b.agent.ID, EndUserRef: "U1", Model: memModel, Vector: q, K: 10}), 1)
}

func TestPendingMemories(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "a")

	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		m := store.Memory{AgentID: a.agent.ID, EndUserRef: "U1", ConversationID: a.conversation.ID, Turn: 1,
			Kind: store.MemoryMessage, Role: "user", Content: "hello", IdempotencyKey: "wf:1:mem:user"}
		ok, err := tx.AddMemory(ctx, m)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = tx.AddMemory(ctx, m)
		require.NoError(t, err)
		require.False(t, ok, "a retried activity writes nothing twice")

		pending, err := tx.PendingMemories(ctx, a.agent.ID, "U1", nil, 0, 10, 2)
		require.NoError(t, err)
		require.Len(t, pending, 1)
		ids := []uuid.UUID{pending[0].ID}
		require.NoError(t, tx.MemoryEmbedFailed(ctx, ids))
		pending, err = tx.PendingMemories(ctx, a.agent.ID, "U1", nil, 0, 10, 2)
		require.NoError(t, err)
		require.Len(t, pending, 1, "one failure: still retried")
		require.NoError(t, tx.MemoryEmbedFailed(ctx, ids))
		pending, err = tx.PendingMemories(ctx, a.agent.ID, "U1", nil, 0, 10, 2)
		require.NoError(t, err)
		require.Empty(t, pending, "given up after maxAttempts")

		// A vector of the wrong size for its recorded dims cannot be stored.
		require.Error(t, tx.SetMemoryEmbeddings(ctx, memModel, ids, [][]float32{{1, 2}, {3}}))
		return nil
	}))
}

// The recall query uses the partial HNSW index of its dimension when the
// user has many memories (the planner's choice depends on statistics, so the
// index is forced here to prove the query can use it at all).
func TestRecallQueryCanUseTheHNSWIndex(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "a")
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `SET LOCAL enable_bitmapscan = off`)
		require.NoError(t, err)
		var plan []byte
		v := strings.Repeat("0.1,", 1535) + "0.1"
		err = tx.QueryRowScan(ctx, `EXPLAIN (FORMAT JSON) SELECT id FROM memories
			WHERE tenant_id = $2 AND dims = 1536 AND embedding_model = 'x'
			ORDER BY embedding::vector(1536) <=> $1::vector(1536) LIMIT 10`, []any{"[" + v + "]", a.tenant.ID}, &plan)
		require.NoError(t, err)
		require.Contains(t, string(plan), "memories_embedding_1536_idx")
		return nil
	}))
}

// A turn embeds the rows it stored; another turn's fresh rows are not its
// to take (they are being embedded concurrently), but rows a failure left
// behind are, once stale.
func TestPendingMemoriesOwnFirstOthersOnceStale(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "a")
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		for _, key := range []string{"wf1:1:mem:user", "wf2:1:mem:user"} {
			_, err := tx.AddMemory(ctx, store.Memory{AgentID: a.agent.ID, EndUserRef: "U1", ConversationID: a.conversation.ID, Turn: 1,
				Kind: store.MemoryMessage, Role: "user", Content: key, IdempotencyKey: key})
			require.NoError(t, err)
		}
		pending, err := tx.PendingMemories(ctx, a.agent.ID, "U1", []string{"wf2:1:mem:user"}, time.Minute, 10, 5)
		require.NoError(t, err)
		require.Len(t, pending, 1, "the other turn's fresh row is left to it")
		require.Equal(t, "wf2:1:mem:user", pending[0].IdempotencyKey)

		pending, err = tx.PendingMemories(ctx, a.agent.ID, "U1", []string{"wf2:1:mem:user"}, time.Nanosecond, 10, 5)
		require.NoError(t, err)
		require.Len(t, pending, 2, "a stale row is anyone's")
		require.Equal(t, "wf2:1:mem:user", pending[0].IdempotencyKey, "own rows first")

		// A row whose embedding failed is anyone's at once.
		require.NoError(t, tx.MemoryEmbedTried(ctx, []uuid.UUID{pending[1].ID}))
		pending, err = tx.PendingMemories(ctx, a.agent.ID, "U1", nil, time.Hour, 10, 5)
		require.NoError(t, err)
		require.Len(t, pending, 1)
		require.Equal(t, "wf1:1:mem:user", pending[0].IdempotencyKey)
		return nil
	}))
}
