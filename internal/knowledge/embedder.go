package knowledge

import (
	"context"
	"fmt"

	"github.com/konstruct/konstruct/internal/llm"
)

// PoolEmbedder embeds with the LLM pool along a chain of embedding models
// (config EmbeddingModels), with the pool's fallback and circuit breakers.
type PoolEmbedder struct {
	Pool  *llm.Pool
	Chain []string
}

// Embed implements Embedder.
func (e PoolEmbedder) Embed(ctx context.Context, inputs []string) (Embeddings, error) {
	resp, err := e.Pool.Embed(ctx, e.Chain, inputs)
	if err != nil {
		return Embeddings{}, fmt.Errorf("knowledge: embed: %w", err)
	}
	dims := resp.Dimensions
	if dims == 0 && len(resp.Vectors) > 0 {
		dims = len(resp.Vectors[0])
	}
	return Embeddings{Model: resp.EmbeddingModel(), Dims: dims, Vectors: resp.Vectors,
		InputTokens: resp.Usage.InputTokens, CostMicroUSD: resp.CostMicroUSD}, nil
}

// Model implements Embedder.
func (e PoolEmbedder) Model() string {
	if len(e.Chain) == 0 {
		return ""
	}
	return e.Chain[0]
}
