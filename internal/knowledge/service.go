package knowledge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
)

// DefaultMaxBytes bounds one document's original bytes when the service is
// given no limit (KONSTRUCT_MAX_UPLOAD_BYTES sets it; the database's CHECK
// allows 16 MiB).
const DefaultMaxBytes = 8 << 20

// MaxTitle is the longest title, in characters.
const MaxTitle = 300

// Ingester starts the ingestion workflow of a document version. Starting the
// same version twice starts one workflow (its ID is derived from the
// version), so a double submit is harmless; a finished run is started anew,
// which is what a retry is.
type Ingester interface {
	StartIngest(ctx context.Context, tenantID, documentID uuid.UUID, version int) (workflowID string, err error)
}

// Service holds the knowledge-base operations the REST API, the portal and
// the kb_search tool share.
type Service struct {
	Store    *store.Store
	Ingester Ingester
	Embedder Embedder
	MaxBytes int64 // 0: DefaultMaxBytes
	Logger   *slog.Logger
}

// Upload is a document as submitted.
type Upload struct {
	Title       string
	Filename    string
	ContentType string
	Data        []byte
}

func (s *Service) maxBytes() int64 {
	if s.MaxBytes > 0 {
		return s.MaxBytes
	}
	return DefaultMaxBytes
}

// ReadUpload reads an uploaded file, bounded by the size limit.
func (s *Service) ReadUpload(r io.Reader) ([]byte, error) {
	b, err := readAll(r, s.maxBytes())
	if errors.Is(err, ErrTooLarge) {
		return nil, s.tooLarge()
	}
	return b, err
}

func (s *Service) tooLarge() error {
	return apperr.New(http.StatusRequestEntityTooLarge, "document_too_large",
		fmt.Sprintf("a document may be at most %d bytes", s.maxBytes()))
}

func actor(p authz.Principal) string { return "user:" + p.UserID.String() }

// Add stores a document (or replaces the one with the same title) and starts
// its ingestion. It answers with the document as stored: status queued, or
// failed with the reason when ingestion could not be started (the document
// is kept and can be retried). The bytes are extracted once here, so an
// unreadable file is refused at upload with a clear error instead of
// failing later in the workflow.
func (s *Service) Add(ctx context.Context, p authz.Principal, tenantID uuid.UUID, in Upload) (store.Document, string, error) {
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" {
		in.Title = strings.TrimSpace(strings.TrimSuffix(in.Filename, extOf(in.Filename)))
	}
	switch {
	case in.Title == "":
		return store.Document{}, "", apperr.Invalid("title", "give the document a title")
	case utf8.RuneCountInString(in.Title) > MaxTitle:
		return store.Document{}, "", apperr.Invalid("title", fmt.Sprintf("the title may be at most %d characters", MaxTitle))
	case len(in.Data) == 0:
		return store.Document{}, "", apperr.Invalid("file", "the document is empty")
	case int64(len(in.Data)) > s.maxBytes():
		return store.Document{}, "", s.tooLarge()
	}
	typ, err := DetectType(in.Filename, in.ContentType, in.Data)
	if err != nil {
		return store.Document{}, "", apperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type", err.Error()).Wrap(err)
	}
	text, err := Extract(typ, in.Data)
	if err != nil {
		return store.Document{}, "", apperr.Invalid("file", strings.TrimPrefix(err.Error(), "knowledge: extract: ")).Wrap(err)
	}
	if len(Chunk(text)) == 0 {
		return store.Document{}, "", apperr.Invalid("file", "the document has no text to index")
	}
	sum := sha256.Sum256(in.Data)
	var doc store.Document
	var outcome string
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		doc, outcome, err = tx.UpsertDocument(ctx, store.Document{Title: in.Title, SourceType: typ,
			Filename: in.Filename, Content: in.Data, ContentHash: sum[:]})
		if err != nil || outcome == store.DocUnchanged {
			return err
		}
		action := store.AuditKnowledgeCreate
		if outcome == store.DocReplaced {
			action = store.AuditKnowledgeReplace
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: action, TargetType: "document",
			TargetID: doc.ID.String(), Data: map[string]any{"title": doc.Title, "version": doc.Version,
				"source_type": typ, "bytes": len(in.Data)}})
	})
	if errors.Is(err, store.ErrConflict) {
		return store.Document{}, "", apperr.Conflict("a document with this title is being uploaded right now; try again").Wrap(err)
	}
	if err != nil {
		return store.Document{}, "", fmt.Errorf("knowledge: add: %w", err)
	}
	if outcome == store.DocUnchanged {
		return doc, outcome, nil
	}
	doc, err = s.start(ctx, tenantID, doc)
	return doc, outcome, err
}

// start starts a version's ingestion. A failure to start (Temporal down) is
// recorded on the document, which can then be retried: nothing is lost and
// nothing sits in "queued" with nobody working on it.
func (s *Service) start(ctx context.Context, tenantID uuid.UUID, doc store.Document) (store.Document, error) {
	// Bounded, so an unreachable Temporal answers the upload (failed, retry
	// later) instead of holding it open while the client keeps retrying.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	wfID, err := s.Ingester.StartIngest(sctx, tenantID, doc.ID, doc.Version)
	cancel()
	err2 := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err != nil {
			if s.Logger != nil {
				s.Logger.ErrorContext(ctx, "knowledge: could not start ingestion", "document_id", doc.ID, "err", err)
			}
			if _, err := tx.SetDocumentStatus(ctx, doc.ID, doc.Version, store.DocFailed,
				"ingestion could not be started (the workflow service is unavailable); retry"); err != nil {
				return err
			}
		} else if err := tx.SetDocumentWorkflow(ctx, doc.ID, doc.Version, wfID); err != nil {
			return err
		}
		var gerr error
		doc, gerr = tx.GetDocument(ctx, doc.ID)
		return gerr
	})
	if err2 != nil {
		return store.Document{}, fmt.Errorf("knowledge: start ingestion: %w", err2)
	}
	return doc, nil
}

// Retry starts a document's ingestion again. Chunks already embedded are
// kept, so it resumes rather than restarts.
func (s *Service) Retry(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID) (store.Document, error) {
	var doc store.Document
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if doc, err = tx.GetDocument(ctx, id); err != nil {
			return err
		}
		if doc.Status == store.DocReady {
			return nil
		}
		// A failed document is queued again; one still queued or indexing
		// keeps its status (a lost start is restarted, a running workflow found).
		if doc.Status == store.DocFailed {
			if _, err := tx.SetDocumentStatus(ctx, id, doc.Version, store.DocQueued, ""); err != nil {
				return err
			}
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: store.AuditKnowledgeRetry, TargetType: "document",
			TargetID: id.String(), Data: map[string]any{"title": doc.Title, "version": doc.Version, "previous_error": doc.Error}})
	})
	if err != nil {
		return store.Document{}, notFound(err)
	}
	if doc.Status == store.DocReady {
		return doc, nil // nothing to redo
	}
	return s.start(ctx, tenantID, doc)
}

// Delete removes a document and its chunks; kb_search stops returning them
// at once. A running ingestion finds the document gone and stops.
func (s *Service) Delete(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID) error {
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		doc, err := tx.DeleteDocument(ctx, id)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: store.AuditKnowledgeDelete, TargetType: "document",
			TargetID: id.String(), Data: map[string]any{"title": doc.Title, "chunks": doc.ChunksTotal}})
	})
	return notFound(err)
}

// List returns the tenant's documents.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID) ([]store.Document, error) {
	var out []store.Document
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListDocuments(ctx)
		return err
	})
	return out, err
}

// Get returns a document and its chunks.
func (s *Service) Get(ctx context.Context, tenantID, id uuid.UUID) (store.Document, []store.Chunk, error) {
	var doc store.Document
	var chunks []store.Chunk
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if doc, err = tx.GetDocument(ctx, id); err != nil {
			return err
		}
		chunks, err = tx.ListChunks(ctx, id)
		return err
	})
	return doc, chunks, notFound(err)
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("document").Wrap(err)
	}
	return err
}

func extOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[i:]
	}
	return ""
}

// Cite is how a chunk is cited in an answer: [Title §n], n counting from 1.
func Cite(title string, ordinal int) string { return fmt.Sprintf("[%s §%d]", title, ordinal+1) }
