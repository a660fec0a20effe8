package main

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/konstruct/konstruct/internal/app"
)

// runParts runs the HTTP server (with Slack Socket Mode when configured, and
// the inbox dispatcher) and/or the Temporal worker until ctx ends or one of them fails.
func runParts(ctx context.Context, a *app.App, http, worker bool) error {
	g, ctx := errgroup.WithContext(ctx)
	if http {
		g.Go(func() error { return a.ListenAndServe(ctx, a.Config.HTTPAddr, a.HTTPServer()) })
		g.Go(func() error { return a.RunSlackSocketMode(ctx) })
		g.Go(func() error { return a.RunInbox(ctx) }) // hands recorded webhook events to Temporal
	}
	if worker {
		w := a.Worker()
		if err := w.Start(); err != nil {
			return fmt.Errorf("worker: start: %w", err)
		}
		a.Logger.InfoContext(ctx, "temporal worker started", "task_queue", a.Config.TemporalTaskQueue,
			"address", a.Config.TemporalAddress, "namespace", a.Config.TemporalNamespace)
		if !http && a.Config.WorkerAddr != "" {
			// A worker on its own serves its metrics; with the HTTP server
			// (konstruct dev) they are on its /metrics already.
			g.Go(func() error { return a.ListenAndServe(ctx, a.Config.WorkerAddr, a.WorkerEndpoints()) })
		}
		g.Go(func() error {
			<-ctx.Done()
			w.Stop() // waits for running activities, within the SDK's stop timeout
			return nil
		})
	}
	return g.Wait()
}
