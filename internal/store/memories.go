package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
)

// Memory kinds.
const (
	MemoryMessage = "message"
	MemorySummary = "summary"
)

// Memory is one long-term memory: a user or assistant message, or the
// summary of a closed conversation (role "system"). Its embedding is written
// after the row, by SetMemoryEmbeddings; until then EmbeddingModel is "".
type Memory struct {
	ID             uuid.UUID
	TenantID       uuid.UUID
	AgentID        uuid.UUID
	EndUserRef     string
	ConversationID uuid.UUID
	Turn           int
	Kind           string // MemoryMessage | MemorySummary
	Role           string // user | assistant | system (summaries)
	Content        string
	EmbeddingModel string // "openai/text-embedding-3-small"; "" until embedded
	Dims           int
	IdempotencyKey string
	CreatedAt      time.Time
}

// AddMemory records a memory, not yet embedded, once per idempotency key. A
// repeated key is a no-op that returns inserted=false.
func (t *Tx) AddMemory(ctx context.Context, m Memory) (inserted bool, err error) {
	tag, err := t.tx.Exec(ctx, `
		INSERT INTO memories (tenant_id, agent_id, end_user_ref, conversation_id, turn, kind, role, content, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (tenant_id, idempotency_key) DO NOTHING`,
		t.scope(m.TenantID), m.AgentID, m.EndUserRef, m.ConversationID, m.Turn, m.Kind, m.Role, m.Content, m.IdempotencyKey)
	if err != nil {
		return false, fmt.Errorf("store: add memory: %w", mapErr(err))
	}
	return tag.RowsAffected() == 1, nil
}

// PendingMemories returns an end user's memories with an agent that have no
// embedding yet and fewer than maxAttempts failed tries: those whose
// idempotency key is in own (the caller's turn just stored them) first, then
// the oldest. With staleAfter > 0, another turn's rows count only once an
// embedding of them failed (MemoryEmbedTried) or they are that old (their
// turn died before embedding them), so concurrent turns of one end user
// embed their own rows instead of all racing, and locking, the same batch.
func (t *Tx) PendingMemories(ctx context.Context, agentID uuid.UUID, endUserRef string, own []string, staleAfter time.Duration,
	limit, maxAttempts int) ([]Memory, error) {
	if own == nil {
		own = []string{}
	}
	rows, err := t.tx.Query(ctx, `
		SELECT id, tenant_id, agent_id, end_user_ref, conversation_id, turn, kind, role, content, idempotency_key, created_at
		FROM memories
		WHERE agent_id = $1 AND end_user_ref = $2 AND embedding IS NULL AND embed_attempts < $4
		  AND ($6::double precision = 0 OR idempotency_key = ANY($5::text[]) OR embed_tried_at IS NOT NULL
		       OR created_at < clock_timestamp() - $6::double precision * interval '1 second')
		ORDER BY idempotency_key = ANY($5::text[]) DESC, created_at, id LIMIT $3`,
		agentID, endUserRef, limit, maxAttempts, own, staleAfter.Seconds())
	if err != nil {
		return nil, fmt.Errorf("store: pending memories: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Memory, error) {
		var m Memory
		err := r.Scan(&m.ID, &m.TenantID, &m.AgentID, &m.EndUserRef, &m.ConversationID, &m.Turn, &m.Kind, &m.Role,
			&m.Content, &m.IdempotencyKey, &m.CreatedAt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending memories: %w", mapErr(err))
	}
	return out, nil
}

// SetMemoryEmbeddings stores vectors (all of model, same dimension) for the
// memories ids, in order. Rows already embedded are left alone, so a retry
// racing another worker changes nothing.
func (t *Tx) SetMemoryEmbeddings(ctx context.Context, model string, ids []uuid.UUID, vecs [][]float32) error {
	if len(ids) != len(vecs) {
		return fmt.Errorf("store: set memory embeddings: %d ids, %d vectors", len(ids), len(vecs))
	}
	if len(ids) == 0 {
		return nil
	}
	texts := make([]string, len(vecs))
	for i, v := range vecs {
		texts[i] = pgvector.NewVector(v).String()
	}
	_, err := t.tx.Exec(ctx, `
		UPDATE memories m SET embedding = n.v::vector, embedding_model = $3, dims = vector_dims(n.v::vector), embedded_at = now()
		FROM unnest($1::uuid[], $2::text[]) AS n(id, v)
		WHERE m.id = n.id AND m.embedding IS NULL`, ids, texts, model)
	if err != nil {
		return fmt.Errorf("store: set memory embeddings: %w", mapErr(err))
	}
	return nil
}

// MemoryEmbedFailed counts an embedding attempt every model refused on
// memories ids (they are given up after a few).
func (t *Tx) MemoryEmbedFailed(ctx context.Context, ids []uuid.UUID) error {
	if _, err := t.tx.Exec(ctx, `UPDATE memories SET embed_attempts = embed_attempts + 1, embed_tried_at = now()
		WHERE id = ANY($1) AND embedding IS NULL`, ids); err != nil {
		return fmt.Errorf("store: memory embed failed: %w", mapErr(err))
	}
	return nil
}

// MemoryEmbedTried marks memories ids whose embedding failed for a reason
// that does not count against them (an outage): any later turn of the end
// user takes them.
func (t *Tx) MemoryEmbedTried(ctx context.Context, ids []uuid.UUID) error {
	if _, err := t.tx.Exec(ctx, `UPDATE memories SET embed_tried_at = now() WHERE id = ANY($1) AND embedding IS NULL`, ids); err != nil {
		return fmt.Errorf("store: memory embed tried: %w", mapErr(err))
	}
	return nil
}

// RecallQuery asks for an end user's memories nearest to a vector.
type RecallQuery struct {
	AgentID    uuid.UUID
	EndUserRef string
	Model      string    // the embedding model of Vector; only its vectors are compared
	Vector     []float32 // its length is the dimension searched
	K          int
	// Memories of ExcludeConversation from turn ExcludeFromTurn on are still
	// in the conversation's window and are not recalled (zero: exclude nothing).
	ExcludeConversation uuid.UUID
	ExcludeFromTurn     int
	// EfSearch is hnsw.ef_search for this query (0: max(100, 4K)). At 100,
	// BenchmarkRecall measured recall@10 1.00 against exact search with p99
	// 6.6 ms (90k vectors of one end user among 145k); 40, pgvector's default,
	// gave 0.91.
	EfSearch int
	// Exact searches without the HNSW index: every matching row is compared,
	// which is exact and, for an end user with few memories, also faster.
	Exact bool
}

// Recalled is a memory found by RecallMemories.
type Recalled struct {
	Memory
	Distance float64 // cosine distance, 0 = same direction
}

// RecallMemories returns the K memories of an end user with an agent nearest
// to q.Vector, nearest first, searching only vectors of the same model and
// dimension. The HNSW index of the dimension is filtered by tenant (RLS and
// the explicit column), agent and end user; pgvector 0.8's iterative index
// scan (relaxed order, re-sorted here) keeps scanning the graph until K rows
// pass the filter, so a filter that matches few rows does not starve the
// result. For an end user with few memories the planner uses the user index
// and sorts them exactly instead.
func (t *Tx) RecallMemories(ctx context.Context, q RecallQuery) ([]Recalled, error) {
	dims := len(q.Vector)
	if dims == 0 || q.K <= 0 || q.Model == "" {
		return nil, fmt.Errorf("store: recall memories: %w: need a vector, a model and K > 0", ErrInvalid)
	}
	ef := q.EfSearch
	if ef <= 0 {
		ef = max(100, 4*q.K)
	}
	// SET LOCAL takes no parameters; ef is an int formatted here.
	if q.Exact {
		if _, err := t.tx.Exec(ctx, `SET LOCAL jit = off`); err != nil { // see below
			return nil, fmt.Errorf("store: recall memories: settings: %w", mapErr(err))
		}
	} else {
		// SET LOCAL takes no parameters; ef is an int formatted here.
		// The planner underestimates how many rows the end-user filter keeps
		// and prefers fetching them all through the user index and sorting
		// (each vector a TOASTed 6 KB read: 0.5 s for 10k rows); without
		// bitmap scans and sorts to fall back on it walks the HNSW graph.
		// The caller chose this path because the end user has many rows.
		// The graph scan's estimated cost is high enough to trigger JIT
		// compilation, which costs far more (~0.6 s) than the query: off.
		settings := `SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off; ` +
			`SET LOCAL hnsw.ef_search = ` + strconv.Itoa(min(ef, 1000))
		if _, err := t.tx.Exec(ctx, settings); err != nil {
			return nil, fmt.Errorf("store: recall memories: settings: %w", mapErr(err))
		}
	}
	// The dimension is a literal in the SQL so that the planner can match the
	// partial index (WHERE dims = 1536) and its expression (the cast). Exact
	// search orders by the uncast column, which no HNSW index matches.
	d := strconv.Itoa(dims)
	order := `embedding::vector(` + d + `) <=> $1::vector(` + d + `)`
	if q.Exact {
		order = `embedding <=> $1::vector`
	}
	sql := `
		WITH hits AS MATERIALIZED (
			SELECT id, tenant_id, agent_id, end_user_ref, conversation_id, turn, kind, role, content,
			       embedding_model, dims, idempotency_key, created_at,
			       ` + order + ` AS distance
			FROM memories
			WHERE tenant_id = $2 AND agent_id = $3 AND end_user_ref = $4
			  AND dims = ` + d + ` AND embedding_model = $5
			  AND NOT (conversation_id = $6 AND turn >= $7)
			ORDER BY ` + order + `
			LIMIT $8
		)
		SELECT * FROM hits ORDER BY distance, id`
	from := q.ExcludeFromTurn
	if from <= 0 {
		from = 1 << 30 // nothing is excluded
	}
	rows, err := t.tx.Query(ctx, sql, pgvector.NewVector(q.Vector).String(), t.tenantID, q.AgentID, q.EndUserRef,
		q.Model, q.ExcludeConversation, from, q.K)
	if err != nil {
		return nil, fmt.Errorf("store: recall memories: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Recalled, error) {
		var m Recalled
		err := r.Scan(&m.ID, &m.TenantID, &m.AgentID, &m.EndUserRef, &m.ConversationID, &m.Turn, &m.Kind, &m.Role,
			&m.Content, &m.EmbeddingModel, &m.Dims, &m.IdempotencyKey, &m.CreatedAt, &m.Distance)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: recall memories: %w", mapErr(err))
	}
	return out, nil
}

// ForgetEndUser deletes every memory (messages and summaries, embedded or
// not) of an end user in this tenant, across agents, and says how many of
// each kind went.
func (t *Tx) ForgetEndUser(ctx context.Context, endUserRef string) (messages, summaries int, err error) {
	err = t.tx.QueryRow(ctx, `
		WITH gone AS (DELETE FROM memories WHERE tenant_id = $1 AND end_user_ref = $2 RETURNING kind)
		SELECT count(*) FILTER (WHERE kind = 'message'), count(*) FILTER (WHERE kind = 'summary') FROM gone`,
		t.tenantID, endUserRef).Scan(&messages, &summaries)
	if err != nil {
		return 0, 0, fmt.Errorf("store: forget end user: %w", mapErr(err))
	}
	return messages, summaries, nil
}

// CountRecallableMemories counts an end user's embedded memories with an
// agent outside the given window (see RecallQuery), up to limit: none means a
// turn costs no embedding call, few mean exact search is cheaper and better
// than the index.
func (t *Tx) CountRecallableMemories(ctx context.Context, agentID uuid.UUID, endUserRef string, excludeConversation uuid.UUID, excludeFromTurn, limit int) (int, error) {
	if excludeFromTurn <= 0 {
		excludeFromTurn = 1 << 30
	}
	var n int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM memories
		WHERE tenant_id = $1 AND agent_id = $2 AND end_user_ref = $3 AND embedding IS NOT NULL
		  AND NOT (conversation_id = $4 AND turn >= $5) LIMIT $6) m`,
		t.tenantID, agentID, endUserRef, excludeConversation, excludeFromTurn, limit).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count recallable memories: %w", mapErr(err))
	}
	return n, nil
}

// HasMemory reports whether a memory with this idempotency key exists (a
// summary already written by an earlier attempt).
func (t *Tx) HasMemory(ctx context.Context, key string) (bool, error) {
	var ok bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM memories WHERE idempotency_key = $1)`, key).Scan(&ok); err != nil {
		return false, fmt.Errorf("store: has memory: %w", mapErr(err))
	}
	return ok, nil
}

// DeleteOlderSummaries removes a conversation's summaries other than keep:
// a conversation reopened and closed again is summarised whole once more.
func (t *Tx) DeleteOlderSummaries(ctx context.Context, conversationID uuid.UUID, keep string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM memories WHERE conversation_id = $1 AND kind = 'summary' AND idempotency_key <> $2`,
		conversationID, keep); err != nil {
		return fmt.Errorf("store: delete older summaries: %w", mapErr(err))
	}
	return nil
}
