package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Inbox sources (the CHECK constraint on inbox.source).
const (
	SourceSlack    = "slack"
	SourceWhatsApp = "whatsapp"
	SourceStripe   = "stripe"
	// SourceEscalation: staff actions on an escalation (a reply or a
	// resolution from Slack, the portal or the API) for its conversation.
	SourceEscalation = "escalation"
	SourcePortal     = "portal" // a message typed in the portal's test chat
)

// InboxEvent is one verified webhook event, recorded before it is
// acknowledged and handed to Temporal from the inbox afterwards.
type InboxEvent struct {
	ID          int64
	TenantID    uuid.UUID
	Source      string
	EventID     string // the sender's event ID: the dedupe key within tenant and source
	OrderingKey string // events with the same key are handed over in order (a workflow ID)
	Payload     json.RawMessage
	ReceivedAt  time.Time
	Attempts    int // hand-over attempts, this one included
}

// RecordInbound writes ev to the inbox unless the same event (tenant, source,
// event ID) is already there. recorded is false for such a duplicate. Once the
// transaction commits the event is durable and may be acknowledged.
func (t *Tx) RecordInbound(ctx context.Context, ev InboxEvent) (recorded bool, err error) {
	var id int64
	err = t.tx.QueryRow(ctx, `
		INSERT INTO inbox (tenant_id, source, event_id, ordering_key, payload)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, source, event_id) DO NOTHING
		RETURNING id`, t.scope(ev.TenantID), ev.Source, ev.EventID, ev.OrderingKey, []byte(ev.Payload)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: record inbound %s %s: %w", ev.Source, ev.EventID, mapErr(err))
	}
	return true, nil
}

// RecordInbound is Tx.RecordInbound in one round trip, for the webhook's hot
// path: the tenant setting and the INSERT go as one pipelined batch, which
// Postgres runs as one implicit transaction (one Sync), so the setting is
// transaction-local exactly as in WithTenant and RLS checks the row against
// it; the batch commits before it returns.
func (s *Store) RecordInbound(ctx context.Context, tenantID uuid.UUID, ev InboxEvent) (recorded bool, err error) {
	if tenantID == uuid.Nil {
		return false, errors.New("store: record inbound: no tenant")
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('app.tenant_id', $1, true)`, tenantID.String())
	b.Queue(`
		INSERT INTO inbox (tenant_id, source, event_id, ordering_key, payload)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, source, event_id) DO NOTHING
		RETURNING id`, tenantID, ev.Source, ev.EventID, ev.OrderingKey, []byte(ev.Payload))
	br := s.pool.SendBatch(ctx, b)
	var id int64
	if _, err = br.Exec(); err == nil {
		err = br.QueryRow().Scan(&id)
	}
	recorded = err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		recorded, err = false, cerr // the commit failed: not recorded
	}
	if err != nil {
		return false, fmt.Errorf("store: record inbound %s %s: %w", ev.Source, ev.EventID, mapErr(err))
	}
	return recorded, nil
}

// WithDispatcher runs fn in the inbox dispatcher's scope: the transaction-local
// app.dispatcher setting, which only the inbox table's policies honour. It
// sees every tenant's inbox rows and no row of any other table, and cannot
// insert into the inbox. Only the dispatcher (and tests proving the above)
// may use it.
//
// Its commits do not wait for the WAL flush (synchronous_commit off, for
// this transaction only): a dispatcher transaction lost in a crash loses a
// lease or a "done" mark, so an event is handed over again — a duplicate the
// workflow drops — and never an event, which the webhook's own, synchronous
// commit recorded.
func (s *Store) WithDispatcher(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, "BEGIN; SELECT set_config('app.dispatcher', 'on', true), set_config('synchronous_commit', 'off', true)", &Tx{}, fn)
}

// ClaimInbox leases the next events to hand over for owner: the oldest
// pending event of up to maxKeys ordering keys that no live lease holds and
// whose backoff has passed, each with up to perKey of its key's following
// events. Per key the events come in id order, the first being the key's
// oldest pending one, so a dispatcher never holds event n+1 without n. Other
// dispatchers skip the rows while the lease lasts (FOR UPDATE SKIP LOCKED
// while claiming; leased_until after); a lease that runs out (its process
// died) lets another take the key over.
func (s *Store) ClaimInbox(ctx context.Context, owner string, lease time.Duration, maxKeys, perKey int) ([]InboxEvent, error) {
	var out []InboxEvent
	err := s.WithDispatcher(ctx, func(t *Tx) error {
		rows, err := t.tx.Query(ctx, `
			SELECT i.ordering_key FROM inbox i
			WHERE i.done_at IS NULL AND i.not_before <= now()
			  AND (i.leased_until IS NULL OR i.leased_until < now())
			  AND NOT EXISTS (SELECT 1 FROM inbox p
			                  WHERE p.done_at IS NULL AND p.ordering_key = i.ordering_key AND p.id < i.id)
			ORDER BY i.id
			LIMIT $1
			FOR UPDATE SKIP LOCKED`, maxKeys)
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(keys) == 0 {
			return err
		}
		rows, err = t.tx.Query(ctx, `
			UPDATE inbox SET leased_by = $1, leased_until = now() + $2 * interval '1 millisecond', attempts = attempts + 1
			WHERE id IN (SELECT id FROM (
			        SELECT id, row_number() OVER (PARTITION BY ordering_key ORDER BY id) AS n
			        FROM inbox WHERE done_at IS NULL AND ordering_key = ANY($3)) k
			      WHERE n <= $4)
			RETURNING id, tenant_id, source, event_id, ordering_key, payload, received_at, attempts`,
			owner, lease.Milliseconds(), keys, perKey)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (InboxEvent, error) {
			var ev InboxEvent
			var payload []byte
			err := r.Scan(&ev.ID, &ev.TenantID, &ev.Source, &ev.EventID, &ev.OrderingKey, &payload, &ev.ReceivedAt, &ev.Attempts)
			ev.Payload = payload
			return ev, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim inbox: %w", mapErr(err))
	}
	slices.SortFunc(out, func(a, b InboxEvent) int { return int(a.ID - b.ID) })
	return out, nil
}

// InboxFailure is an event whose hand-over failed.
type InboxFailure struct {
	ID         int64
	Err        string
	RetryAfter time.Duration // the backoff before the next attempt
	Permanent  bool          // never retry: mark it rejected so its key moves on
}

// SettleInbox records a dispatcher's round in one transaction: delivered
// events are done; a failed one waits out its backoff (or, permanent, is
// rejected); released ones (after a failure in their key, or out of time)
// lose owner's lease unchanged.
func (s *Store) SettleInbox(ctx context.Context, owner string, delivered []int64, failed []InboxFailure, released []int64) error {
	err := s.WithDispatcher(ctx, func(t *Tx) error {
		if len(delivered) > 0 {
			// Whoever holds the lease now: the events were handed over.
			if _, err := t.tx.Exec(ctx, `UPDATE inbox SET done_at = now(), outcome = 'delivered', leased_by = NULL,
				leased_until = NULL, last_error = NULL WHERE id = ANY($1) AND done_at IS NULL`, delivered); err != nil {
				return err
			}
		}
		for _, f := range failed {
			outcome := "rejected"
			if !f.Permanent {
				outcome = ""
			}
			if _, err := t.tx.Exec(ctx, `UPDATE inbox SET leased_by = NULL, leased_until = NULL, last_error = $3,
				not_before = now() + $4 * interval '1 millisecond',
				done_at = CASE WHEN $5 = '' THEN NULL ELSE now() END, outcome = NULLIF($5, '')
				WHERE id = $1 AND leased_by = $2 AND done_at IS NULL`,
				f.ID, owner, truncate(f.Err, 2000), f.RetryAfter.Milliseconds(), outcome); err != nil {
				return err
			}
		}
		if len(released) > 0 {
			if _, err := t.tx.Exec(ctx, `UPDATE inbox SET leased_by = NULL, leased_until = NULL
				WHERE id = ANY($1) AND leased_by = $2 AND done_at IS NULL`, released, owner); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: settle inbox: %w", mapErr(err))
	}
	return nil
}

// InboxBacklog is what waits in the inbox.
type InboxBacklog struct {
	Pending int64
	Oldest  time.Time // zero when nothing is pending
}

// InboxBacklog counts the pending events of every tenant and finds the oldest.
func (s *Store) InboxBacklog(ctx context.Context) (InboxBacklog, error) {
	var b InboxBacklog
	var oldest *time.Time
	err := s.WithDispatcher(ctx, func(t *Tx) error {
		return t.tx.QueryRow(ctx, `SELECT count(*), min(received_at) FROM inbox WHERE done_at IS NULL`).Scan(&b.Pending, &oldest)
	})
	if err != nil {
		return InboxBacklog{}, fmt.Errorf("store: inbox backlog: %w", mapErr(err))
	}
	if oldest != nil {
		b.Oldest = *oldest
	}
	return b, nil
}

// PurgeInbox deletes up to limit events done before cutoff; a repeated
// delivery after that is no longer recognised here (the workflow still drops
// repeated event IDs it has seen).
func (s *Store) PurgeInbox(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	var n int64
	err := s.WithDispatcher(ctx, func(t *Tx) error {
		tag, err := t.tx.Exec(ctx, `DELETE FROM inbox WHERE id IN (
			SELECT id FROM inbox WHERE done_at IS NOT NULL AND done_at < $1 LIMIT $2)`, cutoff, limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge inbox: %w", mapErr(err))
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
