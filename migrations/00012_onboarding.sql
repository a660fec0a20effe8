-- +goose Up
-- Operator onboarding (issue 10): the portal's test chat as a channel of its
-- own, a tenant's setup progress, tenants' own LLM keys, and whose key paid
-- for each model call.

-- The test chat in the portal is a real channel: its messages are recorded in
-- the inbox (source 'portal') and run the same conversation workflow as Slack
-- and WhatsApp messages.
ALTER TABLE conversations DROP CONSTRAINT conversations_channel_check,
    ADD CONSTRAINT conversations_channel_check CHECK (channel IN ('slack', 'whatsapp', 'portal'));
ALTER TABLE inbox DROP CONSTRAINT inbox_source_check,
    ADD CONSTRAINT inbox_source_check CHECK (source IN ('slack', 'whatsapp', 'stripe', 'escalation', 'portal'));

-- A tenant's progress through the setup stepper (connect a channel, configure
-- the agent, send a test message), so it resumes where it was left. Whether a
-- test reply came is read from the conversations themselves.
CREATE TABLE onboarding (
    tenant_id        uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- The agent the stepper configures and connects channels to.
    agent_id         uuid,
    -- How the channel step was done: a connected Slack workspace or WhatsApp
    -- number, or 'portal' when the operator chose to try the portal chat first.
    channel          text CHECK (channel IN ('slack', 'whatsapp', 'portal')),
    channel_done_at  timestamptz,
    agent_done_at    timestamptz,
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE SET NULL (agent_id)
);

-- A tenant's own key (or server) for an LLM provider. The key and the URL it
-- is used with are sealed together (secrets.Box: AES-256-GCM, the header names
-- the encryption key that sealed it), bound to the tenant and provider, so
-- neither can be moved to another row nor the key pointed at another server
-- by changing a column. base_url and last4 are copies for display only.
CREATE TABLE tenant_llm_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider     text NOT NULL CHECK (provider IN ('openai', 'anthropic', 'ollama')),
    secret       bytea NOT NULL,
    base_url     text NOT NULL DEFAULT '' CHECK (length(base_url) <= 500),
    last4        text NOT NULL DEFAULT '' CHECK (length(last4) <= 4),
    -- Rises with every rotation: workers cache a tenant's provider client by
    -- tenant, provider and version, so a rotated key is used from the next call.
    version      integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- How many models the provider listed when the key was checked.
    model_count  integer NOT NULL DEFAULT 0 CHECK (model_count >= 0),
    checked_at   timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider)
);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['onboarding', 'tenant_llm_keys']
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

GRANT SELECT, INSERT, UPDATE, DELETE ON onboarding, tenant_llm_keys TO konstruct_app;

-- Whose key paid for a model call: the platform's, or the tenant's own.
ALTER TABLE llm_usage ADD COLUMN key_source text NOT NULL DEFAULT 'platform'
    CHECK (key_source IN ('platform', 'tenant'));

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION billing_usage_added() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p date := billing_period(NEW.created_at);
    b record;
BEGIN
    -- The plan's allowance counts the tokens the platform paid for; a call
    -- on the tenant's own key costs the platform nothing (budgets, which
    -- are the tenant's spending, still count it).
    IF NEW.key_source = 'platform' THEN
        INSERT INTO usage_counters (tenant_id, period, tokens)
        VALUES (NEW.tenant_id, p, NEW.input_tokens + NEW.output_tokens)
        ON CONFLICT (tenant_id, period) DO UPDATE SET tokens = usage_counters.tokens + EXCLUDED.tokens;
    END IF;
    FOR b IN SELECT id, agent_id FROM budgets
             WHERE tenant_id = NEW.tenant_id AND (agent_id IS NULL OR agent_id = NEW.agent_id)
    LOOP
        UPDATE budget_periods SET spent_micro_usd = spent_micro_usd + NEW.cost_micro_usd
        WHERE budget_id = b.id AND period = p;
        IF NOT FOUND THEN
            INSERT INTO budget_periods (tenant_id, budget_id, period, spent_micro_usd)
            SELECT NEW.tenant_id, b.id, p, coalesce(sum(u.cost_micro_usd), 0)
            FROM llm_usage u
            WHERE u.tenant_id = NEW.tenant_id
              AND u.created_at >= (p::timestamp AT TIME ZONE 'UTC')
              AND u.created_at < ((p + interval '1 month')::timestamp AT TIME ZONE 'UTC')
              AND (b.agent_id IS NULL OR u.agent_id = b.agent_id)
            ON CONFLICT (budget_id, period) DO UPDATE
                SET spent_micro_usd = budget_periods.spent_micro_usd + NEW.cost_micro_usd;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION billing_usage_added() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p date := billing_period(NEW.created_at);
    b record;
BEGIN
    INSERT INTO usage_counters (tenant_id, period, tokens)
    VALUES (NEW.tenant_id, p, NEW.input_tokens + NEW.output_tokens)
    ON CONFLICT (tenant_id, period) DO UPDATE SET tokens = usage_counters.tokens + EXCLUDED.tokens;
    FOR b IN SELECT id, agent_id FROM budgets
             WHERE tenant_id = NEW.tenant_id AND (agent_id IS NULL OR agent_id = NEW.agent_id)
    LOOP
        UPDATE budget_periods SET spent_micro_usd = spent_micro_usd + NEW.cost_micro_usd
        WHERE budget_id = b.id AND period = p;
        IF NOT FOUND THEN
            INSERT INTO budget_periods (tenant_id, budget_id, period, spent_micro_usd)
            SELECT NEW.tenant_id, b.id, p, coalesce(sum(u.cost_micro_usd), 0)
            FROM llm_usage u
            WHERE u.tenant_id = NEW.tenant_id
              AND u.created_at >= (p::timestamp AT TIME ZONE 'UTC')
              AND u.created_at < ((p + interval '1 month')::timestamp AT TIME ZONE 'UTC')
              AND (b.agent_id IS NULL OR u.agent_id = b.agent_id)
            ON CONFLICT (budget_id, period) DO UPDATE
                SET spent_micro_usd = budget_periods.spent_micro_usd + NEW.cost_micro_usd;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
ALTER TABLE llm_usage DROP COLUMN IF EXISTS key_source;
DROP TABLE IF EXISTS tenant_llm_keys, onboarding;
DELETE FROM inbox WHERE source = 'portal';
ALTER TABLE inbox DROP CONSTRAINT inbox_source_check,
    ADD CONSTRAINT inbox_source_check CHECK (source IN ('slack', 'whatsapp', 'stripe', 'escalation'));
DELETE FROM conversations WHERE channel = 'portal';
ALTER TABLE conversations DROP CONSTRAINT conversations_channel_check,
    ADD CONSTRAINT conversations_channel_check CHECK (channel IN ('slack', 'whatsapp'));
