-- +goose Up
-- The WhatsApp setup wizard (issue 10): when Meta last verified this
-- server's webhook.
--
-- Meta verifies a callback URL with GET /webhooks/whatsapp?hub.mode=subscribe
-- &hub.verify_token=…&hub.challenge=…, which names no app, number or tenant:
-- a successful verification is a fact about the platform, kept here (not in
-- Redis: the wizard's "Check" must still know it after a restart). One row
-- per verify token ever answered, keyed by its SHA-256, so a verification
-- made with an earlier KONSTRUCT_WHATSAPP_VERIFY_TOKEN does not count for the
-- current one. Not tenant-scoped, so no row-level security: there is nothing
-- of a tenant in it.
CREATE TABLE whatsapp_webhook_verifications (
    verify_token_sha256  bytea PRIMARY KEY CHECK (length(verify_token_sha256) = 32),
    first_verified_at    timestamptz NOT NULL DEFAULT now(),
    last_verified_at     timestamptz NOT NULL DEFAULT now(),
    verifications        bigint NOT NULL DEFAULT 1 CHECK (verifications >= 1)
);

GRANT SELECT, INSERT, UPDATE ON whatsapp_webhook_verifications TO konstruct_app;

-- +goose Down
DROP TABLE IF EXISTS whatsapp_webhook_verifications;
