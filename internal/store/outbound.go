package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// Outbound is the record that makes sending idempotent: the key (workflow ID +
// turn + part) is claimed before a send and completed after it.
type Outbound struct {
	Key            string
	ConversationID *uuid.UUID
	Channel        string
	ExternalID     string // the channel's message ID once sent
	Status         string // pending | sent
	// Fresh is true when this claim created the record. A pending record that
	// is not fresh means an earlier attempt may have posted before failing.
	Fresh bool
}

// ClaimOutbound records the key as pending if new, and returns the record as
// it now stands. A "sent" record means a previous attempt already posted.
func (t *Tx) ClaimOutbound(ctx context.Context, o Outbound) (Outbound, error) {
	var out Outbound
	err := t.tx.QueryRow(ctx, `
		INSERT INTO outbound_messages (tenant_id, key, conversation_id, channel)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, key) DO UPDATE SET key = EXCLUDED.key
		RETURNING key, conversation_id, channel, external_id, status, (xmax = 0)`,
		t.tenantID, o.Key, o.ConversationID, o.Channel).
		Scan(&out.Key, &out.ConversationID, &out.Channel, &out.ExternalID, &out.Status, &out.Fresh)
	if err != nil {
		return Outbound{}, fmt.Errorf("store: claim outbound %s: %w", o.Key, mapErr(err))
	}
	return out, nil
}

// CompleteOutbound marks the key sent with the channel's message ID.
func (t *Tx) CompleteOutbound(ctx context.Context, key, externalID string) error {
	tag, err := t.tx.Exec(ctx, `UPDATE outbound_messages SET status = 'sent', external_id = $2, sent_at = now()
		WHERE key = $1`, key, externalID)
	if err != nil {
		return fmt.Errorf("store: complete outbound %s: %w", key, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: complete outbound %s: %w", key, ErrNotFound)
	}
	return nil
}
