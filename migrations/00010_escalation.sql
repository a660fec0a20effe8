-- +goose Up
-- Human escalation: a conversation handed from its agent to the tenant's
-- support staff, and back. The conversation workflow owns the state machine
-- (ai → waiting_for_human → human → ai); this table is its record for the
-- portal's Escalations queue, the REST API and the Slack handoff thread.
CREATE TABLE escalations (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id       uuid NOT NULL,
    agent_id              uuid NOT NULL,
    workflow_id           text NOT NULL,
    -- "<workflowID>:escalation:<n>": a retried activity creates the row once.
    idempotency_key       text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 400),
    state                 text NOT NULL DEFAULT 'waiting_for_human'
                          CHECK (state IN ('waiting_for_human', 'human', 'resolved', 'handed_back')),
    -- What handed it over: a keyword, the user asking for a person, turns
    -- without resolution, the model's escalate_to_human call, an error of the
    -- model chain, or the tenant's budget.
    trigger               text NOT NULL CHECK (trigger IN ('keyword', 'user_request', 'failed_turns', 'tool', 'error', 'budget')),
    reason                text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    -- The context pack: a summary (by the agent's model, or the last messages
    -- when the model could not write one) and what the agent tried.
    summary               text NOT NULL DEFAULT '' CHECK (length(summary) <= 8000),
    summary_source        text NOT NULL DEFAULT '' CHECK (summary_source IN ('', 'model', 'transcript')),
    context               jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
    -- The end user's channel and reference, for the queue.
    channel               text NOT NULL,
    user_ref              text NOT NULL DEFAULT '',
    -- The handoff message in the support Slack channel; staff reply in its thread.
    slack_team_id         text NOT NULL DEFAULT '',
    slack_channel_id      text NOT NULL DEFAULT '',
    slack_ts              text NOT NULL DEFAULT '',
    -- Why staff could not be told in Slack (bot not in the channel, none set).
    notify_error          text NOT NULL DEFAULT '' CHECK (length(notify_error) <= 1000),
    -- Who took it ("Take it"), who resolved it: a Slack user or a portal user.
    assignee              text NOT NULL DEFAULT '' CHECK (length(assignee) <= 200),
    resolved_by           text NOT NULL DEFAULT '' CHECK (length(resolved_by) <= 200),
    -- SLA: staff are paged again at first_response_due_at, and the
    -- conversation goes back to the agent at hand_back_due_at, unless a
    -- person answered first.
    first_response_due_at timestamptz,
    hand_back_due_at      timestamptz,
    page_count            integer NOT NULL DEFAULT 0 CHECK (page_count >= 0),
    paged_at              timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    claimed_at            timestamptz,
    first_response_at     timestamptz,
    -- Resolved by staff, or handed back when nobody answered in time.
    ended_at              timestamptz,
    UNIQUE (tenant_id, idempotency_key),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE,
    CHECK ((ended_at IS NULL) = (state IN ('waiting_for_human', 'human')))
);
CREATE INDEX escalations_queue_idx ON escalations (tenant_id, state, created_at DESC);
CREATE INDEX escalations_conversation_idx ON escalations (tenant_id, conversation_id, created_at);
-- Staff replies in Slack arrive as thread replies: found by channel and thread.
CREATE INDEX escalations_thread_idx ON escalations (tenant_id, slack_channel_id, slack_ts) WHERE slack_ts <> '';

-- A tenant's support settings: where handoffs are posted in Slack (a channel
-- of one of its connected workspaces; an agent's notify_channel overrides the
-- channel) and its SLA.
CREATE TABLE support_settings (
    tenant_id               uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    slack_team_id           text NOT NULL DEFAULT '' CHECK (length(slack_team_id) <= 100),
    slack_channel_id        text NOT NULL DEFAULT '' CHECK (slack_channel_id ~ '^([CG][A-Z0-9]{2,20})?$'),
    first_response_seconds  integer NOT NULL DEFAULT 900 CHECK (first_response_seconds BETWEEN 5 AND 604800),
    hand_back_seconds       integer NOT NULL DEFAULT 7200 CHECK (hand_back_seconds BETWEEN 5 AND 2592000),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (hand_back_seconds > first_response_seconds)
);

ALTER TABLE escalations ENABLE ROW LEVEL SECURITY;
ALTER TABLE escalations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON escalations
    USING (tenant_id = app_tenant_id() OR app_is_platform())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform());
ALTER TABLE support_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE support_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON support_settings
    USING (tenant_id = app_tenant_id() OR app_is_platform())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform());

GRANT SELECT, INSERT, UPDATE, DELETE ON escalations TO konstruct_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON support_settings TO konstruct_app;

-- Staff replies are messages of the conversation, relayed to the end user.
ALTER TABLE messages DROP CONSTRAINT messages_role_check,
    ADD CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant', 'system', 'tool', 'staff'));

-- Staff actions (a reply or resolve from the portal or REST) reach the
-- conversation workflow through the inbox, like webhook events: durably
-- recorded, then handed over in order with the conversation's messages.
ALTER TABLE inbox DROP CONSTRAINT inbox_source_check,
    ADD CONSTRAINT inbox_source_check CHECK (source IN ('slack', 'whatsapp', 'stripe', 'escalation'));

-- +goose Down
DELETE FROM inbox WHERE source = 'escalation';
ALTER TABLE inbox DROP CONSTRAINT inbox_source_check,
    ADD CONSTRAINT inbox_source_check CHECK (source IN ('slack', 'whatsapp', 'stripe'));
DELETE FROM messages WHERE role = 'staff';
ALTER TABLE messages DROP CONSTRAINT messages_role_check,
    ADD CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant', 'system', 'tool'));
DROP TABLE IF EXISTS support_settings, escalations;
