package knowledge

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

// Embeddings is one batch of vectors and who made them.
type Embeddings struct {
	Model        string // "provider/model", recorded on each chunk
	Dims         int
	Vectors      [][]float32
	InputTokens  int
	CostMicroUSD int64
}

// Embedder turns texts into vectors. In production it is the LLM pool's
// Embed over the configured embedding chain (KONSTRUCT_EMBEDDING_MODEL).
type Embedder interface {
	Embed(ctx context.Context, inputs []string) (Embeddings, error)
	// Model is the chain's first model: the one chunks are expected to be
	// embedded with, so unchanged chunks keep its embeddings on replace.
	Model() string
}

// RRFK is the reciprocal-rank-fusion constant of Cormack et al. (2009): a
// chunk's fused score is the sum over both searches of 1/(RRFK + rank). 60
// damps the weight of the very first ranks so neither search dominates.
const RRFK = 60

// MaxTopK bounds how many chunks one search returns.
const MaxTopK = 20

// MaxQuery bounds a query's length, in characters.
const MaxQuery = 2000

// Hit is a chunk a search found.
type Hit struct {
	ChunkID       uuid.UUID `json:"chunk_id"`
	DocumentID    uuid.UUID `json:"document_id"`
	DocumentTitle string    `json:"document_title"`
	Ordinal       int       `json:"ordinal"`
	Heading       string    `json:"heading,omitempty"`
	Content       string    `json:"content"`
	Score         float64   `json:"score"`                 // fused RRF score
	VectorRank    int       `json:"vector_rank,omitempty"` // 0: not found by vector search
	TextRank      int       `json:"text_rank,omitempty"`   // 0: not found by full-text search
	Similarity    float64   `json:"similarity,omitempty"`  // cosine similarity, when found by vector search
	Citation      string    `json:"citation"`              // [Title §n]
}

// SearchResult is a search's hits and how it went.
type SearchResult struct {
	Hits []Hit
	// Model embedded the query ("" when embedding failed and only full-text
	// search ran; Warning then says why).
	Model   string
	Warning string
}

// Search runs a hybrid search of the tenant's knowledge base: the query's
// embedding against chunk embeddings of the same model and dimension, and
// Postgres full-text search, each over a wider candidate list than k, fused
// by RRF. A failing embedder degrades to full-text search rather than
// failing: an answer from half the index beats none.
func (s *Service) Search(ctx context.Context, tenantID uuid.UUID, query string, k int) (SearchResult, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		return SearchResult{}, apperr.Invalid("query", "type something to search for")
	}
	if utf8.RuneCountInString(query) > MaxQuery {
		return SearchResult{}, apperr.Invalid("query", fmt.Sprintf("a query may be at most %d characters", MaxQuery))
	}
	if k <= 0 {
		k = store.DefaultKBTopK
	}
	k = min(k, MaxTopK)
	candidates := max(4*k, 20)
	var res SearchResult
	var qv []float32
	if s.Embedder != nil {
		emb, err := s.Embedder.Embed(ctx, []string{query})
		switch {
		case err != nil:
			res.Warning = "the embedding model is unavailable; only full-text search ran"
			if s.Logger != nil {
				s.Logger.WarnContext(ctx, "knowledge: query embedding failed; full-text only", "err", err)
			}
		case len(emb.Vectors) == 1:
			qv, res.Model = emb.Vectors[0], emb.Model
		}
	}
	var vec, text []store.ChunkHit
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if qv != nil {
			if vec, err = tx.SearchChunksByVector(ctx, qv, res.Model, candidates); err != nil {
				return err
			}
		}
		text, err = tx.SearchChunksByText(ctx, query, candidates)
		return err
	})
	if err != nil {
		return SearchResult{}, fmt.Errorf("knowledge: search: %w", err)
	}
	res.Hits = Fuse(vec, text, k)
	return res, nil
}

// Fuse merges two ranked lists by reciprocal rank fusion and keeps the best
// k; ties break by chunk ID so the order is stable.
func Fuse(vec, text []store.ChunkHit, k int) []Hit {
	byID := map[uuid.UUID]*Hit{}
	var order []uuid.UUID
	get := func(h store.ChunkHit) *Hit {
		if x, ok := byID[h.ChunkID]; ok {
			return x
		}
		x := &Hit{ChunkID: h.ChunkID, DocumentID: h.DocumentID, DocumentTitle: h.DocumentTitle, Ordinal: h.Ordinal,
			Heading: h.Heading, Content: h.Content, Citation: Cite(h.DocumentTitle, h.Ordinal)}
		byID[h.ChunkID] = x
		order = append(order, h.ChunkID)
		return x
	}
	for _, h := range vec {
		x := get(h)
		x.VectorRank, x.Similarity = h.Rank, h.Score
		x.Score += 1 / float64(RRFK+h.Rank)
	}
	for _, h := range text {
		x := get(h)
		x.TextRank = h.Rank
		x.Score += 1 / float64(RRFK+h.Rank)
	}
	out := make([]Hit, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ChunkID.String() < out[j].ChunkID.String()
	})
	if len(out) > k {
		out = out[:k]
	}
	return out
}
