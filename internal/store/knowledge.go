package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Document statuses.
const (
	DocQueued   = "queued"
	DocIndexing = "indexing"
	DocReady    = "ready"
	DocFailed   = "failed"
)

// Document is one knowledge-base document. Content (the original bytes) is
// only loaded by GetDocumentContent.
type Document struct {
	ID             uuid.UUID
	TenantID       uuid.UUID
	Title          string
	SourceType     string // markdown | text | html | pdf
	Filename       string
	Content        []byte
	ContentHash    []byte
	SizeBytes      int
	Version        int
	ChunkedVersion int
	Status         string
	Error          string
	ChunksTotal    int
	ChunksDone     int
	WorkflowID     string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	IndexedAt      *time.Time
}

const documentCols = `id, tenant_id, title, source_type, filename, content_hash, octet_length(content), version,
	chunked_version, status, error, chunks_total, chunks_done, workflow_id, created_at, updated_at, indexed_at`

func scanDocument(row pgx.Row, extra ...any) (Document, error) {
	var d Document
	dest := append([]any{&d.ID, &d.TenantID, &d.Title, &d.SourceType, &d.Filename, &d.ContentHash, &d.SizeBytes,
		&d.Version, &d.ChunkedVersion, &d.Status, &d.Error, &d.ChunksTotal, &d.ChunksDone, &d.WorkflowID,
		&d.CreatedAt, &d.UpdatedAt, &d.IndexedAt}, extra...)
	err := row.Scan(dest...)
	return d, mapErr(err)
}

// Upsert outcomes.
const (
	DocCreated   = "created"
	DocReplaced  = "replaced"
	DocUnchanged = "unchanged" // same title and bytes, already ingested or ingesting: nothing to do
)

// UpsertDocument stores a document by title: a new title creates it; an
// existing title with other bytes (or a failed ingestion) replaces it under a
// new version, queued again; the same bytes change nothing. The row is locked
// for the transaction, so two concurrent uploads of one title serialise.
func (t *Tx) UpsertDocument(ctx context.Context, d Document) (Document, string, error) {
	cur, err := scanDocument(t.tx.QueryRow(ctx, `SELECT `+documentCols+` FROM documents WHERE title = $1 FOR UPDATE`, d.Title))
	switch {
	case errors.Is(err, ErrNotFound):
		out, err := scanDocument(t.tx.QueryRow(ctx, `
			INSERT INTO documents (tenant_id, title, source_type, filename, content, content_hash)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant_id, title) DO NOTHING
			RETURNING `+documentCols,
			t.scope(d.TenantID), d.Title, d.SourceType, d.Filename, d.Content, d.ContentHash))
		if errors.Is(err, ErrNotFound) {
			// A concurrent upload inserted the title between our SELECT and INSERT.
			return Document{}, "", fmt.Errorf("store: upsert document: %w", &ConstraintError{Kind: ErrConflict,
				Constraint: "documents_tenant_id_title_key", Err: fmt.Errorf("concurrent upload of %q", d.Title)})
		}
		if err != nil {
			return Document{}, "", fmt.Errorf("store: create document: %w", err)
		}
		return out, DocCreated, nil
	case err != nil:
		return Document{}, "", fmt.Errorf("store: upsert document: %w", err)
	}
	if string(cur.ContentHash) == string(d.ContentHash) && cur.SourceType == d.SourceType && cur.Status != DocFailed {
		return cur, DocUnchanged, nil
	}
	out, err := scanDocument(t.tx.QueryRow(ctx, `
		UPDATE documents SET source_type = $2, filename = $3, content = $4, content_hash = $5, version = version + 1,
			status = 'queued', error = '', chunks_done = 0, chunks_total = 0, updated_at = now(), indexed_at = NULL
		WHERE id = $1 RETURNING `+documentCols, cur.ID, d.SourceType, d.Filename, d.Content, d.ContentHash))
	if err != nil {
		return Document{}, "", fmt.Errorf("store: replace document: %w", err)
	}
	return out, DocReplaced, nil
}

// GetDocument returns a document's record (without its bytes).
func (t *Tx) GetDocument(ctx context.Context, id uuid.UUID) (Document, error) {
	d, err := scanDocument(t.tx.QueryRow(ctx, `SELECT `+documentCols+` FROM documents WHERE id = $1`, id))
	if err != nil {
		return Document{}, fmt.Errorf("store: get document: %w", err)
	}
	return d, nil
}

// GetDocumentContent returns a document with its original bytes.
func (t *Tx) GetDocumentContent(ctx context.Context, id uuid.UUID) (Document, error) {
	var content []byte
	d, err := scanDocument(t.tx.QueryRow(ctx, `SELECT `+documentCols+`, content FROM documents WHERE id = $1`, id), &content)
	if err != nil {
		return Document{}, fmt.Errorf("store: get document content: %w", err)
	}
	d.Content = content
	return d, nil
}

// ListDocuments returns the tenant's documents, most recently changed first.
func (t *Tx) ListDocuments(ctx context.Context) ([]Document, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+documentCols+` FROM documents ORDER BY updated_at DESC, id LIMIT 1000`)
	if err != nil {
		return nil, fmt.Errorf("store: list documents: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Document, error) { return scanDocument(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list documents: %w", err)
	}
	return out, nil
}

// DeleteDocument removes a document and (by cascade) its chunks.
func (t *Tx) DeleteDocument(ctx context.Context, id uuid.UUID) (Document, error) {
	d, err := scanDocument(t.tx.QueryRow(ctx, `DELETE FROM documents WHERE id = $1 RETURNING `+documentCols, id))
	if err != nil {
		return Document{}, fmt.Errorf("store: delete document: %w", err)
	}
	return d, nil
}

// SetDocumentWorkflow records the ingestion workflow of a version.
func (t *Tx) SetDocumentWorkflow(ctx context.Context, id uuid.UUID, version int, workflowID string) error {
	_, err := t.tx.Exec(ctx, `UPDATE documents SET workflow_id = $3 WHERE id = $1 AND version = $2`, id, version, workflowID)
	if err != nil {
		return fmt.Errorf("store: set document workflow: %w", mapErr(err))
	}
	return nil
}

// SetDocumentStatus moves a version to status. It changes nothing (and says
// so) when the document was deleted or replaced by a newer version meanwhile.
func (t *Tx) SetDocumentStatus(ctx context.Context, id uuid.UUID, version int, status, reason string) (bool, error) {
	if len(reason) > 2000 {
		reason = reason[:2000]
	}
	tag, err := t.tx.Exec(ctx, `
		UPDATE documents SET status = $3, error = $4, updated_at = now(),
			indexed_at = CASE WHEN $3 = 'ready' THEN now() ELSE indexed_at END
		WHERE id = $1 AND version = $2`, id, version, status, reason)
	if err != nil {
		return false, fmt.Errorf("store: set document status: %w", mapErr(err))
	}
	return tag.RowsAffected() == 1, nil
}

// NewChunk is a chunk to store for a document version.
type NewChunk struct {
	Ordinal int
	Heading string
	Content string
	Hash    []byte
}

// ChunkProgress is a version's chunk count and how many are embedded.
type ChunkProgress struct {
	Total, Done int
	Reused      int // embeddings copied from the previous version's unchanged chunks
}

// ReplaceChunks stores the chunks of a document version, unless they already
// are (chunked_version), copying the embedding of every chunk whose content
// hash is unchanged from the previous version when it was made by model, and
// deletes the previous version's chunks. It reports false when the document
// is gone or at a newer version.
func (t *Tx) ReplaceChunks(ctx context.Context, docID uuid.UUID, version int, chunks []NewChunk, model string) (ChunkProgress, bool, error) {
	var cur, chunked int
	err := t.tx.QueryRow(ctx, `SELECT version, chunked_version FROM documents WHERE id = $1 FOR UPDATE`, docID).Scan(&cur, &chunked)
	if err != nil {
		if errors.Is(mapErr(err), ErrNotFound) {
			return ChunkProgress{}, false, nil
		}
		return ChunkProgress{}, false, fmt.Errorf("store: replace chunks: %w", mapErr(err))
	}
	if cur != version {
		return ChunkProgress{}, false, nil
	}
	var p ChunkProgress
	if chunked != version {
		ords := make([]int32, len(chunks))
		heads := make([]string, len(chunks))
		texts := make([]string, len(chunks))
		hashes := make([][]byte, len(chunks))
		for i, c := range chunks {
			ords[i], heads[i], texts[i], hashes[i] = int32(c.Ordinal), c.Heading, c.Content, c.Hash
		}
		// Chunks of a half-chunked earlier attempt of this version go first.
		if _, err := t.tx.Exec(ctx, `DELETE FROM chunks WHERE document_id = $1 AND version = $2`, docID, version); err != nil {
			return ChunkProgress{}, false, fmt.Errorf("store: replace chunks: %w", mapErr(err))
		}
		tag, err := t.tx.Exec(ctx, `
			INSERT INTO chunks (tenant_id, document_id, version, ordinal, heading, content, content_hash,
				embedding, embedding_model, dims)
			SELECT d.tenant_id, d.id, $2, n.ordinal, n.heading, n.content, n.hash, o.embedding, o.embedding_model, o.dims
			FROM documents d
			CROSS JOIN unnest($3::int[], $4::text[], $5::text[], $6::bytea[]) AS n(ordinal, heading, content, hash)
			LEFT JOIN LATERAL (
				SELECT c.embedding, c.embedding_model, c.dims FROM chunks c
				WHERE c.document_id = d.id AND c.version <> $2 AND c.content_hash = n.hash
				  AND c.embedding IS NOT NULL AND c.embedding_model = $7
				LIMIT 1) o ON true
			WHERE d.id = $1`, docID, version, ords, heads, texts, hashes, model)
		if err != nil {
			return ChunkProgress{}, false, fmt.Errorf("store: insert chunks: %w", mapErr(err))
		}
		if int(tag.RowsAffected()) != len(chunks) {
			return ChunkProgress{}, false, fmt.Errorf("store: insert chunks: %d of %d inserted", tag.RowsAffected(), len(chunks))
		}
		if _, err := t.tx.Exec(ctx, `DELETE FROM chunks WHERE document_id = $1 AND version <> $2`, docID, version); err != nil {
			return ChunkProgress{}, false, fmt.Errorf("store: delete old chunks: %w", mapErr(err))
		}
	}
	err = t.tx.QueryRow(ctx, `
		UPDATE documents d SET chunked_version = $2, status = 'indexing', error = '', updated_at = now(),
			chunks_total = s.total, chunks_done = s.done
		FROM (SELECT count(*) AS total, count(embedding) AS done FROM chunks WHERE document_id = $1 AND version = $2) s
		WHERE d.id = $1
		RETURNING d.chunks_total, d.chunks_done`, docID, version).Scan(&p.Total, &p.Done)
	if err != nil {
		return ChunkProgress{}, false, fmt.Errorf("store: replace chunks: progress: %w", mapErr(err))
	}
	if chunked != version {
		p.Reused = p.Done
	}
	return p, true, nil
}

// Chunk is a stored chunk (the embedding itself is not loaded).
type Chunk struct {
	ID             uuid.UUID
	DocumentID     uuid.UUID
	Version        int
	Ordinal        int
	Heading        string
	Content        string
	ContentHash    []byte
	EmbeddingModel string
	Dims           int
	Embedded       bool
}

const chunkCols = `id, document_id, version, ordinal, heading, content, content_hash, coalesce(embedding_model, ''),
	coalesce(dims, 0), embedding IS NOT NULL`

func scanChunk(row pgx.Row) (Chunk, error) {
	var c Chunk
	err := row.Scan(&c.ID, &c.DocumentID, &c.Version, &c.Ordinal, &c.Heading, &c.Content, &c.ContentHash,
		&c.EmbeddingModel, &c.Dims, &c.Embedded)
	return c, mapErr(err)
}

// ListChunks returns a document's chunks in order.
func (t *Tx) ListChunks(ctx context.Context, docID uuid.UUID) ([]Chunk, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+chunkCols+` FROM chunks WHERE document_id = $1 ORDER BY version DESC, ordinal`, docID)
	if err != nil {
		return nil, fmt.Errorf("store: list chunks: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Chunk, error) { return scanChunk(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list chunks: %w", err)
	}
	return out, nil
}

// CountChunks counts a document's chunks (all versions).
func (t *Tx) CountChunks(ctx context.Context, docID uuid.UUID) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM chunks WHERE document_id = $1`, docID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count chunks: %w", mapErr(err))
	}
	return n, nil
}

// PendingChunks returns the chunks of a version with ordinal in [from, to)
// that have no embedding yet, in order.
func (t *Tx) PendingChunks(ctx context.Context, docID uuid.UUID, version, from, to int) ([]Chunk, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+chunkCols+` FROM chunks
		WHERE document_id = $1 AND version = $2 AND ordinal >= $3 AND ordinal < $4 AND embedding IS NULL
		ORDER BY ordinal`, docID, version, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: pending chunks: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Chunk, error) { return scanChunk(r) })
	if err != nil {
		return nil, fmt.Errorf("store: pending chunks: %w", err)
	}
	return out, nil
}

// VectorText formats a vector in pgvector's text form, which a `$n::vector`
// parameter accepts; no driver type registration needed.
func VectorText(v []float32) string {
	var b strings.Builder
	b.Grow(len(v) * 10)
	b.WriteByte('[')
	for i, f := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(f), 'g', -1, 32))
	}
	b.WriteByte(']')
	return b.String()
}

// SetEmbeddings stores embeddings of chunks (by ID, in order of vectors) and
// refreshes the document's progress, returning chunks done.
func (t *Tx) SetEmbeddings(ctx context.Context, docID uuid.UUID, version int, ids []uuid.UUID, vectors [][]float32, model string, dims int) (int, error) {
	if len(ids) != len(vectors) {
		return 0, fmt.Errorf("store: set embeddings: %d chunks, %d vectors", len(ids), len(vectors))
	}
	texts := make([]string, len(vectors))
	for i, v := range vectors {
		texts[i] = VectorText(v)
	}
	// Only chunks still without an embedding are set, so the count of rows
	// changed is exactly what chunks_done grows by, even on a retried batch
	// (counting the version's embedded chunks instead would cost a scan of
	// them per batch).
	tag, err := t.tx.Exec(ctx, `
		UPDATE chunks c SET embedding = n.v::vector, embedding_model = $4, dims = $5
		FROM unnest($2::uuid[], $3::text[]) AS n(id, v)
		WHERE c.id = n.id AND c.document_id = $1 AND c.version = $6 AND c.embedding IS NULL`,
		docID, ids, texts, model, dims, version)
	if err != nil {
		return 0, fmt.Errorf("store: set embeddings: %w", mapErr(err))
	}
	var done int
	err = t.tx.QueryRow(ctx, `
		UPDATE documents SET chunks_done = chunks_done + $3, updated_at = now()
		WHERE id = $1 AND version = $2 RETURNING chunks_done`, docID, version, tag.RowsAffected()).Scan(&done)
	if err != nil {
		return 0, fmt.Errorf("store: set embeddings: progress: %w", mapErr(err))
	}
	return done, nil
}

// ChunkHit is a chunk found by a search, with its rank in that search (1 = best).
type ChunkHit struct {
	ChunkID       uuid.UUID
	DocumentID    uuid.UUID
	DocumentTitle string
	Ordinal       int
	Heading       string
	Content       string
	Rank          int
	Score         float64 // cosine similarity, or ts_rank_cd
}

func collectHits(rows pgx.Rows) ([]ChunkHit, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChunkHit, error) {
		var h ChunkHit
		err := r.Scan(&h.ChunkID, &h.DocumentID, &h.DocumentTitle, &h.Ordinal, &h.Heading, &h.Content, &h.Score, &h.Rank)
		return h, err
	})
}

// SearchChunksByVector returns the limit chunks nearest to query by cosine
// distance among those embedded by the same model and dimension. The cast to
// vector(dims) matches the partial HNSW index of that dimension (dims is an
// integer, so formatting it into the SQL cannot inject anything); iterative
// scan keeps filtering from starving the index of results (pgvector 0.8).
func (t *Tx) SearchChunksByVector(ctx context.Context, query []float32, model string, limit int) ([]ChunkHit, error) {
	dims := len(query)
	if dims == 0 {
		return nil, nil
	}
	if _, err := t.tx.Exec(ctx, `SET LOCAL hnsw.iterative_scan = relaxed_order`); err != nil {
		return nil, fmt.Errorf("store: vector search: %w", mapErr(err))
	}
	cast := "::vector(" + strconv.Itoa(dims) + ")"
	rows, err := t.tx.Query(ctx, `
		SELECT id, document_id, title, ordinal, heading, content, 1 - dist, row_number() OVER (ORDER BY dist)::int
		FROM (
			SELECT c.id, c.document_id, d.title, c.ordinal, c.heading, c.content,
				c.embedding`+cast+` <=> $1`+cast+` AS dist
			FROM chunks c JOIN documents d ON d.id = c.document_id AND d.chunked_version = c.version
			WHERE c.dims = $2 AND c.embedding_model = $3
			ORDER BY c.embedding`+cast+` <=> $1`+cast+`
			LIMIT $4) x
		ORDER BY dist`, VectorText(query), dims, model, limit)
	if err != nil {
		return nil, fmt.Errorf("store: vector search: %w", mapErr(err))
	}
	out, err := collectHits(rows)
	if err != nil {
		return nil, fmt.Errorf("store: vector search: %w", mapErr(err))
	}
	return out, nil
}

// SearchChunksByText is Postgres full-text search over chunks, with
// websearch_to_tsquery (quoted phrases, OR, -word), ranked by ts_rank_cd.
// Words are OR-ed (unless the query excludes a word): a question phrased in full ("what is the warranty of the
// Zorblax?") must still find a chunk holding only some of its words, which
// an AND of every word would not; the rank rewards chunks holding more.
func (t *Tx) SearchChunksByText(ctx context.Context, query string, limit int) ([]ChunkHit, error) {
	rows, err := t.tx.Query(ctx, `
		WITH w AS (SELECT websearch_to_tsquery('english', $1) AS w),
		q AS (
			SELECT CASE WHEN querytree(w) = '' THEN NULL
			            -- An exclusion (-word) keeps websearch's AND: "x OR NOT y" would match nearly everything.
			            WHEN strpos(w::text, '!') > 0 THEN w
			            ELSE replace(w::text, ' & ', ' | ')::tsquery END AS q
			FROM w)
		SELECT c.id, c.document_id, d.title, c.ordinal, c.heading, c.content, ts_rank_cd(c.tsv, q.q)::float8 AS score,
			row_number() OVER (ORDER BY ts_rank_cd(c.tsv, q.q) DESC, c.id)::int
		FROM q, chunks c JOIN documents d ON d.id = c.document_id AND d.chunked_version = c.version
		WHERE q.q IS NOT NULL AND c.tsv @@ q.q
		ORDER BY score DESC, c.id
		LIMIT $2`, query, limit)
	if err != nil {
		return nil, fmt.Errorf("store: text search: %w", mapErr(err))
	}
	out, err := collectHits(rows)
	if err != nil {
		return nil, fmt.Errorf("store: text search: %w", mapErr(err))
	}
	return out, nil
}

// Source is a chunk kb_search gave the model in a turn.
type Source struct {
	ConversationID uuid.UUID
	Turn, Call     int
	Rank           int
	ChunkID        *uuid.UUID // nil once its document is deleted
	DocumentID     *uuid.UUID
	DocumentTitle  string
	Ordinal        int
	Score          float64
	CreatedAt      time.Time
}

// AddSources records the chunks of one tool call; a retried call writes
// nothing new (the key is conversation, turn, call, rank).
func (t *Tx) AddSources(ctx context.Context, sources []Source) error {
	for _, s := range sources {
		_, err := t.tx.Exec(ctx, `
			INSERT INTO knowledge_sources (tenant_id, conversation_id, turn, call, rank, chunk_id, document_id,
				document_title, ordinal, score)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT DO NOTHING`, t.scope(uuid.Nil), s.ConversationID, s.Turn, s.Call, s.Rank, s.ChunkID,
			s.DocumentID, s.DocumentTitle, s.Ordinal, s.Score)
		if err != nil {
			return fmt.Errorf("store: add sources: %w", mapErr(err))
		}
	}
	return nil
}

// ListSources returns a conversation's sources by turn, call and rank.
func (t *Tx) ListSources(ctx context.Context, conversationID uuid.UUID) ([]Source, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT conversation_id, turn, call, rank, chunk_id, document_id, document_title, ordinal, score, created_at
		FROM knowledge_sources WHERE conversation_id = $1 ORDER BY turn, call, rank`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("store: list sources: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Source, error) {
		var s Source
		err := r.Scan(&s.ConversationID, &s.Turn, &s.Call, &s.Rank, &s.ChunkID, &s.DocumentID, &s.DocumentTitle,
			&s.Ordinal, &s.Score, &s.CreatedAt)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list sources: %w", mapErr(err))
	}
	return out, nil
}

// Citation is how the source was cited: [Title §n] (knowledge.Cite).
func (s Source) Citation() string { return fmt.Sprintf("[%s §%d]", s.DocumentTitle, s.Ordinal+1) }
