-- +goose Up
-- WhatsApp Business Cloud API.
--
-- A WhatsApp connection is a channel_connections row (kind 'whatsapp',
-- external_id = Meta's phone-number ID) with the WhatsApp Business Account it
-- belongs to and the approved message template sent when a reply falls
-- outside the 24-hour customer-service window. token_error records that the
-- Graph API refused the stored token (code 190): the operator must connect
-- the number again with a new one, which clears it.
ALTER TABLE channel_connections
    ADD COLUMN waba_id           text NOT NULL DEFAULT '' CHECK (length(waba_id) <= 100),
    ADD COLUMN template_name     text NOT NULL DEFAULT '' CHECK (template_name = '' OR (template_name ~ '^[a-z0-9_]+$' AND length(template_name) <= 512)),
    ADD COLUMN template_language text NOT NULL DEFAULT '' CHECK (template_language = '' OR template_language ~ '^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$'),
    ADD COLUMN token_error       text NOT NULL DEFAULT '' CHECK (length(token_error) <= 1000),
    ADD COLUMN token_error_at    timestamptz,
    ADD CONSTRAINT channel_connections_template_pair CHECK ((template_name = '') = (template_language = ''));

-- The business function an agent is scoped to (Meta's policy since
-- 2026-01-15 forbids general-purpose assistants on WhatsApp): a second tier
-- of the system prompt there. An agent without one cannot be connected to a
-- WhatsApp number.
ALTER TABLE agents
    ADD COLUMN business_function text NOT NULL DEFAULT '' CHECK (length(business_function) <= 2000);

-- WhatsApp end users per business number: when they last wrote (the 24-hour
-- customer-service window runs from there), how to address them (Meta may omit
-- the phone number and give only the business-scoped user ID), and whether
-- Meta reported them unreachable (131026) since. user_key is the conversation's
-- end-user key: the business-scoped user ID when Meta sent one, else wa_id.
-- window_closed_at: Meta refused a free-form message as outside the window
-- (131047) after last_inbound_at, whatever our clock said.
CREATE TABLE whatsapp_contacts (
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    phone_number_id    text NOT NULL CHECK (length(phone_number_id) BETWEEN 1 AND 100),
    user_key           text NOT NULL CHECK (length(user_key) BETWEEN 1 AND 200),
    wa_id              text NOT NULL DEFAULT '' CHECK (length(wa_id) <= 100),
    user_id            text NOT NULL DEFAULT '' CHECK (length(user_id) <= 200),
    profile_name       text NOT NULL DEFAULT '' CHECK (length(profile_name) <= 500),
    last_inbound_at    timestamptz NOT NULL,
    window_closed_at   timestamptz,
    unreachable_at     timestamptz,
    unreachable_code   integer,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, phone_number_id, user_key)
);

-- What Meta reported about each WhatsApp message sent (statuses webhooks,
-- keyed by the wamid returned at send time, or by biz_opaque_callback_data =
-- the part's key), and what the outlet did:
--   delivery_status   sent | delivered | read | failed (never moves backwards)
--   sent_as           text | template (the approved template went instead:
--                     outside the window) | skipped (a later part of a message
--                     the template stood in for)
--   post_started_at   the last attempt to post began; refused_at: Meta
--                     answered it with an error, so it was not sent. A retry
--                     that finds neither a status nor a refusal after a post
--                     began waits for Meta's status before posting again.
ALTER TABLE outbound_messages
    ADD COLUMN delivery_status    text NOT NULL DEFAULT '' CHECK (delivery_status IN ('', 'sent', 'delivered', 'read', 'failed')),
    ADD COLUMN delivery_status_at timestamptz,
    ADD COLUMN error_code         integer,
    ADD COLUMN error_title        text NOT NULL DEFAULT '' CHECK (length(error_title) <= 2000),
    ADD COLUMN pricing            jsonb CHECK (pricing IS NULL OR jsonb_typeof(pricing) = 'object'),
    ADD COLUMN sent_as            text NOT NULL DEFAULT '' CHECK (sent_as IN ('', 'text', 'template', 'skipped')),
    ADD COLUMN post_started_at    timestamptz,
    ADD COLUMN refused_at         timestamptz;
-- Statuses find their message by wamid.
CREATE INDEX outbound_messages_external_idx ON outbound_messages (tenant_id, channel, external_id) WHERE external_id <> '';

ALTER TABLE whatsapp_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE whatsapp_contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON whatsapp_contacts
    USING (tenant_id = app_tenant_id() OR app_is_platform())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_platform());

GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_contacts TO konstruct_app;

-- +goose Down
DROP TABLE IF EXISTS whatsapp_contacts;
DROP INDEX IF EXISTS outbound_messages_external_idx;
ALTER TABLE outbound_messages
    DROP COLUMN IF EXISTS delivery_status, DROP COLUMN IF EXISTS delivery_status_at, DROP COLUMN IF EXISTS error_code,
    DROP COLUMN IF EXISTS error_title, DROP COLUMN IF EXISTS pricing, DROP COLUMN IF EXISTS sent_as,
    DROP COLUMN IF EXISTS post_started_at, DROP COLUMN IF EXISTS refused_at;
ALTER TABLE agents DROP COLUMN IF EXISTS business_function;
ALTER TABLE channel_connections
    DROP CONSTRAINT IF EXISTS channel_connections_template_pair,
    DROP COLUMN IF EXISTS waba_id, DROP COLUMN IF EXISTS template_name, DROP COLUMN IF EXISTS template_language,
    DROP COLUMN IF EXISTS token_error, DROP COLUMN IF EXISTS token_error_at;
