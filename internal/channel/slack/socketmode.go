package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// EventHandler handles one Events API envelope. raw is the payload exactly as
// Slack sent it. Returning nil acknowledges the envelope; returning an error
// leaves it unacknowledged so that Slack delivers it again.
type EventHandler func(ctx context.Context, env Envelope, raw []byte) error

// socketConcurrency bounds the envelopes handled at once: enough to keep
// SignalWithStart round trips overlapped, small enough to push back when the
// handler is slow (unacked envelopes are redelivered by Slack).
const socketConcurrency = 32

// SocketMode receives Events API envelopes over Socket Mode, an alternative
// ingress to the webhook for workspaces (or development setups) without a
// public URL. It uses slack-go's socketmode client, which calls
// apps.connections.open, dials the WebSocket, answers pings and reconnects.
type SocketMode struct {
	client  *socketmode.Client
	handler EventHandler
	log     *slog.Logger
	// interactions takes "interactive" envelopes (button clicks); nil
	// acknowledges and drops them.
	interactions func(ctx context.Context, in Interaction) error
}

// OnInteraction hands "interactive" envelopes (button clicks) to fn, which
// must be set before Run. An envelope is acknowledged when fn returns nil;
// an error leaves it unacknowledged, so Slack redelivers it.
func (s *SocketMode) OnInteraction(fn func(ctx context.Context, in Interaction) error) {
	s.interactions = fn
}

// NewSocketMode returns a Socket Mode ingress for the app-level token (xapp-…)
// against the Web API at apiURL (DefaultAPIURL when empty). Each events_api
// envelope is parsed with ParseEvent and passed to handler, ignored envelopes
// included, exactly as the webhook does. A nil logger uses slog.Default().
func NewSocketMode(appToken string, apiURL string, handler func(ctx context.Context, env Envelope, raw []byte) error, logger *slog.Logger) *SocketMode {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if logger == nil {
		logger = slog.Default()
	}
	api := slackapi.New("", slackapi.OptionAppLevelToken(appToken), slackapi.OptionAPIURL(apiURL))
	return &SocketMode{
		client:  socketmode.New(api),
		handler: handler,
		log:     logger.With("component", "slack.socketmode"),
	}
}

// Run connects and handles envelopes until ctx ends, then waits for the
// handlers in flight and returns nil. It returns an error early only when
// slack-go gives up, e.g. on an invalid app token. Run may be called once.
func (s *SocketMode) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	runErr := make(chan error, 1)
	go func() { runErr <- s.client.RunContext(ctx) }()

	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, socketConcurrency)

	for {
		select {
		case <-ctx.Done():
			<-runErr
			return nil
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack: socket mode: %w", err)
		case evt := <-s.client.Events:
			s.dispatch(ctx, evt, sem, &wg)
		}
	}
}

func (s *SocketMode) dispatch(ctx context.Context, evt socketmode.Event, sem chan struct{}, wg *sync.WaitGroup) {
	switch evt.Type {
	case socketmode.EventTypeEventsAPI:
		if evt.Request == nil {
			return
		}
		s.handle(ctx, evt.Request.EnvelopeID, evt.Request.Payload, sem, wg)
	case socketmode.EventTypeErrorBadMessage:
		// slack-go rejects events_api payloads whose inner event type it does
		// not know; ParseEvent does not, so give those the normal path.
		bad, _ := evt.Data.(*socketmode.ErrorBadMessage)
		if bad == nil {
			return
		}
		var req socketmode.Request
		if err := json.Unmarshal(bad.Message, &req); err == nil && req.Type == socketmode.RequestTypeEventsAPI && req.EnvelopeID != "" {
			s.handle(ctx, req.EnvelopeID, req.Payload, sem, wg)
			return
		}
		s.log.Warn("slack socket mode: unreadable message", "err", bad.Cause)
	case socketmode.EventTypeInteractive:
		if evt.Request == nil {
			return
		}
		if s.interactions == nil {
			s.ack(ctx, evt.Request.EnvelopeID)
			return
		}
		s.interact(ctx, evt.Request.EnvelopeID, evt.Request.Payload, sem, wg)
	case socketmode.EventTypeSlashCommand:
		// Not used by Konstruct; acknowledge so that Slack does not retry.
		if evt.Request != nil {
			s.ack(ctx, evt.Request.EnvelopeID)
		}
	case socketmode.EventTypeConnecting:
		s.log.Debug("slack socket mode: connecting")
	case socketmode.EventTypeConnected:
		s.log.Info("slack socket mode: connected")
	case socketmode.EventTypeConnectionError:
		s.log.Warn("slack socket mode: connection error", "err", connErr(evt.Data))
	case socketmode.EventTypeInvalidAuth:
		s.log.Error("slack socket mode: invalid app token")
	case socketmode.EventTypeIncomingError:
		s.log.Warn("slack socket mode: read error", "err", connErr(evt.Data))
	case socketmode.EventTypeErrorWriteFailed:
		if f, ok := evt.Data.(*socketmode.ErrorWriteFailed); ok {
			s.log.Warn("slack socket mode: ack not written; Slack will redeliver", "err", f.Cause)
		}
	}
}

// handle parses and hands one events_api payload to the handler in its own
// goroutine (bounded by sem), acknowledging it when the handler succeeds.
func (s *SocketMode) handle(ctx context.Context, envelopeID string, payload json.RawMessage, sem chan struct{}, wg *sync.WaitGroup) {
	env, err := ParseEvent(payload)
	if err != nil {
		// It will not parse any better next time: ack it so Slack stops.
		s.log.Warn("slack socket mode: dropping unparsable envelope", "envelope_id", envelopeID, "err", err)
		s.ack(ctx, envelopeID)
		return
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	wg.Go(func() {
		defer func() { <-sem }()
		if err := s.handler(ctx, env, payload); err != nil {
			s.log.Warn("slack socket mode: handler failed; not acknowledged",
				"envelope_id", envelopeID, "event_id", env.EventID, "err", err)
			return
		}
		s.ack(ctx, envelopeID)
	})
}

// interact parses one interactive payload and hands it to the interactions
// handler in its own goroutine (bounded by sem), acknowledging it when the
// handler succeeds.
func (s *SocketMode) interact(ctx context.Context, envelopeID string, payload json.RawMessage, sem chan struct{}, wg *sync.WaitGroup) {
	in, err := ParseInteractionPayload(payload)
	if err != nil {
		s.log.Warn("slack socket mode: dropping unparsable interaction", "envelope_id", envelopeID, "err", err)
		s.ack(ctx, envelopeID)
		return
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	wg.Go(func() {
		defer func() { <-sem }()
		if err := s.interactions(ctx, in); err != nil {
			s.log.Warn("slack socket mode: interaction not recorded; not acknowledged", "envelope_id", envelopeID, "err", err)
			return
		}
		s.ack(ctx, envelopeID)
	})
}

func (s *SocketMode) ack(ctx context.Context, envelopeID string) {
	if err := s.client.AckCtx(ctx, envelopeID, nil); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("slack socket mode: ack failed", "envelope_id", envelopeID, "err", err)
	}
}

func connErr(data any) any {
	switch d := data.(type) {
	case *slackapi.ConnectionErrorEvent:
		return d.ErrorObj
	case *slackapi.IncomingEventError:
		return d.ErrorObj
	}
	return data
}
