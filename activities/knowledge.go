package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

// Knowledge holds the activities of the ingestion workflow. They are regular
// activities (not local): each step is recorded in the workflow history as it
// completes, so a worker dying mid-ingestion loses at most the batch it was
// embedding, and a retry or a new worker resumes from there.
type Knowledge struct {
	Store    *store.Store
	Embedder knowledge.Embedder
	Logger   *slog.Logger
}

// Application error types of ingestion that retrying cannot fix.
const (
	ErrDocumentUnreadable = "DocumentUnreadable"
	ErrEmbeddingRejected  = "EmbeddingRejected"
)

// IngestInput names a document version to ingest.
type IngestInput struct {
	TenantID   string `json:"tenant_id"`
	DocumentID string `json:"document_id"`
	Version    int    `json:"version"`
	BatchSize  int    `json:"batch_size,omitempty"` // chunks per embedding call; 0: DefaultEmbedBatch
}

// DefaultEmbedBatch is how many chunks one embedding call carries: OpenAI
// accepts up to 2048 inputs, but a smaller batch keeps a retry cheap and the
// portal's progress bar moving.
const DefaultEmbedBatch = 32

// PrepareOutput is a version's chunks after extraction and chunking.
type PrepareOutput struct {
	Gone   bool `json:"gone,omitempty"` // deleted or superseded by a newer version: stop
	Total  int  `json:"total"`
	Done   int  `json:"done"`   // embedded already (unchanged chunks, or an earlier run)
	Reused int  `json:"reused"` // embeddings copied from the previous version
}

func (a *Knowledge) ids(in IngestInput) (uuid.UUID, uuid.UUID, error) {
	return parseIDs(in.TenantID, in.DocumentID)
}

// Prepare extracts the document's text, chunks it and stores the chunks of
// this version, reusing the embeddings of unchanged chunks. Run again for the
// same version (a retry, a restarted workflow) it keeps the chunks it stored.
func (a *Knowledge) Prepare(ctx context.Context, in IngestInput) (PrepareOutput, error) {
	tenantID, docID, err := a.ids(in)
	if err != nil {
		return PrepareOutput{}, err
	}
	var doc store.Document
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		doc, err = tx.GetDocumentContent(ctx, docID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return PrepareOutput{Gone: true}, nil
	}
	if err != nil {
		return PrepareOutput{}, fmt.Errorf("activities: knowledge prepare: %w", err)
	}
	if doc.Version != in.Version {
		return PrepareOutput{Gone: true}, nil
	}
	var pieces []knowledge.Piece
	if doc.ChunkedVersion != in.Version {
		text, err := knowledge.Extract(doc.SourceType, doc.Content)
		if err != nil {
			return PrepareOutput{}, temporal.NewNonRetryableApplicationError(
				strings.TrimPrefix(err.Error(), "knowledge: extract: "), ErrDocumentUnreadable, err)
		}
		pieces = knowledge.Chunk(text)
		if len(pieces) == 0 {
			return PrepareOutput{}, temporal.NewNonRetryableApplicationError("the document has no text to index", ErrDocumentUnreadable, nil)
		}
	}
	chunks := make([]store.NewChunk, len(pieces))
	for i, p := range pieces {
		chunks[i] = store.NewChunk{Ordinal: i, Heading: p.Heading, Content: p.Content, Hash: p.Hash}
	}
	var prog store.ChunkProgress
	var ok bool
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		prog, ok, err = tx.ReplaceChunks(ctx, docID, in.Version, chunks, a.Embedder.Model())
		return err
	})
	if err != nil {
		return PrepareOutput{}, fmt.Errorf("activities: knowledge prepare: %w", err)
	}
	if !ok {
		return PrepareOutput{Gone: true}, nil
	}
	return PrepareOutput{Total: prog.Total, Done: prog.Done, Reused: prog.Reused}, nil
}

// EmbedBatchInput embeds batch number Batch (chunks with ordinals
// [Batch*BatchSize, (Batch+1)*BatchSize)) of a version.
type EmbedBatchInput struct {
	IngestInput
	WorkflowID string `json:"workflow_id"`
	Batch      int    `json:"batch"`
}

// EmbedBatchOutput reports the batch and the version's progress.
type EmbedBatchOutput struct {
	Gone     bool   `json:"gone,omitempty"`
	Embedded int    `json:"embedded"` // 0: the batch was already indexed, skipped
	Done     int    `json:"done"`
	Model    string `json:"model,omitempty"`
}

// EmbedBatch embeds the chunks of one batch that have no embedding yet and
// stores them with the document's progress (chunks done), which the portal
// polls. A batch already indexed — by an attempt that died after storing, or
// by reuse of unchanged chunks — is skipped without calling the model. It
// heartbeats while the model works, so a dead worker is noticed in seconds.
func (a *Knowledge) EmbedBatch(ctx context.Context, in EmbedBatchInput) (EmbedBatchOutput, error) {
	tenantID, docID, err := a.ids(in.IngestInput)
	if err != nil {
		return EmbedBatchOutput{}, err
	}
	size := in.BatchSize
	if size <= 0 {
		size = DefaultEmbedBatch
	}
	var pending []store.Chunk
	var doc store.Document
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if doc, err = tx.GetDocument(ctx, docID); err != nil {
			return err
		}
		pending, err = tx.PendingChunks(ctx, docID, in.Version, in.Batch*size, (in.Batch+1)*size)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && doc.Version != in.Version) {
		return EmbedBatchOutput{Gone: true}, nil
	}
	if err != nil {
		return EmbedBatchOutput{}, fmt.Errorf("activities: knowledge embed: %w", err)
	}
	if len(pending) == 0 {
		return EmbedBatchOutput{Done: doc.ChunksDone}, nil
	}
	inputs := make([]string, len(pending))
	ids := make([]uuid.UUID, len(pending))
	for i, c := range pending {
		inputs[i], ids[i] = knowledge.ChunkText(c.Heading, c.Content), c.ID
	}
	stop := heartbeatEvery(ctx, 2*time.Second, in.Batch)
	start := time.Now()
	emb, err := a.Embedder.Embed(ctx, inputs)
	stop()
	if err != nil {
		switch llm.KindOf(err) {
		case llm.KindRequest, llm.KindAuth, llm.KindNotConfigured:
			return EmbedBatchOutput{}, temporal.NewNonRetryableApplicationError(
				"the embedding model refused the document: "+err.Error(), ErrEmbeddingRejected, err)
		}
		return EmbedBatchOutput{}, fmt.Errorf("activities: knowledge embed batch %d: %w", in.Batch, err)
	}
	if len(emb.Vectors) != len(pending) {
		return EmbedBatchOutput{}, fmt.Errorf("activities: knowledge embed batch %d: %d vectors for %d chunks", in.Batch, len(emb.Vectors), len(pending))
	}
	var done int
	key := store.AuditKeyIngestEmbed(in.WorkflowID, in.Batch)
	provider, model, _ := strings.Cut(emb.Model, "/")
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if done, err = tx.SetEmbeddings(ctx, docID, in.Version, ids, emb.Vectors, emb.Model, emb.Dims); err != nil {
			return err
		}
		if err := tx.AddUsage(ctx, store.Usage{Provider: provider, Model: model, InputTokens: emb.InputTokens,
			CostMicroUSD: emb.CostMicroUSD, LatencyMS: int(time.Since(start).Milliseconds()), IdempotencyKey: key}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "system", Action: store.AuditEmbeddingCall,
			TargetType: "document", TargetID: docID.String(), WorkflowID: in.WorkflowID, IdempotencyKey: key,
			Data: map[string]any{"model": emb.Model, "dims": emb.Dims, "inputs": len(inputs), "batch": in.Batch,
				"input_tokens": emb.InputTokens, "cost_micro_usd": emb.CostMicroUSD}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return EmbedBatchOutput{Gone: true}, nil // deleted while embedding
	}
	if err != nil {
		return EmbedBatchOutput{}, fmt.Errorf("activities: knowledge embed batch %d: store: %w", in.Batch, err)
	}
	return EmbedBatchOutput{Embedded: len(pending), Done: done, Model: emb.Model}, nil
}

// heartbeatEvery heartbeats until stop is called (no-op outside an activity,
// as in benchmarks calling the method directly).
func heartbeatEvery(ctx context.Context, d time.Duration, details any) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	activity.RecordHeartbeat(ctx, details)
	t := time.NewTicker(d)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				activity.RecordHeartbeat(ctx, details)
			case <-quit:
				return
			}
		}
	}()
	return func() { t.Stop(); close(quit) }
}

// FinishInput ends a version's ingestion: ready, or failed with the reason.
type FinishInput struct {
	IngestInput
	Failed bool   `json:"failed,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Finish records the outcome on the document (if it is still this version).
func (a *Knowledge) Finish(ctx context.Context, in FinishInput) error {
	tenantID, docID, err := a.ids(in.IngestInput)
	if err != nil {
		return err
	}
	status := store.DocReady
	if in.Failed {
		status = store.DocFailed
	}
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		_, err := tx.SetDocumentStatus(ctx, docID, in.Version, status, in.Reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("activities: knowledge finish: %w", err)
	}
	return nil
}
