-- +goose Up
-- The admin portal: server-side sessions (alexedwards/scs, pgxstore layout)
-- and invitations to join a tenant.

-- Portal sessions. The token column holds the SHA-256 of the cookie value
-- (scs HashTokenInStore), so a copy of this table opens no session. The data
-- names the user; the role and tenant are re-read from users on every request,
-- so a role change or removal applies at once. No tenant_id: the session is
-- looked up before any tenant is known, like a sign-in.
CREATE TABLE sessions (
    token   text PRIMARY KEY,
    data    bytea NOT NULL,
    expiry  timestamptz NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);

-- An invitation to join a tenant with a role. The link carries a random
-- token; only its SHA-256 is stored. A pending invitation is neither
-- accepted nor revoked; it is usable until expires_at.
CREATE TABLE invitations (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email             text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    role              text NOT NULL CHECK (role IN ('customer_admin', 'customer_operator')),
    token_hash        bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    invited_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    inviter_name      text NOT NULL DEFAULT '' CHECK (length(inviter_name) <= 254),
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    sent_at           timestamptz,
    send_count        integer NOT NULL DEFAULT 0 CHECK (send_count >= 0),
    accepted_at       timestamptz,
    accepted_user_id  uuid,
    revoked_at        timestamptz,
    UNIQUE (tenant_id, id),
    CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
-- One pending invitation per address and tenant.
CREATE UNIQUE INDEX invitations_pending_email_key ON invitations (tenant_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invitations_tenant_idx ON invitations (tenant_id, created_at DESC);

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (tenant_id = app_tenant_id() OR app_is_platform())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform());

GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, invitations TO konstruct_app;

-- +goose Down
DROP TABLE IF EXISTS invitations, sessions;
