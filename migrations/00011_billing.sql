-- +goose Up
-- Billing: plans and their limits, each tenant's Stripe subscription, the
-- Stripe events already applied, monthly budgets with their reservations,
-- and the monthly counters the plan's allowances are checked against.
-- Periods are calendar months in UTC (date_trunc('month', ... AT TIME ZONE
-- 'UTC')), for budgets and allowances alike.

-- Plans are defined here, in one place. A paid plan's Stripe price ID is not
-- stored: it comes from KONSTRUCT_STRIPE_PRICE_<ID> (internal/config), so the
-- same database serves Stripe's test and live modes. NULL limits are
-- unlimited. Not tenant-scoped: every tenant reads the same plans.
CREATE TABLE plans (
    id                         text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{0,30}$'),
    name                       text NOT NULL,
    position                   integer NOT NULL UNIQUE,    -- order on the Billing page, cheapest first
    monthly_price_cents        integer NOT NULL DEFAULT 0, -- shown to operators; Stripe's price is what is charged
    max_agents                 integer CHECK (max_agents >= 0),
    max_channels               integer CHECK (max_channels >= 0),
    messages_per_month         integer CHECK (messages_per_month >= 0),
    byo_keys                   boolean NOT NULL DEFAULT false,
    platform_tokens_per_month  bigint CHECK (platform_tokens_per_month >= 0),
    paid                       boolean NOT NULL -- false: the free plan, no Stripe subscription
);
INSERT INTO plans (id, name, position, monthly_price_cents, max_agents, max_channels, messages_per_month, byo_keys,
                   platform_tokens_per_month, paid) VALUES
    ('free',     'Free',     0,     0,  1,    1,    500,     false,     200000, false),
    ('starter',  'Starter',  1,  4900,  3,    3,   5000,     true,     2000000, true),
    ('pro',      'Pro',      2, 19900, 20,   20,  50000,     true,    20000000, true);

-- One row per tenant that has ever started a checkout or been named by a
-- Stripe event; a tenant without one is on the free plan. plan_id is the plan
-- subscribed to; which limits apply also depends on status (billing.Effective).
CREATE TABLE billing_accounts (
    tenant_id               uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    plan_id                 text NOT NULL DEFAULT 'free' REFERENCES plans (id),
    status                  text NOT NULL DEFAULT 'none' CHECK (status IN ('none', 'incomplete', 'incomplete_expired',
                                'trialing', 'active', 'past_due', 'unpaid', 'canceled', 'paused')),
    stripe_customer_id      text UNIQUE CHECK (length(stripe_customer_id) BETWEEN 1 AND 255),
    stripe_subscription_id  text CHECK (length(stripe_subscription_id) BETWEEN 1 AND 255),
    current_period_end      timestamptz,
    cancel_at_period_end    boolean NOT NULL DEFAULT false,
    trial_end               timestamptz,
    -- When the subscription became past_due (Stripe's event time): the grace
    -- period (KONSTRUCT_BILLING_GRACE_PERIOD) runs from here.
    past_due_since          timestamptz,
    -- The `created` of the newest subscription event applied: an older event,
    -- delivered late, never overwrites newer state.
    last_event_created      timestamptz,
    last_payment_failed_at  timestamptz,
    last_paid_at            timestamptz,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Stripe events applied, recorded in the transaction that applies them, so a
-- redelivered event changes nothing.
CREATE TABLE stripe_events (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_id     text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    type         text NOT NULL,
    created      timestamptz NOT NULL,
    outcome      text NOT NULL, -- applied | stale (older than the state) | ignored
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);

-- Monthly budgets in micro-USD: the tenant's (agent_id NULL) and optionally
-- one per agent.
CREATE TABLE budgets (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id         uuid,
    limit_micro_usd  bigint NOT NULL CHECK (limit_micro_usd > 0),
    hard_stop        boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (tenant_id, agent_id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

-- A budget's month: what was spent (kept by the llm_usage trigger below, so
-- every recorded call counts exactly once, embeddings and summaries too), what
-- calls in flight have reserved, and which alerts went out.
CREATE TABLE budget_periods (
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    budget_id          uuid NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    period             date NOT NULL,
    spent_micro_usd    bigint NOT NULL DEFAULT 0,
    reserved_micro_usd bigint NOT NULL DEFAULT 0 CHECK (reserved_micro_usd >= 0),
    alerted_80_at      timestamptz,
    alerted_100_at     timestamptz,
    PRIMARY KEY (budget_id, period)
);

-- A model call's reservation, keyed like its usage row
-- (<workflowID>:<turn>:llm:<call>): a retried activity finds it instead of
-- reserving twice, and settling it releases the amount exactly once.
CREATE TABLE budget_reservations (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 1000),
    period           date NOT NULL,
    budget_ids       uuid[] NOT NULL,
    amount_micro_usd bigint NOT NULL CHECK (amount_micro_usd >= 0),
    status           text NOT NULL DEFAULT 'reserved' CHECK (status IN ('reserved', 'settled', 'released')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    settled_at       timestamptz,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX budget_reservations_open_idx ON budget_reservations (tenant_id, created_at) WHERE status = 'reserved';

-- What a tenant used in a month, for the plan's allowances: user messages
-- received and platform-paid tokens. Kept by triggers, so counting is
-- exactly once per recorded row whatever retries the activities make.
CREATE TABLE usage_counters (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period     date NOT NULL,
    messages   bigint NOT NULL DEFAULT 0,
    tokens     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, period)
);

-- Notices and alerts sent once per period: the over-allowance notice per
-- conversation, operator alerts per tenant. key names what was sent (say
-- "allowance:<conversation>" or "alert:paused"); turn_key lets the same
-- turn's retry see its own notice again.
CREATE TABLE billing_notices (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period     date NOT NULL,
    key        text NOT NULL CHECK (length(key) BETWEEN 1 AND 500),
    turn_key   text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, period, key)
);

CREATE INDEX llm_usage_tenant_agent_time_idx ON llm_usage (tenant_id, agent_id, created_at);

-- +goose StatementBegin
CREATE FUNCTION billing_period(ts timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_trunc('month', ts AT TIME ZONE 'UTC')::date
$$;

-- Every usage row adds its cost to the budgets it falls under (the tenant's
-- and its agent's) and its tokens to the month's counter. A budget month
-- without a row yet starts from what the month's usage already sums to.
CREATE FUNCTION billing_usage_added() RETURNS trigger
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

CREATE FUNCTION billing_message_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role = 'user' THEN
        INSERT INTO usage_counters (tenant_id, period, messages)
        VALUES (NEW.tenant_id, billing_period(NEW.created_at), 1)
        ON CONFLICT (tenant_id, period) DO UPDATE SET messages = usage_counters.messages + 1;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER billing_usage_added AFTER INSERT ON llm_usage
    FOR EACH ROW EXECUTE FUNCTION billing_usage_added();
CREATE TRIGGER billing_message_added AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION billing_message_added();

-- Row-level security, forced, with the same policy as every tenant table.
-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['billing_accounts', 'stripe_events', 'budgets', 'budget_periods', 'budget_reservations',
                             'usage_counters', 'billing_notices']
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

GRANT SELECT ON plans TO konstruct_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON billing_accounts, budgets, budget_periods, budget_reservations,
    usage_counters, billing_notices TO konstruct_app;
-- Applied events are a record: never changed or removed by the application.
GRANT SELECT, INSERT ON stripe_events TO konstruct_app;

-- +goose Down
DROP TRIGGER IF EXISTS billing_message_added ON messages;
DROP TRIGGER IF EXISTS billing_usage_added ON llm_usage;
DROP FUNCTION IF EXISTS billing_message_added();
DROP FUNCTION IF EXISTS billing_usage_added();
DROP FUNCTION IF EXISTS billing_period(timestamptz);
DROP INDEX IF EXISTS llm_usage_tenant_agent_time_idx;
DROP TABLE IF EXISTS billing_notices, usage_counters, budget_reservations, budget_periods, budgets, stripe_events,
    billing_accounts, plans;
