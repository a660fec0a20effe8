-- +goose Up
-- Tools an operator declares for one agent: each is an HTTPS endpoint the
-- agent's model sees as a function of its own name. The headers (API keys)
-- are sealed with internal/secrets, bound to tenant, agent and tool ID.
CREATE TABLE http_tools (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id       uuid NOT NULL,
    -- The function name the model calls (OpenAI's rule: ^[a-zA-Z0-9_-]{1,64}$).
    name           text NOT NULL CHECK (name ~ '^[a-zA-Z][a-zA-Z0-9_-]{0,63}$'),
    description    text NOT NULL CHECK (length(description) BETWEEN 1 AND 1000),
    method         text NOT NULL CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
    -- {placeholders} are filled from the arguments, path-escaped.
    url_template   text NOT NULL CHECK (length(url_template) BETWEEN 8 AND 2000),
    -- secrets.Box ciphertext of the JSON object of header names to values.
    headers        bytea,
    header_names   text[] NOT NULL DEFAULT '{}',
    parameters     jsonb NOT NULL,
    side_effects   boolean NOT NULL DEFAULT false,
    timeout_ms     integer NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 120000),
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, agent_id, name),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

-- The exactly-once record of a side-effect tool call, keyed
-- "<workflowID>:<turn>:tool:<callIndex>": claimed before the tool runs,
-- completed with its result; a retried activity finding it done returns the
-- stored result instead of calling again.
CREATE TABLE tool_calls (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 400),
    tool             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
    attempts         integer NOT NULL DEFAULT 1,
    content          text NOT NULL DEFAULT '',
    is_error         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    PRIMARY KEY (tenant_id, idempotency_key)
);

ALTER TABLE http_tools ENABLE ROW LEVEL SECURITY;
ALTER TABLE http_tools FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON http_tools
    USING (tenant_id = app_tenant_id() OR app_is_platform())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform());
ALTER TABLE tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE tool_calls FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tool_calls
    USING (tenant_id = app_tenant_id() OR app_is_platform())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform());

GRANT SELECT, INSERT, UPDATE, DELETE ON http_tools TO konstruct_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tool_calls TO konstruct_app;

-- +goose Down
DROP TABLE IF EXISTS tool_calls, http_tools;
