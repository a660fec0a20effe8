-- +goose Up
-- The knowledge base: documents a tenant uploads, the chunks they are cut
-- into (full-text indexed and embedded), and which chunks each turn of a
-- conversation was given by kb_search.

-- A document. Its original bytes are kept (bounded by the CHECK below), so a
-- failed ingestion is retried, or re-chunked after a chunker change, without
-- asking for a re-upload. version grows on each replace; the ingestion
-- workflow of a version carries it, and an activity that finds a newer
-- version stops (the newer workflow owns the document). chunked_version says
-- which version the chunks rows belong to, so a restarted workflow does not
-- re-chunk (and lose the embeddings it already paid for).
CREATE TABLE documents (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title            text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    source_type      text NOT NULL CHECK (source_type IN ('markdown', 'text', 'html', 'pdf')),
    filename         text NOT NULL DEFAULT '' CHECK (length(filename) <= 300),
    content          bytea NOT NULL CHECK (octet_length(content) BETWEEN 1 AND 16777216),
    content_hash     bytea NOT NULL CHECK (length(content_hash) = 32),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    chunked_version  integer NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'indexing', 'ready', 'failed')),
    error            text NOT NULL DEFAULT '' CHECK (length(error) <= 2000),
    chunks_total     integer NOT NULL DEFAULT 0 CHECK (chunks_total >= 0),
    chunks_done      integer NOT NULL DEFAULT 0 CHECK (chunks_done >= 0),
    workflow_id      text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    indexed_at       timestamptz,
    UNIQUE (tenant_id, title),
    UNIQUE (tenant_id, id)
);
CREATE INDEX documents_tenant_idx ON documents (tenant_id, updated_at DESC);

-- A chunk of a document's current version. tsv is generated, so full-text
-- search can never disagree with the content. The embedding column has no
-- fixed dimension (CONTRACTS.md B): the model and dimension are recorded per
-- row, and each supported dimension has its own partial HNSW index over a
-- cast, which a query uses when it filters on the same dims and casts alike.
CREATE TABLE chunks (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    document_id      uuid NOT NULL,
    version          integer NOT NULL,
    ordinal          integer NOT NULL CHECK (ordinal >= 0),
    heading          text NOT NULL DEFAULT '',
    content          text NOT NULL CHECK (length(content) BETWEEN 1 AND 20000),
    content_hash     bytea NOT NULL CHECK (length(content_hash) = 32),
    tsv              tsvector GENERATED ALWAYS AS (
                         setweight(to_tsvector('english', heading), 'A') || to_tsvector('english', content)) STORED,
    embedding        vector,
    embedding_model  text,
    dims             integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, version, ordinal),
    UNIQUE (tenant_id, id),
    CHECK ((embedding IS NULL) = (dims IS NULL) AND (embedding IS NULL) = (embedding_model IS NULL)),
    CHECK (dims IS NULL OR vector_dims(embedding) = dims),
    FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chunks_document_idx ON chunks (tenant_id, document_id, version, ordinal);
-- Reuse of unchanged chunks' embeddings on replace looks chunks up by hash.
CREATE INDEX chunks_hash_idx ON chunks (document_id, content_hash);
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
CREATE INDEX chunks_embedding_1536_idx ON chunks USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WHERE dims = 1536;
CREATE INDEX chunks_embedding_768_idx ON chunks USING hnsw ((embedding::vector(768)) vector_cosine_ops) WHERE dims = 768;

-- The chunks kb_search gave the model in a turn, for the transcript. Keyed by
-- the tool call (conversation, turn, call) and the chunk's rank, so a retried
-- tool activity writes nothing twice. The title and ordinal are copied: a
-- transcript still says what was cited after the document is deleted, when
-- chunk_id becomes NULL.
CREATE TABLE knowledge_sources (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL,
    turn             integer NOT NULL CHECK (turn >= 1),
    call             integer NOT NULL CHECK (call >= 0),
    rank             integer NOT NULL CHECK (rank >= 1),
    chunk_id         uuid,
    document_id      uuid,
    document_title   text NOT NULL,
    ordinal          integer NOT NULL,
    score            double precision NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id, turn, call, rank),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, chunk_id) REFERENCES chunks (tenant_id, id) ON DELETE SET NULL (chunk_id)
);
CREATE INDEX knowledge_sources_chunk_idx ON knowledge_sources (tenant_id, chunk_id);

-- How many chunks kb_search returns to this agent's model.
ALTER TABLE agents ADD COLUMN kb_top_k integer NOT NULL DEFAULT 5 CHECK (kb_top_k BETWEEN 1 AND 20);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['documents', 'chunks', 'knowledge_sources']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
                            USING (tenant_id = app_tenant_id() OR app_is_platform())
                            WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform())', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

GRANT SELECT, INSERT, UPDATE, DELETE ON documents, chunks, knowledge_sources TO konstruct_app;

-- +goose Down
ALTER TABLE agents DROP COLUMN IF EXISTS kb_top_k;
DROP TABLE IF EXISTS knowledge_sources, chunks, documents;
