package app

import (
	"fmt"

	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/workflows"
)

// llmPool is the process's one LLM pool (its metrics register once).
func (a *App) llmPool() *llm.Pool {
	if a.pool == nil {
		a.pool = a.newLLMPool()
	}
	return a.pool
}

// registerKnowledge builds the knowledge base service and registers its
// kb_search tool among the built-in tools, so the Agent Designer offers it
// and the worker runs it. Ingestion workflows go to the conversation task
// queue, where the worker registers them (workers.RegisterKnowledge).
func (a *App) registerKnowledge() error {
	a.Knowledge = &knowledge.Service{
		Store:    a.Store,
		Ingester: workflows.IngestStarter{Client: a.Temporal, TaskQueue: a.Config.TemporalTaskQueue},
		Embedder: knowledge.PoolEmbedder{Pool: a.llmPool(), Chain: a.Config.EmbeddingModels},
		MaxBytes: a.Config.MaxUploadBytes,
		Logger:   a.Logger.With("component", "knowledge"),
	}
	if err := a.Tools.Register(knowledge.SearchTool(a.Knowledge)); err != nil {
		return fmt.Errorf("app: register kb_search: %w", err)
	}
	return nil
}
