-- +goose Up
-- The foundation schema. Migrations run as the owner role; the server connects
-- as konstruct_app, which owns nothing, is no superuser and cannot bypass RLS.
-- Every tenant-scoped table has row-level security ENABLEd and FORCEd (so even
-- the owner obeys it), with one policy: a row is visible and writable when its
-- tenant is the transaction's tenant (set_config('app.tenant_id', ..., true)
-- inside store.WithTenant), or when the transaction runs in platform scope
-- (store.WithPlatform, used only for platform-admin pages, sign-in and webhook
-- routing). Outside both, no tenant row is visible.

-- +goose StatementBegin
CREATE FUNCTION app_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION app_is_platform() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('app.platform', true), '') = 'on'
$$;
-- +goose StatementEnd

CREATE TABLE tenants (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                     text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    status                   text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- NULL means "use the platform default" (KONSTRUCT_RATE_LIMIT_*).
    rate_limit_per_minute    integer CHECK (rate_limit_per_minute > 0),
    channel_rate_per_minute  integer CHECK (channel_rate_per_minute > 0),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL only for platform admins, who belong to no tenant.
    tenant_id      uuid REFERENCES tenants (id) ON DELETE CASCADE,
    email          text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    name           text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('platform_admin', 'customer_admin', 'customer_operator')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz,
    disabled_at    timestamptz,
    CHECK ((role = 'platform_admin') = (tenant_id IS NULL)),
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_tenant_idx ON users (tenant_id);

CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE agents (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    role           text NOT NULL DEFAULT '' CHECK (length(role) <= 200),
    persona        text NOT NULL DEFAULT '' CHECK (length(persona) <= 4000),
    system_prompt  text NOT NULL DEFAULT '' CHECK (length(system_prompt) <= 20000),
    -- Ordered fallback chain of provider/model names; empty means the platform default.
    models         text[] NOT NULL DEFAULT '{}' CHECK (cardinality(models) <= 8),
    tools          text[] NOT NULL DEFAULT '{}',
    -- Escalation rules, validated by the application against a JSON schema.
    escalation     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(escalation) = 'object'),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX agents_tenant_idx ON agents (tenant_id, created_at);

CREATE TABLE channel_connections (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id      uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('slack', 'whatsapp')),
    -- Slack team ID or WhatsApp phone-number ID: what inbound webhooks carry.
    external_id   text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 100),
    display_name  text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    bot_user_id   text NOT NULL DEFAULT '',
    -- secrets.Box ciphertext of the bot / access token, bound to tenant and kind.
    secret        bytea NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, external_id),
    UNIQUE (tenant_id, id),
    -- The composite key means a connection can only point at its own tenant's agent.
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE RESTRICT
);
CREATE INDEX channel_connections_agent_idx ON channel_connections (tenant_id, agent_id);

CREATE TABLE conversations (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id          uuid NOT NULL,
    channel           text NOT NULL CHECK (channel IN ('slack', 'whatsapp')),
    -- Channel-native address of the thread, e.g. "T1:C1:1700000000.000100".
    external_key      text NOT NULL CHECK (length(external_key) BETWEEN 1 AND 300),
    workflow_id       text NOT NULL UNIQUE,
    user_ref          text NOT NULL DEFAULT '',
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'escalated', 'closed')),
    turns             integer NOT NULL DEFAULT 0 CHECK (turns >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_activity_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, channel, external_key),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX conversations_activity_idx ON conversations (tenant_id, last_activity_at DESC);

CREATE TABLE messages (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL,
    turn             integer NOT NULL CHECK (turn >= 1),
    role             text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content          text NOT NULL,
    author           text NOT NULL DEFAULT '',
    -- Channel message ID (Slack ts), when known.
    external_id      text NOT NULL DEFAULT '',
    -- Who answered (assistant messages).
    provider         text NOT NULL DEFAULT '',
    model            text NOT NULL DEFAULT '',
    -- Makes recording idempotent when an activity is retried.
    idempotency_key  text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX messages_conversation_idx ON messages (tenant_id, conversation_id, created_at);

-- One row per LLM call: what the cost dashboard and budgets add up.
CREATE TABLE llm_usage (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id         uuid,
    conversation_id  uuid,
    provider         text NOT NULL,
    model            text NOT NULL,
    input_tokens     integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens    integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cost_micro_usd   bigint NOT NULL DEFAULT 0 CHECK (cost_micro_usd >= 0),
    latency_ms       integer NOT NULL DEFAULT 0,
    idempotency_key  text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX llm_usage_tenant_time_idx ON llm_usage (tenant_id, created_at);

-- Outbound messages: the key (workflow ID + turn + part) is recorded before a
-- send and completed after, so a retried send activity never posts twice.
CREATE TABLE outbound_messages (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key              text NOT NULL,
    conversation_id  uuid,
    channel          text NOT NULL,
    external_id      text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    PRIMARY KEY (tenant_id, key)
);

-- The audit trail. No foreign key to tenants: the trail outlives a deleted tenant.
CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid,
    actor        text NOT NULL,
    action       text NOT NULL,
    target_type  text NOT NULL DEFAULT '',
    target_id    text NOT NULL DEFAULT '',
    data         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, created_at);

-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

-- Triggers hold even for the owner; the grants below also withhold the privileges.
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Row-level security, forced, on every tenant-scoped table.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = app_tenant_id() OR app_is_platform())
    WITH CHECK (id = app_tenant_id() OR app_is_platform());

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'api_tokens', 'agents', 'channel_connections',
                             'conversations', 'messages', 'llm_usage', 'outbound_messages',
                             'audit_events']
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

-- The application role gets data privileges only; audit_events is insert-only.
GRANT USAGE ON SCHEMA public TO konstruct_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, api_tokens, agents, channel_connections,
    conversations, messages, llm_usage, outbound_messages TO konstruct_app;
GRANT SELECT, INSERT ON audit_events TO konstruct_app;
GRANT EXECUTE ON FUNCTION app_tenant_id(), app_is_platform() TO konstruct_app;

-- +goose Down
DROP TABLE IF EXISTS audit_events, outbound_messages, llm_usage, messages, conversations,
    channel_connections, agents, api_tokens, users, tenants;
DROP FUNCTION IF EXISTS audit_events_append_only(), app_is_platform(), app_tenant_id();
