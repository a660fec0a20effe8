package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/api/webhooks"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/inbox"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/workflows"
)

// Inbox is the dispatcher handing recorded webhook events to Temporal; every
// serve process runs one (RunInbox), and they share the work through leases.
func (a *App) Inbox() *inbox.Dispatcher {
	a.inboxOnce.Do(func() {
		conv := webhooks.ConversationHandler{Sender: workflows.Starter{Client: a.Temporal, TaskQueue: a.Config.TemporalTaskQueue}}
		a.inbox = inbox.New(a.Store, map[string]inbox.Handler{
			store.SourceSlack:      conv,
			store.SourceWhatsApp:   conv,
			store.SourceEscalation: escalation.InboxHandler{Client: a.Temporal},
			store.SourceStripe:     a.Billing(),
			store.SourcePortal:     conv, // the portal's test chat
		}, inbox.Options{
			Lease:   a.Config.InboxLease,
			Metrics: inbox.NewMetrics(a.Metrics),
			Logger:  a.Logger.With("component", "inbox"),
		})
	})
	return a.inbox
}

// RunInbox dispatches until ctx ends.
func (a *App) RunInbox(ctx context.Context) error { return a.Inbox().Run(ctx) }

// inboxCheck reports the backlog in /readyz: degraded (not down) while the
// oldest event waits longer than KONSTRUCT_INBOX_DEGRADED_AFTER, since the API
// still records every event; only Temporal catching up cures it.
func (a *App) inboxCheck() api.Check {
	d := a.Inbox()
	return api.Check{
		Name:     "inbox",
		Degrades: true,
		Probe: func(context.Context) error {
			b := d.Backlog()
			switch {
			case b == nil:
				return nil // not measured yet: the process is starting
			case b.Err != nil:
				return fmt.Errorf("backlog not measured: %w", b.Err)
			case time.Since(b.MeasuredAt) > time.Minute:
				return errors.New("backlog not measured for over a minute")
			case b.OldestAge > a.Config.InboxDegradedAfter:
				return fmt.Errorf("%d events pending, the oldest %.0fs old", b.Pending, b.OldestAge.Seconds())
			}
			return nil
		},
		Detail: func() any {
			b := d.Backlog()
			if b == nil {
				return map[string]any{"pending": 0, "oldest_age_seconds": 0}
			}
			return map[string]any{"pending": b.Pending, "oldest_age_seconds": b.OldestAge.Seconds(), "measured_at": b.MeasuredAt.UTC()}
		},
	}
}
