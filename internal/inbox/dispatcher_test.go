package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/inbox"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

// recorder is the destination: it notes each delivery, in the order made.
type recorder struct {
	mu    sync.Mutex
	got   []string            // event IDs in delivery order
	count map[string]int      // deliveries per event ID
	byKey map[string][]string // per key, in order
	fail  func(ev store.InboxEvent) error
}

func newRecorder() *recorder { return &recorder{count: map[string]int{}, byKey: map[string][]string{}} }

func (r *recorder) Deliver(ctx context.Context, ev store.InboxEvent) error {
	r.mu.Lock()
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(ev); err != nil {
			return err
		}
	}
	time.Sleep(time.Duration(ev.ID%3) * time.Millisecond) // let deliveries of different keys interleave
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ev.EventID)
	r.count[ev.EventID]++
	r.byKey[ev.OrderingKey] = append(r.byKey[ev.OrderingKey], ev.EventID)
	return nil
}

func (r *recorder) setFail(f func(ev store.InboxEvent) error) { r.mu.Lock(); r.fail = f; r.mu.Unlock() }

func (r *recorder) delivered() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

func newStore(t *testing.T) (*store.Store, uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	tenant := uuid.New()
	require.NoError(t, s.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		_, err := tx.CreateTenant(ctx, tenant, "Inbox")
		return err
	}))
	return s, tenant
}

// record writes n events per key, interleaving keys as arrivals would.
func record(t *testing.T, s *store.Store, tenant uuid.UUID, keys, n int, prefix string) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		for k := 0; k < keys; k++ {
			require.NoError(t, s.WithTenant(ctx, tenant, func(tx *store.Tx) error {
				ok, err := tx.RecordInbound(ctx, store.InboxEvent{Source: store.SourceSlack, EventID: fmt.Sprintf("%s-k%d-%03d", prefix, k, i),
					OrderingKey: fmt.Sprintf("%s-k%d", prefix, k), Payload: []byte(`{}`)})
				require.True(t, ok)
				return err
			}))
		}
	}
}

func run(t *testing.T, d *inbox.Dispatcher) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func fast(opts inbox.Options) inbox.Options {
	opts.Poll = 20 * time.Millisecond
	opts.StatsEvery = 50 * time.Millisecond
	opts.MinBackoff = 20 * time.Millisecond
	opts.MaxBackoff = 100 * time.Millisecond
	return opts
}

func requireInOrder(t *testing.T, r *recorder, prefix string, keys, n int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("%s-k%d", prefix, k)
		var want []string
		for i := 0; i < n; i++ {
			want = append(want, fmt.Sprintf("%s-k%d-%03d", prefix, k, i))
		}
		require.Equal(t, want, r.byKey[key], "key %s delivered in order, each once", key)
	}
	for id, c := range r.count {
		require.Equal(t, 1, c, "%s delivered %d times", id, c)
	}
}

// Two dispatchers (two serve processes) share one backlog: every event is
// delivered exactly once, and each key's events in the order recorded.
func TestTwoDispatchersDeliverEachEventOnceInOrderPerKey(t *testing.T) {
	s, tenant := newStore(t)
	const keys, n = 12, 15
	record(t, s, tenant, keys, n, "a")
	r := newRecorder()
	handlers := map[string]inbox.Handler{store.SourceSlack: r}
	d1 := inbox.New(s, handlers, fast(inbox.Options{Owner: "one", MaxKeys: 5, PerKey: 4}))
	d2 := inbox.New(s, handlers, fast(inbox.Options{Owner: "two", MaxKeys: 5, PerKey: 4}))
	run(t, d1)
	run(t, d2)
	// More arrive while they work.
	record(t, s, tenant, keys, 5, "b")
	require.Eventually(t, func() bool { return r.delivered() == keys*(n+5) }, 30*time.Second, 20*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // a duplicate would surface now
	requireInOrder(t, r, "a", keys, n)
	requireInOrder(t, r, "b", keys, 5)
	require.Len(t, r.got, keys*(n+5))
	require.Eventually(t, func() bool {
		b := d1.Backlog()
		return b != nil && b.Err == nil && b.Pending == 0
	}, 5*time.Second, 20*time.Millisecond)
}

// While the destination is down every event stays in the inbox, retried with
// backoff and measured as backlog; when it returns each is delivered once,
// in order per key.
func TestOutageIsRetriedWithBackoffAndDrainsInOrder(t *testing.T) {
	s, tenant := newStore(t)
	r := newRecorder()
	var attempts atomic.Int64
	r.setFail(func(store.InboxEvent) error { attempts.Add(1); return errors.New("temporal: connection refused") })
	d := inbox.New(s, map[string]inbox.Handler{store.SourceSlack: r}, fast(inbox.Options{}))
	run(t, d)
	const keys, n = 4, 6
	record(t, s, tenant, keys, n, "o")
	require.Eventually(t, func() bool {
		b := d.Backlog()
		return attempts.Load() >= 3*keys && b != nil && b.Pending == keys*n && b.OldestAge > 0
	}, 10*time.Second, 10*time.Millisecond, "retried, and the backlog is measured")
	// Only each key's head was tried: nothing behind a failed event goes first.
	require.Zero(t, r.delivered())
	tried := attempts.Load()
	time.Sleep(200 * time.Millisecond)
	require.Less(t, attempts.Load()-tried, int64(keys*10), "backoff: at most a few attempts per key in 200ms, not a busy loop")

	r.setFail(nil)
	require.Eventually(t, func() bool { return r.delivered() == keys*n }, 10*time.Second, 10*time.Millisecond)
	requireInOrder(t, r, "o", keys, n)
	require.Eventually(t, func() bool { b := d.Backlog(); return b.Pending == 0 && b.OldestAge == 0 }, 5*time.Second, 10*time.Millisecond)
}

// An event the destination refuses for good is rejected; the events behind it
// in its key are still delivered.
func TestPermanentFailureDoesNotBlockTheKey(t *testing.T) {
	s, tenant := newStore(t)
	r := newRecorder()
	r.setFail(func(ev store.InboxEvent) error {
		if ev.EventID == "p-k0-001" {
			return inbox.Permanent(errors.New("invalid argument"))
		}
		return nil
	})
	d := inbox.New(s, map[string]inbox.Handler{store.SourceSlack: r}, fast(inbox.Options{}))
	run(t, d)
	record(t, s, tenant, 1, 3, "p")
	require.Eventually(t, func() bool { return r.delivered() == 2 }, 10*time.Second, 10*time.Millisecond)
	r.mu.Lock()
	require.Equal(t, []string{"p-k0-000", "p-k0-002"}, r.got)
	r.mu.Unlock()
	// The key's hand-over is settled (its outcomes written) just after its
	// last event was delivered: wait for the rejection to be recorded.
	var outcome, lastErr string
	require.Eventually(t, func() bool {
		require.NoError(t, s.WithDispatcher(context.Background(), func(tx *store.Tx) error {
			return tx.QueryRowScan(context.Background(), `SELECT coalesce(outcome, ''), coalesce(last_error, '') FROM inbox WHERE event_id = 'p-k0-001'`,
				nil, &outcome, &lastErr)
		}))
		return outcome != ""
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "rejected", outcome)
	require.Contains(t, lastErr, "invalid argument")
}

// A dispatcher that claimed events and died holds them only until its lease
// runs out; another then delivers them, in order.
func TestDeadDispatchersLeaseIsTakenOver(t *testing.T) {
	s, tenant := newStore(t)
	record(t, s, tenant, 2, 3, "l")
	claimed, err := s.ClaimInbox(context.Background(), "dead", 300*time.Millisecond, 10, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 6, "the dead one held every event")

	r := newRecorder()
	d := inbox.New(s, map[string]inbox.Handler{store.SourceSlack: r}, fast(inbox.Options{Owner: "alive"}))
	run(t, d)
	time.Sleep(150 * time.Millisecond)
	require.Zero(t, r.delivered(), "a live lease is respected")
	require.Eventually(t, func() bool { return r.delivered() == 6 }, 10*time.Second, 10*time.Millisecond)
	requireInOrder(t, r, "l", 2, 3)
}

// A repeated delivery of an event (the same tenant, source and event ID) is
// recorded once.
func TestRecordInboundDedupes(t *testing.T) {
	s, tenant := newStore(t)
	ctx := context.Background()
	ev := store.InboxEvent{Source: store.SourceSlack, EventID: "Ev1", OrderingKey: "k", Payload: []byte(`{}`)}
	for i, want := range []bool{true, false, false} {
		require.NoError(t, s.WithTenant(ctx, tenant, func(tx *store.Tx) error {
			ok, err := tx.RecordInbound(ctx, ev)
			require.Equal(t, want, ok, "delivery %d", i+1)
			return err
		}))
	}
	b, err := s.InboxBacklog(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, b.Pending)
}

// The webhook's one-round-trip RecordInbound dedupes the same way and writes
// under RLS: the row is its tenant's, invisible to another, and a tenant that
// does not exist is refused.
func TestStoreRecordInboundIsScopedAndDedupes(t *testing.T) {
	s, tenant := newStore(t)
	ctx := context.Background()
	ev := store.InboxEvent{Source: store.SourceSlack, EventID: "Ev2", OrderingKey: "k", Payload: []byte(`{"a":1}`)}
	for i, want := range []bool{true, false} {
		ok, err := s.RecordInbound(ctx, tenant, ev)
		require.NoError(t, err)
		require.Equal(t, want, ok, "delivery %d", i+1)
	}
	other := uuid.New()
	require.NoError(t, s.WithTenant(ctx, other, func(tx *store.Tx) error {
		if _, err := tx.CreateTenant(ctx, other, "Other"); err != nil {
			return err
		}
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM inbox`)
		require.Zero(t, n, "another tenant sees no event")
		return err
	}))
	require.NoError(t, s.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM inbox WHERE event_id = 'Ev2'`)
		require.EqualValues(t, 1, n)
		return err
	}))
	_, err := s.RecordInbound(ctx, uuid.New(), ev)
	require.ErrorIs(t, err, store.ErrReferenced, "no such tenant")
	// The setting did not outlive the batch on its pooled connection.
	require.NoError(t, s.WithNoScope(ctx, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM inbox`)
		require.Zero(t, n)
		return err
	}))
}
