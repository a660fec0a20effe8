// Package memory is the long-term memory of conversations: every user and
// assistant message, and a summary of each closed conversation, embedded
// through the LLM pool and stored with pgvector (store.Memory), then recalled
// for the same end user's later turns — in this conversation once a message
// has left the window, and in their later conversations with the agent.
//
// Embedding never holds up a reply: messages are stored first, unembedded,
// after the reply is delivered, and embedded next; a failed embedding leaves
// the row pending, retried on the end user's next turn. Recall that fails
// (embedding model down) answers without memories rather than not at all.
package memory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

// Config tunes the memory. Zero values take the defaults.
type Config struct {
	Models       []string      // embedding chain (KONSTRUCT_EMBEDDING_MODEL); empty disables memory
	TopK         int           // memories recalled per turn (default 5)
	EmbedTimeout time.Duration // bound on one embedding call after the reply (remember, summary; default 10s)
	// RecallTimeout bounds the query's embedding before the reply (default
	// 2s): a slow embedding API delays a reply by at most this, then the turn
	// answers without long-term memory.
	RecallTimeout    time.Duration
	MaxEmbedAttempts int // a row every model rejects is given up after this many tries (default 5)
	Batch            int // pending rows embedded per call (default 32)
	// StaleAfter: a turn embeds the rows it stored, the end user's rows a
	// failed embedding left behind, and other pending rows once they are this
	// old (default 1m: their turn died before embedding them), so concurrent
	// turns never embed, and lock, the same rows.
	StaleAfter time.Duration
	// ExactBelow: an end user with fewer recallable memories than this is
	// searched exactly, without the HNSW index (default 1000). Exact is as
	// fast there and immune to the approximate graph's blind spots (many
	// identical short messages such as "ok" crowd an HNSW neighbourhood).
	ExactBelow int
}

func (c Config) withDefaults() Config {
	if c.TopK <= 0 {
		c.TopK = 5
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = time.Minute
	}
	if c.EmbedTimeout <= 0 {
		c.EmbedTimeout = 10 * time.Second
	}
	if c.RecallTimeout <= 0 {
		c.RecallTimeout = 2 * time.Second
	}
	if c.MaxEmbedAttempts <= 0 {
		c.MaxEmbedAttempts = 5
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	if c.ExactBelow <= 0 {
		c.ExactBelow = 1000
	}
	return c
}

// embedCall names one embedding call for its audit event.
type embedCall struct {
	TenantID, AgentID, ConversationID uuid.UUID
	WorkflowID                        string
	IdempotencyKey                    string // store.AuditKeyEmbed(...); "" records no event
	Purpose                           string // "recall", "remember" or "summary"
}

// Service recalls and remembers. It is safe for concurrent use.
type Service struct {
	store *store.Store
	llm   *llm.Pool
	cfg   Config
	log   *slog.Logger

	mu     sync.Mutex
	recent map[string]Recall // recall results by turn key, so tool rounds of a turn reuse them
	order  []string
}

// New builds the memory service.
func New(st *store.Store, pool *llm.Pool, cfg Config, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: st, llm: pool, cfg: cfg.withDefaults(), log: logger, recent: map[string]Recall{}}
}

// Enabled reports whether an embedding model is configured.
func (s *Service) Enabled() bool { return s != nil && len(s.cfg.Models) > 0 }

// TopK is the number of memories recalled per turn.
func (s *Service) TopK() int { return s.cfg.TopK }

// Query asks for the memories relevant to a new message.
type Query struct {
	TenantID, AgentID uuid.UUID
	EndUserRef        string
	Text              string // the new user message
	// The conversation's window: its messages from FromTurn on are in the
	// prompt already and are not recalled (0: nothing is excluded).
	ConversationID uuid.UUID
	FromTurn       int
	K              int    // 0: Config.TopK
	WorkflowID     string // for the audit trail
	TurnKey        string // "<workflowID>:<turn>": caches the result for the turn's tool rounds
	EmbedKey       string // audit key of the query's embedding (store.AuditKeyEmbed(workflowID, turn, 0))
}

// Recall is what a turn remembers.
type Recall struct {
	Memories []store.Recalled
	Model    string // the embedding model whose space was searched; "" when nothing was embedded
}

const recentCap = 1024

// Recall embeds the new message and returns the end user's nearest memories
// that are not in the window. An end user without embedded memories costs
// one indexed query and no embedding call; one with few is searched exactly.
func (s *Service) Recall(ctx context.Context, q Query) (Recall, error) {
	if !s.Enabled() || q.EndUserRef == "" || q.Text == "" {
		return Recall{}, nil
	}
	if q.K <= 0 {
		q.K = s.cfg.TopK
	}
	if q.TurnKey != "" {
		s.mu.Lock()
		r, ok := s.recent[q.TurnKey]
		s.mu.Unlock()
		if ok {
			return r, nil
		}
	}
	var n int
	err := s.store.WithTenant(ctx, q.TenantID, func(tx *store.Tx) error {
		var err error
		n, err = tx.CountRecallableMemories(ctx, q.AgentID, q.EndUserRef, q.ConversationID, q.FromTurn, s.cfg.ExactBelow)
		return err
	})
	if err != nil {
		return Recall{}, fmt.Errorf("memory: recall: %w", err)
	}
	var out Recall
	if n > 0 {
		call := embedCall{TenantID: q.TenantID, AgentID: q.AgentID, ConversationID: q.ConversationID,
			WorkflowID: q.WorkflowID, IdempotencyKey: q.EmbedKey, Purpose: "recall"}
		resp, took, err := s.embed(ctx, s.cfg.RecallTimeout, []string{q.Text})
		if err != nil {
			s.auditFailure(ctx, call, 1, took, err)
			return Recall{}, fmt.Errorf("memory: recall: %w", err)
		}
		out.Model = resp.EmbeddingModel()
		err = s.store.WithTenant(ctx, q.TenantID, func(tx *store.Tx) error {
			if err := appendAudit(ctx, tx, call, 1, resp, took, nil); err != nil {
				return err
			}
			var err error
			out.Memories, err = tx.RecallMemories(ctx, store.RecallQuery{AgentID: q.AgentID, EndUserRef: q.EndUserRef,
				Model: out.Model, Vector: resp.Vectors[0], K: q.K, ExcludeConversation: q.ConversationID, ExcludeFromTurn: q.FromTurn,
				Exact: n < s.cfg.ExactBelow})
			return err
		})
		if err != nil {
			return Recall{}, fmt.Errorf("memory: recall: %w", err)
		}
	}
	if q.TurnKey != "" {
		s.mu.Lock()
		if _, ok := s.recent[q.TurnKey]; !ok {
			s.recent[q.TurnKey] = out
			s.order = append(s.order, q.TurnKey)
			if len(s.order) > recentCap {
				delete(s.recent, s.order[0])
				s.order = s.order[1:]
			}
		}
		s.mu.Unlock()
	}
	return out, nil
}

// Remembered says what Remember did.
type Remembered struct {
	Stored   int // new rows
	Embedded int // rows embedded now (this turn's and earlier pending ones)
	Pending  int // rows of the end user still without an embedding
}

// Target names whose memories a Remember call handles.
type Target struct {
	TenantID, AgentID, ConversationID uuid.UUID
	EndUserRef                        string
	WorkflowID                        string
	EmbedKey                          string // audit key of the embedding call (store.AuditKeyEmbed(workflowID, turn, 1))
	Purpose                           string // for the audit event: "remember" (default) or "summary"
}

// Remember stores memories (idempotently, by their keys) and then embeds
// every pending memory of the end user with the agent — this turn's and any
// an earlier failure left behind. Storing must succeed (it is Postgres; the
// error is returned for the caller to retry); embedding may fail, which is
// logged and leaves the rows pending, and is not an error: the caller must
// not fail a delivered turn over it.
func (s *Service) Remember(ctx context.Context, t Target, ms []store.Memory) (Remembered, error) {
	var out Remembered
	if !s.Enabled() || t.EndUserRef == "" {
		return out, nil
	}
	var pending []store.Memory
	var own []string
	err := s.store.WithTenant(ctx, t.TenantID, func(tx *store.Tx) error {
		for _, m := range ms {
			if m.Content == "" {
				continue
			}
			own = append(own, m.IdempotencyKey)
			m.AgentID, m.ConversationID, m.EndUserRef = t.AgentID, t.ConversationID, t.EndUserRef
			ok, err := tx.AddMemory(ctx, m)
			if err != nil {
				return err
			}
			if ok {
				out.Stored++
			}
		}
		var err error
		pending, err = tx.PendingMemories(ctx, t.AgentID, t.EndUserRef, own, s.cfg.StaleAfter, s.cfg.Batch+1, s.cfg.MaxEmbedAttempts)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("memory: remember: %w", err)
	}
	more := len(pending) > s.cfg.Batch
	if more {
		pending = pending[:s.cfg.Batch]
	}
	if len(pending) == 0 {
		return out, nil
	}
	texts := make([]string, len(pending))
	ids := make([]uuid.UUID, len(pending))
	for i, m := range pending {
		texts[i], ids[i] = m.Content, m.ID
	}
	purpose := t.Purpose
	if purpose == "" {
		purpose = "remember"
	}
	call := embedCall{TenantID: t.TenantID, AgentID: t.AgentID, ConversationID: t.ConversationID,
		WorkflowID: t.WorkflowID, IdempotencyKey: t.EmbedKey, Purpose: purpose}
	resp, took, eerr := s.embed(ctx, s.cfg.EmbedTimeout, texts)
	err = s.store.WithTenant(ctx, t.TenantID, func(tx *store.Tx) error {
		if err := appendAudit(ctx, tx, call, len(texts), resp, took, eerr); err != nil {
			return err
		}
		if eerr != nil {
			// A request every model rejects (KindRequest) counts against the
			// rows; an outage does not, so a long one gives nothing up.
			if llm.KindOf(eerr) == llm.KindRequest {
				return tx.MemoryEmbedFailed(ctx, ids)
			}
			return tx.MemoryEmbedTried(ctx, ids)
		}
		return tx.SetMemoryEmbeddings(ctx, resp.EmbeddingModel(), ids, resp.Vectors)
	})
	if err != nil {
		return out, fmt.Errorf("memory: remember: store embeddings: %w", err)
	}
	if eerr != nil {
		s.log.WarnContext(ctx, "memory: embedding failed; the messages stay pending and are retried on a later turn",
			"tenant_id", t.TenantID, "agent_id", t.AgentID, "pending", len(pending), "error", eerr)
		out.Pending = len(pending)
		if more {
			out.Pending++
		}
		return out, nil
	}
	out.Embedded = len(pending)
	if more {
		out.Pending = 1 // at least; the next turn takes the next batch
	}
	return out, nil
}

// embed calls the pool, bounded by timeout.
func (s *Service) embed(ctx context.Context, timeout time.Duration, texts []string) (llm.EmbedResponse, time.Duration, error) {
	ectx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := s.llm.Embed(ectx, s.cfg.Models, texts)
	if err != nil && ctx.Err() == nil && errors.Is(ectx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("memory: no embedding within %s: %w", timeout, err)
	}
	return resp, time.Since(start), err
}

// appendAudit records an embedding.call event in tx, once per key. A failed
// call is keyed apart from the success that a later retry may record.
func appendAudit(ctx context.Context, tx *store.Tx, c embedCall, inputs int, resp llm.EmbedResponse, took time.Duration, callErr error) error {
	if c.IdempotencyKey == "" {
		return nil
	}
	data := map[string]any{"purpose": c.Purpose, "inputs": inputs, "latency_ms": took.Milliseconds()}
	e := store.AuditEvent{Actor: "agent:" + c.AgentID.String(), Action: store.AuditEmbeddingCall, TargetType: "model",
		AgentID: &c.AgentID, WorkflowID: c.WorkflowID, IdempotencyKey: c.IdempotencyKey, Data: data}
	if c.ConversationID != uuid.Nil {
		e.ConversationID = &c.ConversationID
	}
	attempts := resp.Attempts
	if callErr != nil {
		var lerr *llm.Error
		if errors.As(callErr, &lerr) {
			attempts = lerr.Attempts
		}
		data["outcome"], data["error"], data["error_kind"] = "failed", callErr.Error(), llm.KindOf(callErr).String()
		e.IdempotencyKey += ":failed"
	} else {
		e.TargetID = resp.EmbeddingModel()
		data["outcome"], data["provider"], data["model"], data["dimensions"] = "ok", resp.Provider, resp.Model, resp.Dimensions
		data["input_tokens"], data["cost_micro_usd"] = resp.Usage.InputTokens, resp.CostMicroUSD
	}
	list := make([]map[string]any, 0, len(attempts))
	for _, a := range attempts {
		m := map[string]any{"provider": a.Provider, "model": a.Model, "outcome": a.Outcome, "duration_ms": a.Duration.Milliseconds()}
		if a.Err != "" {
			m["error"] = a.Err
		}
		list = append(list, m)
	}
	data["attempts"] = list
	data["fallbacks"] = max(len(attempts)-1, 0)
	return tx.AppendAudit(ctx, e)
}

// auditFailure records a failed embedding call on its own (best effort: the
// caller reports the embedding error whatever happens here).
func (s *Service) auditFailure(ctx context.Context, c embedCall, inputs int, took time.Duration, callErr error) {
	if c.IdempotencyKey == "" || ctx.Err() != nil {
		return
	}
	err := s.store.WithTenant(ctx, c.TenantID, func(tx *store.Tx) error {
		return appendAudit(ctx, tx, c, inputs, llm.EmbedResponse{}, took, callErr)
	})
	if err != nil {
		s.log.WarnContext(ctx, "memory: audit of a failed embedding call not recorded", "error", err)
	}
}
