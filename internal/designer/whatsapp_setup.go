package designer

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/store"
)

// WhatsAppWebhook is where a connected WhatsApp number's webhook set-up
// stands: the setup wizard's "Check".
type WhatsAppWebhook struct {
	Channel store.ChannelConnection // without its token
	// Verified: Meta's handshake (GET /webhooks/whatsapp) succeeded with the
	// server's current verify token, last at Verification.LastAt. The
	// handshake names no number, so this is a fact about the platform's
	// webhook, not this number's.
	Verified     bool
	Verification store.WhatsAppVerification
	// Activity: signed deliveries for this number — the stronger signal that
	// Meta sends this number's events here (the app's webhook is verified,
	// the messages field subscribed, the number's account subscribed).
	Activity  store.WhatsAppActivity
	CheckedAt time.Time
}

// WhatsAppWebhook checks a WhatsApp connection's webhook: whether Meta has
// verified the webhook with verifyToken (the server's
// KONSTRUCT_WHATSAPP_VERIFY_TOKEN; "" never is) and whether any delivery for
// the number has arrived. Another tenant's connection, or one that is not
// WhatsApp, is not found.
func (s *Service) WhatsAppWebhook(ctx context.Context, tenantID, channelID uuid.UUID, verifyToken string) (WhatsAppWebhook, error) {
	var w WhatsAppWebhook
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		ch, err := tx.GetChannel(ctx, channelID)
		if err != nil {
			return notFound(err, "channel")
		}
		if ch.Kind != store.ChannelWhatsApp {
			return apperr.NotFound("channel")
		}
		ch.Secret = nil
		w.Channel = ch
		if verifyToken != "" {
			if w.Verification, w.Verified, err = tx.GetWhatsAppVerification(ctx, whatsapp.VerifyTokenSHA256(verifyToken)); err != nil {
				return err
			}
		}
		w.Activity, err = tx.GetWhatsAppActivity(ctx, ch.ExternalID)
		return err
	})
	if err != nil {
		return WhatsAppWebhook{}, err
	}
	w.CheckedAt = time.Now()
	return w, nil
}
