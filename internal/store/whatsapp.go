package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// WhatsAppWindow is how long after a user's last message a business may
// answer free-form (Meta's customer-service window); after it, only an
// approved template.
const WhatsAppWindow = 24 * time.Hour

// WhatsAppContact is a WhatsApp end user of one business number.
type WhatsAppContact struct {
	PhoneNumberID string
	UserKey       string // business-scoped user ID when known, else wa_id
	WAID          string // phone number, when Meta gave it
	UserID        string // business-scoped user ID, when Meta gave it
	ProfileName   string
	LastInboundAt time.Time
	// WindowOpen: the user wrote within WhatsAppWindow (by the database's
	// clock) and Meta has not refused a free-form message since.
	WindowOpen      bool
	UnreachableAt   *time.Time
	UnreachableCode *int
}

// RecordWhatsAppInbound is what the webhook writes for one inbound message,
// in one transaction: the user's last message time, which opens the 24-hour
// window, and the event in the inbox (deduped by tenant, source and wamid).
// recorded is false for a repeated delivery of the same message. Like
// RecordInbound it is one pipelined batch — the tenant setting, the upsert
// and the INSERT, which Postgres runs as one implicit transaction (one
// Sync), so the webhook's acknowledgement costs one round trip.
func (s *Store) RecordWhatsAppInbound(ctx context.Context, tenantID uuid.UUID, ev InboxEvent, c WhatsAppContact) (recorded bool, err error) {
	if tenantID == uuid.Nil {
		return false, errors.New("store: record whatsapp inbound: no tenant")
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('app.tenant_id', $1, true)`, tenantID.String())
	b.Queue(touchContactSQL, tenantID, c.PhoneNumberID, c.UserKey, c.WAID, c.UserID, c.ProfileName, c.LastInboundAt)
	b.Queue(`
		INSERT INTO inbox (tenant_id, source, event_id, ordering_key, payload)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, source, event_id) DO NOTHING
		RETURNING id`, tenantID, ev.Source, ev.EventID, ev.OrderingKey, []byte(ev.Payload))
	br := s.pool.SendBatch(ctx, b)
	var id int64
	if _, err = br.Exec(); err == nil {
		if _, err = br.Exec(); err == nil {
			err = br.QueryRow().Scan(&id)
		}
	}
	recorded = err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		recorded, err = false, cerr // the commit failed: not recorded
	}
	if err != nil {
		return false, fmt.Errorf("store: record whatsapp inbound %s: %w", ev.EventID, mapErr(err))
	}
	return recorded, nil
}

const touchContactSQL = `
		INSERT INTO whatsapp_contacts (tenant_id, phone_number_id, user_key, wa_id, user_id, profile_name, last_inbound_at)
		VALUES ($1, $2, $3, $4, $5, left($6, 500), $7)
		ON CONFLICT (tenant_id, phone_number_id, user_key) DO UPDATE SET
			wa_id = CASE WHEN EXCLUDED.wa_id = '' THEN whatsapp_contacts.wa_id ELSE EXCLUDED.wa_id END,
			user_id = CASE WHEN EXCLUDED.user_id = '' THEN whatsapp_contacts.user_id ELSE EXCLUDED.user_id END,
			profile_name = CASE WHEN EXCLUDED.profile_name = '' THEN whatsapp_contacts.profile_name ELSE EXCLUDED.profile_name END,
			last_inbound_at = greatest(whatsapp_contacts.last_inbound_at, EXCLUDED.last_inbound_at),
			-- Meta's timestamps are whole seconds: a message of the same second
			-- as the mark counts as later.
			unreachable_at = CASE WHEN EXCLUDED.last_inbound_at >= date_trunc('second', coalesce(whatsapp_contacts.unreachable_at, '-infinity'))
			                      THEN NULL ELSE whatsapp_contacts.unreachable_at END,
			unreachable_code = CASE WHEN EXCLUDED.last_inbound_at >= date_trunc('second', coalesce(whatsapp_contacts.unreachable_at, '-infinity'))
			                        THEN NULL ELSE whatsapp_contacts.unreachable_code END,
			updated_at = now()`

// TouchWhatsAppContact records that the user wrote at c.LastInboundAt
// (keeping a later time already recorded), with the IDs and name Meta sent.
// A user who writes is reachable again.
func (t *Tx) TouchWhatsAppContact(ctx context.Context, c WhatsAppContact) error {
	_, err := t.tx.Exec(ctx, touchContactSQL, t.tenantID, c.PhoneNumberID, c.UserKey, c.WAID, c.UserID, c.ProfileName, c.LastInboundAt)
	if err != nil {
		return fmt.Errorf("store: touch whatsapp contact: %w", mapErr(err))
	}
	return nil
}

// GetWhatsAppContact returns a user of a number, with whether the 24-hour
// window is open now. Meta's message timestamps are whole seconds, so a
// message of the same second as a 131047 refusal reopens the window.
func (t *Tx) GetWhatsAppContact(ctx context.Context, phoneNumberID, userKey string) (WhatsAppContact, error) {
	c := WhatsAppContact{PhoneNumberID: phoneNumberID, UserKey: userKey}
	err := t.tx.QueryRow(ctx, `
		SELECT wa_id, user_id, profile_name, last_inbound_at,
		       last_inbound_at > now() - make_interval(secs => $3)
		         AND (window_closed_at IS NULL OR date_trunc('second', window_closed_at) <= last_inbound_at),
		       unreachable_at, unreachable_code
		FROM whatsapp_contacts WHERE phone_number_id = $1 AND user_key = $2`,
		phoneNumberID, userKey, WhatsAppWindow.Seconds()).
		Scan(&c.WAID, &c.UserID, &c.ProfileName, &c.LastInboundAt, &c.WindowOpen, &c.UnreachableAt, &c.UnreachableCode)
	if err != nil {
		return WhatsAppContact{}, fmt.Errorf("store: get whatsapp contact: %w", mapErr(err))
	}
	return c, nil
}

// CloseWhatsAppWindow records that Meta refused a free-form message to the
// user as outside the window (131047), whatever our clock said.
func (t *Tx) CloseWhatsAppWindow(ctx context.Context, phoneNumberID, userKey string) error {
	_, err := t.tx.Exec(ctx, `UPDATE whatsapp_contacts SET window_closed_at = now(), updated_at = now()
		WHERE phone_number_id = $1 AND user_key = $2`, phoneNumberID, userKey)
	if err != nil {
		return fmt.Errorf("store: close whatsapp window: %w", mapErr(err))
	}
	return nil
}

// MarkWhatsAppUnreachable records that Meta could not deliver to the user
// (131026); their next message clears it.
func (t *Tx) MarkWhatsAppUnreachable(ctx context.Context, phoneNumberID, userKey string, code int) error {
	_, err := t.tx.Exec(ctx, `UPDATE whatsapp_contacts SET unreachable_at = now(), unreachable_code = $3, updated_at = now()
		WHERE phone_number_id = $1 AND user_key = $2`, phoneNumberID, userKey, code)
	if err != nil {
		return fmt.Errorf("store: mark whatsapp unreachable: %w", mapErr(err))
	}
	return nil
}

// WhatsAppStatus is a status webhook for a message the business sent.
type WhatsAppStatus struct {
	WAMID      string
	Key        string // biz_opaque_callback_data: the part's outbound key ("" if absent)
	Status     string // sent, delivered, read, failed
	Rank       int    // whatsapp.StatusRank(Status): a status only replaces a lower one
	At         time.Time
	ErrorCode  *int
	ErrorTitle string
	Pricing    json.RawMessage
}

// OutboundRef is the outbound record a status belongs to.
type OutboundRef struct {
	Key            string
	ConversationID *uuid.UUID
	Applied        bool // the status moved the record forward (not a repeat or a late one)
}

// ApplyWhatsAppStatus records a status on the outbound message it is about,
// found by its key (biz_opaque_callback_data) or its wamid. The status never
// moves backwards: a repeated or late webhook changes nothing (Applied is
// false). Any status proves the message was sent, so a claim still pending
// (the sender lost Meta's answer) becomes sent with the wamid. found is false
// for a message this tenant never sent.
func (t *Tx) ApplyWhatsAppStatus(ctx context.Context, st WhatsAppStatus) (OutboundRef, bool, error) {
	var ref OutboundRef
	var pricing []byte
	if len(st.Pricing) > 0 {
		pricing = st.Pricing
	}
	err := t.tx.QueryRow(ctx, `
		WITH cur AS (
			SELECT key, (CASE delivery_status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'failed' THEN 3 ELSE 0 END) < $4 AS fwd
			FROM outbound_messages
			WHERE channel = 'whatsapp' AND ((key = $1 AND $1 <> '') OR (external_id = $2 AND $2 <> ''))
			ORDER BY (key = $1) DESC LIMIT 1
			FOR UPDATE)
		UPDATE outbound_messages o SET
			external_id = CASE WHEN o.external_id = '' THEN $2 ELSE o.external_id END,
			status = 'sent', sent_at = coalesce(o.sent_at, now()),
			delivery_status = CASE WHEN cur.fwd THEN $3 ELSE o.delivery_status END,
			delivery_status_at = CASE WHEN cur.fwd THEN $5 ELSE o.delivery_status_at END,
			error_code = CASE WHEN cur.fwd AND $6::integer IS NOT NULL THEN $6 ELSE o.error_code END,
			error_title = CASE WHEN cur.fwd AND $6::integer IS NOT NULL THEN left($7, 2000) ELSE o.error_title END,
			pricing = coalesce($8::jsonb, o.pricing)
		FROM cur WHERE o.key = cur.key
		RETURNING o.key, o.conversation_id, cur.fwd`,
		st.Key, st.WAMID, st.Status, st.Rank, st.At, st.ErrorCode, st.ErrorTitle, pricing).
		Scan(&ref.Key, &ref.ConversationID, &ref.Applied)
	if errors.Is(err, pgx.ErrNoRows) {
		return OutboundRef{}, false, nil
	}
	if err != nil {
		return OutboundRef{}, false, fmt.Errorf("store: apply whatsapp status %s: %w", st.WAMID, mapErr(err))
	}
	return ref, true, nil
}

// OutboundAttempt is what a retried send needs to know about a part whose
// claim an earlier attempt left pending.
type OutboundAttempt struct {
	ExternalID     string // set once Meta's status webhook named the message
	DeliveryStatus string
	SentAs         string     // text | template | skipped ("" before the first attempt)
	PostStartedAt  *time.Time // the last attempt to post began
	RefusedAt      *time.Time // Meta answered that attempt with an error: nothing was sent
	Now            time.Time  // the database's clock, to compare the times above with
}

// GetOutboundAttempt reads the send state of key.
func (t *Tx) GetOutboundAttempt(ctx context.Context, key string) (OutboundAttempt, error) {
	var a OutboundAttempt
	err := t.tx.QueryRow(ctx, `SELECT external_id, delivery_status, sent_as, post_started_at, refused_at, now()
		FROM outbound_messages WHERE key = $1`, key).Scan(&a.ExternalID, &a.DeliveryStatus, &a.SentAs, &a.PostStartedAt, &a.RefusedAt, &a.Now)
	if err != nil {
		return OutboundAttempt{}, fmt.Errorf("store: get outbound attempt %s: %w", key, mapErr(err))
	}
	return a, nil
}

// MarkOutboundPostStarted records that an attempt to post key as sentAs
// (text or template) begins now, clearing an earlier attempt's refusal: this
// one's outcome is unknown until Meta answers.
func (t *Tx) MarkOutboundPostStarted(ctx context.Context, key, sentAs string) error {
	return t.outboundExec(ctx, key, `UPDATE outbound_messages SET post_started_at = now(), refused_at = NULL, sent_as = $2
		WHERE key = $1`, sentAs)
}

// MarkOutboundRefused records that Meta answered the attempt to post key
// with an error: it was not sent.
func (t *Tx) MarkOutboundRefused(ctx context.Context, key string) error {
	return t.outboundExec(ctx, key, `UPDATE outbound_messages SET refused_at = now() WHERE key = $1`)
}

// SetOutboundSentAs records how a WhatsApp part went out: text, template, or
// skipped (the template stood in for the whole message).
func (t *Tx) SetOutboundSentAs(ctx context.Context, key, sentAs string) error {
	return t.outboundExec(ctx, key, `UPDATE outbound_messages SET sent_as = $2 WHERE key = $1`, sentAs)
}

func (t *Tx) outboundExec(ctx context.Context, key, sql string, args ...any) error {
	tag, err := t.tx.Exec(ctx, sql, append([]any{key}, args...)...)
	if err != nil {
		return fmt.Errorf("store: outbound %s: %w", key, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: outbound %s: %w", key, ErrNotFound)
	}
	return nil
}

// OutboundDelivery is a sent message's record as the channel reported it.
type OutboundDelivery struct {
	Key            string
	ExternalID     string
	Status         string // pending | sent
	SentAs         string
	DeliveryStatus string
	ErrorCode      *int
	ErrorTitle     string
	Pricing        json.RawMessage
}

// ListOutbound returns a conversation's outbound records, oldest first.
func (t *Tx) ListOutbound(ctx context.Context, conversationID uuid.UUID) ([]OutboundDelivery, error) {
	rows, err := t.tx.Query(ctx, `SELECT key, external_id, status, sent_as, delivery_status, error_code, error_title, pricing
		FROM outbound_messages WHERE conversation_id = $1 ORDER BY created_at, key`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("store: list outbound: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboundDelivery, error) {
		var d OutboundDelivery
		var pricing []byte
		err := r.Scan(&d.Key, &d.ExternalID, &d.Status, &d.SentAs, &d.DeliveryStatus, &d.ErrorCode, &d.ErrorTitle, &pricing)
		d.Pricing = pricing
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list outbound: %w", mapErr(err))
	}
	return out, nil
}
