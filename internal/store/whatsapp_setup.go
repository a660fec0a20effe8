package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// WhatsAppVerification is when Meta verified this server's webhook with one
// verify token (GET /webhooks/whatsapp answered with the challenge).
type WhatsAppVerification struct {
	FirstAt, LastAt time.Time
	Count           int64
}

// RecordWhatsAppVerification records that Meta's handshake succeeded now
// with the verify token whose SHA-256 is tokenSHA256. The handshake names no
// tenant, so neither does the row: whatsapp_webhook_verifications has no
// tenant_id and no row-level security, and this statement runs in no scope
// (it can see no tenant's rows, and needs none).
func (s *Store) RecordWhatsAppVerification(ctx context.Context, tokenSHA256 []byte) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO whatsapp_webhook_verifications AS v (verify_token_sha256) VALUES ($1)
		ON CONFLICT (verify_token_sha256) DO UPDATE SET
			last_verified_at = greatest(v.last_verified_at, now()), verifications = v.verifications + 1`, tokenSHA256)
	if err != nil {
		return fmt.Errorf("store: record whatsapp verification: %w", mapErr(err))
	}
	return nil
}

// GetWhatsAppVerification returns when Meta verified the webhook with the
// verify token whose SHA-256 is tokenSHA256; found is false if it never did.
func (t *Tx) GetWhatsAppVerification(ctx context.Context, tokenSHA256 []byte) (v WhatsAppVerification, found bool, err error) {
	err = t.tx.QueryRow(ctx, `SELECT first_verified_at, last_verified_at, verifications
		FROM whatsapp_webhook_verifications WHERE verify_token_sha256 = $1`, tokenSHA256).Scan(&v.FirstAt, &v.LastAt, &v.Count)
	if errors.Is(err, pgx.ErrNoRows) {
		return WhatsAppVerification{}, false, nil
	}
	if err != nil {
		return WhatsAppVerification{}, false, fmt.Errorf("store: get whatsapp verification: %w", mapErr(err))
	}
	return v, true, nil
}

// WhatsAppActivity is what signed webhooks for one of the tenant's numbers
// have left behind: proof that Meta delivers that number's events here.
type WhatsAppActivity struct {
	// LastMessageAt: the last time an inbound message (or a status about one
	// of its users) was recorded for the number — whatsapp_contacts is
	// written in the transaction that records each inbound message, and,
	// unlike the inbox, is never purged.
	LastMessageAt *time.Time
	// LastStatusAt: the time of the latest status (sent, delivered, read,
	// failed) Meta reported for a message sent from the number.
	LastStatusAt *time.Time
}

// Any reports whether any delivery for the number has arrived.
func (a WhatsAppActivity) Any() bool { return a.LastMessageAt != nil || a.LastStatusAt != nil }

// Last is the later of the two times (nil when nothing has arrived).
func (a WhatsAppActivity) Last() *time.Time {
	switch {
	case a.LastMessageAt == nil:
		return a.LastStatusAt
	case a.LastStatusAt == nil || a.LastMessageAt.After(*a.LastStatusAt):
		return a.LastMessageAt
	}
	return a.LastStatusAt
}

// GetWhatsAppActivity reads the tenant's deliveries for a number. A WhatsApp
// conversation's external key is "<phone_number_id>:<user key>", which ties
// a sent message's statuses to the number.
func (t *Tx) GetWhatsAppActivity(ctx context.Context, phoneNumberID string) (WhatsAppActivity, error) {
	var a WhatsAppActivity
	err := t.tx.QueryRow(ctx, `SELECT
		(SELECT max(updated_at) FROM whatsapp_contacts WHERE phone_number_id = $1),
		(SELECT max(o.delivery_status_at) FROM conversations c
		   JOIN outbound_messages o ON o.tenant_id = c.tenant_id AND o.conversation_id = c.id
		  WHERE c.channel = 'whatsapp' AND starts_with(c.external_key, $1 || ':')
		    AND o.channel = 'whatsapp' AND o.delivery_status <> '')`, phoneNumberID).
		Scan(&a.LastMessageAt, &a.LastStatusAt)
	if err != nil {
		return WhatsAppActivity{}, fmt.Errorf("store: get whatsapp activity: %w", mapErr(err))
	}
	return a, nil
}
