-- +goose Up
-- Media: images end users send (Slack file_share, WhatsApp image messages),
-- downloaded once by the FetchMedia activity and kept per tenant, so a
-- retried turn, a model fallback and the audit of what the model saw all use
-- the same bytes. A file is stored once per tenant and channel file ID: the
-- row is the dedupe key, written only after a download succeeded and the
-- bytes passed the type and size checks.
CREATE TABLE media (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id    uuid NOT NULL,
    -- Who sent it (the channel's user ID): forgetting an end user removes it.
    end_user_ref       text NOT NULL DEFAULT '' CHECK (length(end_user_ref) <= 300),
    source             text NOT NULL CHECK (source IN ('slack', 'whatsapp')),
    -- Slack file ID or WhatsApp media ID.
    source_id          text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 255),
    -- Sniffed from the bytes, never taken from the channel's word.
    mime_type          text NOT NULL CHECK (mime_type IN ('image/jpeg', 'image/png', 'image/webp', 'image/gif')),
    size_bytes         integer NOT NULL CHECK (size_bytes BETWEEN 1 AND 20971520),
    sha256             bytea NOT NULL CHECK (length(sha256) = 32),
    data               bytea NOT NULL,
    name               text NOT NULL DEFAULT '' CHECK (length(name) <= 1000),
    caption            text NOT NULL DEFAULT '' CHECK (length(caption) <= 4096),
    -- Written by a vision model for a chain whose first model cannot see,
    -- once, and reused by every later call that needs it.
    description        text CHECK (length(description) <= 20000),
    description_model  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (octet_length(data) = size_bytes),
    CHECK ((description IS NULL) = (description_model IS NULL)),
    UNIQUE (tenant_id, source, source_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
-- Images are compressed already: store them out of line without trying again.
ALTER TABLE media ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX media_end_user_idx ON media (tenant_id, end_user_ref);
CREATE INDEX media_conversation_idx ON media (tenant_id, conversation_id);

ALTER TABLE media ENABLE ROW LEVEL SECURITY;
ALTER TABLE media FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON media
    USING (tenant_id = app_tenant_id() OR app_is_platform())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform());

GRANT SELECT, INSERT, UPDATE, DELETE ON media TO konstruct_app;

-- +goose Down
DROP TABLE IF EXISTS media;
