-- +goose Up
-- The queryable audit trail: events name the agent, conversation and workflow
-- they belong to, so the audit API and the portal's Activity page can filter
-- on them, and carry an idempotency key so a retried activity records once.

-- Action names are ASCII identifiers ("llm.call"); byte order lets a prefix
-- filter ("llm.") be an index range scan whatever the database's collation.
ALTER TABLE audit_events
    ALTER COLUMN action TYPE text COLLATE "C",
    ADD COLUMN agent_id        uuid,
    ADD COLUMN conversation_id uuid,
    ADD COLUMN workflow_id     text NOT NULL DEFAULT '',
    ADD COLUMN idempotency_key text CHECK (idempotency_key <> '');

-- One event per key and tenant. Per tenant, not global: another tenant's row
-- must never be able to swallow this tenant's event as a "duplicate".
-- NULLS NOT DISTINCT so platform-level events (no tenant) dedupe as well.
CREATE UNIQUE INDEX audit_events_idempotency_key ON audit_events (tenant_id, idempotency_key)
    NULLS NOT DISTINCT WHERE idempotency_key IS NOT NULL;

-- Listing is newest first, keyset-paged on (created_at, id); each filter has
-- an index that yields rows in that order.
DROP INDEX audit_events_tenant_idx;
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, created_at DESC, id DESC);
CREATE INDEX audit_events_action_idx ON audit_events (tenant_id, action, created_at DESC, id DESC);
CREATE INDEX audit_events_agent_idx ON audit_events (tenant_id, agent_id, created_at DESC, id DESC)
    WHERE agent_id IS NOT NULL;
CREATE INDEX audit_events_conversation_idx ON audit_events (tenant_id, conversation_id, created_at DESC, id DESC)
    WHERE conversation_id IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS audit_events_conversation_idx, audit_events_agent_idx, audit_events_action_idx,
    audit_events_tenant_idx, audit_events_idempotency_key;
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, created_at);
ALTER TABLE audit_events
    DROP COLUMN idempotency_key,
    DROP COLUMN workflow_id,
    DROP COLUMN conversation_id,
    DROP COLUMN agent_id,
    ALTER COLUMN action TYPE text COLLATE "default";
