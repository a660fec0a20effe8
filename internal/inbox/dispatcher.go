// Package inbox hands recorded webhook events to Temporal. A webhook writes
// each verified event to the inbox table (store.RecordInbound), in the
// transaction that dedupes it, and acknowledges it once committed; nothing
// in the handler waits on Temporal. The Dispatcher, which runs in every
// `serve` process, then delivers the events:
//
//   - at least once: an event is marked done only after its handler returned;
//     a process that dies mid-delivery leaves a lease that runs out, and
//     another dispatcher sends the event again (the conversation workflow
//     drops repeated event IDs, so the user sees one answer);
//   - without two dispatchers sending the same event concurrently: claims take
//     rows FOR UPDATE SKIP LOCKED and lease them, so while a lease lasts no
//     other dispatcher touches the row's ordering key;
//   - in order per ordering key (a conversation): only the oldest pending
//     event of a key is claimable, with the key's next events behind it, and
//     they are delivered one after another; a failure releases the rest;
//   - with backoff while Temporal is down: a failed event waits
//     MinBackoff·2^attempts (capped at MaxBackoff) before its next attempt,
//     and its key waits with it; while whole rounds fail, the dispatcher
//     pauses with the same backoff instead of claiming on every new event.
package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/konstruct/konstruct/internal/store"
)

// Handler delivers one event to its destination. It must be safe to call
// again for an event it already delivered (the destination dedupes).
type Handler interface {
	Deliver(ctx context.Context, ev store.InboxEvent) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev store.InboxEvent) error

// Deliver calls f.
func (f HandlerFunc) Deliver(ctx context.Context, ev store.InboxEvent) error { return f(ctx, ev) }

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks an error retrying cannot fix (a payload that does not
// decode, a request the destination refuses as invalid): the event is
// recorded as rejected and its key moves on.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Options tune a Dispatcher; zero fields take the defaults below.
type Options struct {
	Owner       string        // names this dispatcher's leases; hostname-pid-random by default
	Lease       time.Duration // how long a claim holds its rows (30s)
	Poll        time.Duration // how often to look for work nobody woke us for (500ms)
	MaxKeys     int           // ordering keys per claim (64)
	PerKey      int           // events of one key per claim (16)
	Concurrency int           // keys delivered at once within a round (32)
	Rounds      int           // claims in flight at once (4)
	SendTimeout time.Duration // bound on one delivery (5s)
	MinBackoff  time.Duration // first retry delay (200ms)
	MaxBackoff  time.Duration // retry delay cap (5s): how soon delivery resumes after an outage
	Retention   time.Duration // how long done events are kept to dedupe late retries (72h)
	StatsEvery  time.Duration // backlog refresh for /readyz and /metrics (2s)
	Metrics     *Metrics
	Logger      *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Lease, 30*time.Second)
	def(&o.Poll, 500*time.Millisecond)
	def(&o.SendTimeout, 5*time.Second)
	def(&o.MinBackoff, 200*time.Millisecond)
	def(&o.MaxBackoff, 5*time.Second)
	def(&o.Retention, 72*time.Hour)
	def(&o.StatsEvery, 2*time.Second)
	defInt(&o.MaxKeys, 64)
	defInt(&o.PerKey, 16)
	defInt(&o.Concurrency, 32)
	defInt(&o.Rounds, 4)
	if o.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Dispatcher delivers inbox events; see the package comment.
type Dispatcher struct {
	store    *store.Store
	handlers map[string]Handler
	opts     Options

	wake    chan struct{}
	missed  atomic.Bool // a wake-up found every round slot busy, or came during a pause
	rounds  chan struct{}
	wg      sync.WaitGroup
	backlog atomic.Pointer[Backlog]

	// While every hand-over fails (Temporal down), no round starts until
	// pausedUntil: one probe per backoff period instead of a claim per
	// recorded event, which would load Postgres under the webhook's INSERTs.
	mu          sync.Mutex
	pausedUntil time.Time
	failedRuns  int // consecutive rounds with failures and no delivery
}

// Backlog is the inbox's pending work as last measured.
type Backlog struct {
	Pending    int64
	OldestAge  time.Duration // age of the oldest pending event; zero when none
	MeasuredAt time.Time
	Err        error // the measurement failed (Postgres down)
}

// New builds a dispatcher delivering each source's events to its handler.
func New(s *store.Store, handlers map[string]Handler, opts Options) *Dispatcher {
	opts = opts.withDefaults()
	return &Dispatcher{store: s, handlers: handlers, opts: opts,
		wake: make(chan struct{}, 1), rounds: make(chan struct{}, opts.Rounds)}
}

// Wake asks for a round now: the webhook calls it after recording an event,
// so the event is handed over at once rather than at the next poll.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Backlog returns the last measurement (nil before the first).
func (d *Dispatcher) Backlog() *Backlog { return d.backlog.Load() }

// Run delivers until ctx ends, then waits for the rounds in flight.
func (d *Dispatcher) Run(ctx context.Context) error {
	log := d.opts.Logger
	log.InfoContext(ctx, "inbox dispatcher started", "owner", d.opts.Owner)
	poll := time.NewTicker(d.opts.Poll)
	defer poll.Stop()
	stats := time.NewTicker(d.opts.StatsEvery)
	defer stats.Stop()
	purge := time.NewTicker(10 * time.Minute)
	defer purge.Stop()
	d.measure(ctx)
	d.Wake() // events left by a previous run
	for {
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return nil
		case <-d.wake:
		case <-poll.C:
		case <-stats.C:
			d.measure(ctx)
			continue
		case <-purge.C:
			d.purge(ctx)
			continue
		}
		if d.paused() {
			continue // the poll ticker looks again; the pause is at most MaxBackoff
		}
		select {
		case d.rounds <- struct{}{}:
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				res := d.round(ctx)
				d.afterRound(res)
				<-d.rounds
				// More may be waiting behind what this round delivered, or
				// a wake-up came while every slot was busy.
				if (res.claimed > 0 && !d.paused()) || d.missed.Swap(false) {
					d.Wake()
				}
			}()
		default:
			d.missed.Store(true)
		}
	}
}

type roundResult struct{ claimed, delivered, failed int }

func (d *Dispatcher) paused() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Now().Before(d.pausedUntil)
}

// afterRound pauses the dispatcher, with growing backoff, while rounds fail
// without delivering anything, and lifts the pause on the first delivery.
func (d *Dispatcher) afterRound(r roundResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case r.delivered > 0:
		d.failedRuns, d.pausedUntil = 0, time.Time{}
	case r.failed > 0:
		d.failedRuns++
		d.pausedUntil = time.Now().Add(d.backoff(d.failedRuns))
	}
}

// round claims a batch, delivers it and records the outcome.
func (d *Dispatcher) round(ctx context.Context) roundResult {
	log := d.opts.Logger
	evs, err := d.store.ClaimInbox(ctx, d.opts.Owner, d.opts.Lease, d.opts.MaxKeys, d.opts.PerKey)
	if err != nil {
		if ctx.Err() == nil {
			log.ErrorContext(ctx, "inbox: claim failed", "err", err)
			d.opts.Metrics.claimFailed()
			sleep(ctx, d.opts.MinBackoff)
		}
		return roundResult{}
	}
	if len(evs) == 0 {
		return roundResult{}
	}
	// Group by key, keeping id order inside each key.
	var keys []string
	byKey := map[string][]store.InboxEvent{}
	for _, ev := range evs {
		if _, ok := byKey[ev.OrderingKey]; !ok {
			keys = append(keys, ev.OrderingKey)
		}
		byKey[ev.OrderingKey] = append(byKey[ev.OrderingKey], ev)
	}
	// Stop starting deliveries well before the lease runs out, so another
	// dispatcher does not take the key over while this one still sends.
	deadline := time.Now().Add(d.opts.Lease / 2)
	var (
		mu    sync.Mutex
		res   = roundResult{claimed: len(evs)}
		wg    sync.WaitGroup
		slots = make(chan struct{}, d.opts.Concurrency)
	)
	for _, key := range keys {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			// Each key settles as soon as it is done, so its next event can be
			// claimed without waiting for the round's slowest key.
			var (
				delivered, released []int64
				failed              []store.InboxFailure
			)
			defer func() {
				d.settle(ctx, delivered, failed, released)
				mu.Lock()
				res.delivered += len(delivered)
				res.failed += len(failed)
				mu.Unlock()
			}()
			group := byKey[key]
			for i, ev := range group {
				if ctx.Err() != nil || time.Now().After(deadline) {
					for _, r := range group[i:] {
						released = append(released, r.ID)
					}
					return
				}
				err := d.deliver(ctx, ev)
				switch {
				case err == nil:
					delivered = append(delivered, ev.ID)
					d.opts.Metrics.delivered(ev.Source, time.Since(ev.ReceivedAt))
				case IsPermanent(err):
					// Recorded as rejected; the key moves on.
					failed = append(failed, store.InboxFailure{ID: ev.ID, Err: err.Error(), Permanent: true})
					d.opts.Metrics.failed(ev.Source, "permanent")
					log.ErrorContext(ctx, "inbox: event rejected for good", "source", ev.Source, "event_id", ev.EventID,
						"tenant_id", ev.TenantID.String(), "err", err)
				case ctx.Err() != nil:
					released = append(released, ev.ID) // shutting down: not the event's fault
				default:
					backoff := d.backoff(ev.Attempts)
					failed = append(failed, store.InboxFailure{ID: ev.ID, Err: err.Error(), RetryAfter: backoff})
					d.opts.Metrics.failed(ev.Source, "transient")
					log.WarnContext(ctx, "inbox: hand-over failed; retrying", "source", ev.Source, "event_id", ev.EventID,
						"tenant_id", ev.TenantID.String(), "attempt", ev.Attempts, "retry_in", backoff.String(), "err", err)
				}
				if err != nil && !IsPermanent(err) {
					// Nothing after a failed event goes before it.
					for _, r := range group[i+1:] {
						released = append(released, r.ID)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	return res
}

// settle records a key's outcome. If it cannot, the leases run out and the
// events are delivered again: duplicates the workflow drops, never a loss.
func (d *Dispatcher) settle(ctx context.Context, delivered []int64, failed []store.InboxFailure, released []int64) {
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.store.SettleInbox(settleCtx, d.opts.Owner, delivered, failed, released); err != nil {
		d.opts.Logger.ErrorContext(ctx, "inbox: could not record a hand-over's outcome", "err", err,
			"delivered", len(delivered), "failed", len(failed))
	}
}

func (d *Dispatcher) deliver(ctx context.Context, ev store.InboxEvent) error {
	h, ok := d.handlers[ev.Source]
	if !ok {
		// A process of another version may know the source: retry, do not drop.
		return fmt.Errorf("inbox: no handler for source %q in this process", ev.Source)
	}
	sendCtx, cancel := context.WithTimeout(ctx, d.opts.SendTimeout)
	defer cancel()
	return h.Deliver(sendCtx, ev)
}

// backoff is MinBackoff·2^(attempts-1), capped, with ±20% jitter so keys that
// failed together do not retry together.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.opts.MinBackoff
	for i := 1; i < attempts && b < d.opts.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.opts.MaxBackoff)
	return time.Duration(float64(b) * (0.8 + 0.4*mrand.Float64()))
}

func (d *Dispatcher) measure(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	now := time.Now()
	b, err := d.store.InboxBacklog(c)
	out := &Backlog{Pending: b.Pending, MeasuredAt: now, Err: err}
	if !b.Oldest.IsZero() {
		out.OldestAge = max(now.Sub(b.Oldest), 0)
	}
	if err != nil && ctx.Err() == nil {
		d.opts.Logger.WarnContext(ctx, "inbox: backlog not measured", "err", err)
	}
	d.backlog.Store(out)
	d.opts.Metrics.backlog(out)
}

func (d *Dispatcher) purge(ctx context.Context) {
	for {
		n, err := d.store.PurgeInbox(ctx, time.Now().Add(-d.opts.Retention), 1000)
		if err != nil {
			if ctx.Err() == nil {
				d.opts.Logger.WarnContext(ctx, "inbox: purge failed", "err", err)
			}
			return
		}
		if n < 1000 {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
