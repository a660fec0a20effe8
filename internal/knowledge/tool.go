package knowledge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
)

// ToolResult is one chunk as kb_search hands it to the model.
type ToolResult struct {
	ChunkID       string  `json:"chunk_id"`
	DocumentTitle string  `json:"document_title"`
	Citation      string  `json:"citation"` // cite it as this: [Title §n]
	Content       string  `json:"content"`
	Score         float64 `json:"score"`
}

// SearchTool is the built-in kb_search tool over svc. It searches the
// calling tenant's knowledge base (the tenant comes from the Invocation,
// never from the model) with the agent's kb_top_k, returns the chunks as a
// JSON list for the model, keeps them in the Result's Data, and records them
// as the turn's sources, keyed by the call so a retried activity records
// nothing twice. It changes no outside state, so it may be retried freely.
func SearchTool(svc *Service) *tools.Tool {
	return &tools.Tool{
		Name:  agents.KBSearchTool,
		Title: "Knowledge base search",
		Description: "Searches this organisation's knowledge base (its uploaded documents) and returns the most relevant " +
			"passages, each with its document title, chunk ID and a citation label [Title §n] to cite it by.",
		Parameters: json.RawMessage(`{
			"type": "object",
			"additionalProperties": false,
			"required": ["query"],
			"properties": {
				"query": {"type": "string", "minLength": 1, "maxLength": 2000,
					"description": "What to look for, in words likely to appear in the documents"}
			}
		}`),
		Timeout:     20 * time.Second,
		MaxAttempts: 3,
		Run: func(ctx context.Context, inv tools.Invocation, raw json.RawMessage) (tools.Result, error) {
			var args struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(raw, &args); err != nil {
				return tools.Result{}, fmt.Errorf("kb_search: %w", err)
			}
			if inv.TenantID == uuid.Nil {
				return tools.Result{}, errors.New("kb_search: no tenant in the invocation")
			}
			k, err := svc.topK(ctx, inv.TenantID, inv.AgentID)
			if err != nil {
				return tools.Result{}, err
			}
			res, err := svc.Search(ctx, inv.TenantID, args.Query, k)
			if err != nil {
				return tools.Result{}, err
			}
			if err := svc.recordSources(ctx, inv, res.Hits); err != nil {
				return tools.Result{}, err
			}
			out := make([]ToolResult, 0, len(res.Hits))
			for _, h := range res.Hits {
				out = append(out, ToolResult{ChunkID: h.ChunkID.String(), DocumentTitle: h.DocumentTitle,
					Citation: h.Citation, Content: ChunkText(h.Heading, h.Content), Score: h.Score})
			}
			if len(out) == 0 {
				return tools.Result{Content: "[] (nothing in the knowledge base matches; say you do not know)", Data: res.Hits}, nil
			}
			b, err := json.Marshal(out)
			if err != nil {
				return tools.Result{}, fmt.Errorf("kb_search: %w", err)
			}
			return tools.Result{Content: string(b), Data: res.Hits}, nil
		},
	}
}

// topK is the agent's kb_top_k (the default when the agent is not known).
func (s *Service) topK(ctx context.Context, tenantID, agentID uuid.UUID) (int, error) {
	if agentID == uuid.Nil {
		return store.DefaultKBTopK, nil
	}
	k := store.DefaultKBTopK
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		a, err := tx.GetAgent(ctx, agentID)
		if err != nil {
			return err
		}
		k = a.KBTopK
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("kb_search: load agent: %w", err)
	}
	return k, nil
}

// recordSources writes the chunks a call returned as the turn's sources.
func (s *Service) recordSources(ctx context.Context, inv tools.Invocation, hits []Hit) error {
	if inv.ConversationID == uuid.Nil || inv.Turn < 1 || len(hits) == 0 {
		return nil // a call outside a conversation (a test, the portal) has no transcript
	}
	src := make([]store.Source, len(hits))
	for i, h := range hits {
		chunkID, docID := h.ChunkID, h.DocumentID
		src[i] = store.Source{ConversationID: inv.ConversationID, Turn: inv.Turn, Call: inv.Call, Rank: i + 1,
			ChunkID: &chunkID, DocumentID: &docID, DocumentTitle: h.DocumentTitle, Ordinal: h.Ordinal, Score: h.Score}
	}
	err := s.Store.WithTenant(ctx, inv.TenantID, func(tx *store.Tx) error { return tx.AddSources(ctx, src) })
	if errors.Is(err, store.ErrReferenced) {
		// The chunk was deleted between search and record (or the
		// conversation was): the model still gets its answer.
		return nil
	}
	if err != nil {
		return fmt.Errorf("kb_search: record sources: %w", err)
	}
	return nil
}

// Sources returns the chunks each turn of a conversation was given.
func (s *Service) Sources(ctx context.Context, tenantID, conversationID uuid.UUID) ([]store.Source, error) {
	var out []store.Source
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListSources(ctx, conversationID)
		return err
	})
	return out, err
}
