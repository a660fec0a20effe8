-- +goose Up
-- Long-term memory: every user and assistant message of a conversation, and a
-- summary of each closed conversation, embedded for recall in the end user's
-- later turns and conversations with the same agent.
--
-- A row is written as soon as its message is delivered, with embedding NULL,
-- and embedded afterwards (the reply never waits for an embedding API); a row
-- whose embedding failed stays NULL and is retried on a later turn, so a
-- failed embedding loses nothing. The embedding column has no fixed dimension
-- (CONTRACTS.md B): the model and dimension are recorded per row, each
-- supported dimension has its own partial HNSW index over a cast, and recall
-- filters on the same model, dims and cast so the index applies. Vectors of
-- different models are never compared.
CREATE TABLE memories (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id         uuid NOT NULL,
    -- Who the memory is about: the channel's user ID (Slack user).
    end_user_ref     text NOT NULL CHECK (length(end_user_ref) BETWEEN 1 AND 300),
    conversation_id  uuid NOT NULL,
    -- The turn of the message; for a summary, the last turn it covers.
    turn             integer NOT NULL CHECK (turn >= 1),
    kind             text NOT NULL CHECK (kind IN ('message', 'summary')),
    role             text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content          text NOT NULL CHECK (length(content) BETWEEN 1 AND 100000),
    embedding        vector,
    embedding_model  text,
    dims             integer,
    embedded_at      timestamptz,
    -- Failed embedding attempts, so a text every model rejects stops being retried.
    embed_attempts   integer NOT NULL DEFAULT 0 CHECK (embed_attempts >= 0),
    -- "<workflowID>:<turn>:mem:<role>" or "<workflowID>:<turn>:summary": a
    -- retried activity writes nothing twice.
    idempotency_key  text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key),
    CHECK ((embedding IS NULL) = (dims IS NULL) AND (embedding IS NULL) = (embedding_model IS NULL)),
    CHECK (dims IS NULL OR vector_dims(embedding) = dims),
    CHECK ((kind = 'summary') = (role = 'system')),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
-- Small users (most of them) are recalled exactly through this index; forget
-- deletes through it too.
CREATE INDEX memories_user_idx ON memories (tenant_id, agent_id, end_user_ref, dims, embedding_model);
CREATE INDEX memories_forget_idx ON memories (tenant_id, end_user_ref);
-- Rows still to embed, per end user (retried on their later turns).
CREATE INDEX memories_pending_idx ON memories (tenant_id, agent_id, end_user_ref, created_at) WHERE embedding IS NULL;
CREATE INDEX memories_embedding_1536_idx ON memories USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WHERE dims = 1536;
CREATE INDEX memories_embedding_768_idx ON memories USING hnsw ((embedding::vector(768)) vector_cosine_ops) WHERE dims = 768;

ALTER TABLE memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memories
    USING (tenant_id = app_tenant_id() OR app_is_platform())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform());

GRANT SELECT, INSERT, UPDATE, DELETE ON memories TO konstruct_app;

-- +goose Down
DROP TABLE IF EXISTS memories;
