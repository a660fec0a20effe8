package slack_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

const (
	appToken = "xapp-1-test"
	wait     = 10 * time.Second
)

type delivery struct {
	env slack.Envelope
	raw []byte
}

// startSocketMode runs a SocketMode against a fake and returns the fake, the
// deliveries the handler saw and a function that stops Run and returns its error.
func startSocketMode(t *testing.T, handler func(slack.Envelope) error) (*fakeslack.Server, <-chan delivery, func() error) {
	t.Helper()
	fake := fakeslack.New(t)
	fake.AddAppToken(appToken)
	got := make(chan delivery, 16)
	h := func(ctx context.Context, env slack.Envelope, raw []byte) error {
		got <- delivery{env, raw}
		return handler(env)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	sm := slack.NewSocketMode(appToken, fake.URL(), h, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sm.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(wait):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	fake.WaitForSocket(t, 1, wait)
	return fake, got, stop
}

func next(t *testing.T, ch <-chan delivery) delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(wait):
		t.Fatal("handler not called")
		return delivery{}
	}
}

func TestSocketModeDeliversAndAcks(t *testing.T) {
	fake, got, stop := startSocketMode(t, func(slack.Envelope) error { return nil })

	payload := fakeslack.AppMention("T1", "C1", "U1", "<@UBOT> hi there", "1700000000.000100", "", "EvSOCK1")
	id, err := fake.PushEvent(payload)
	require.NoError(t, err)

	d := next(t, got)
	require.Equal(t, "EvSOCK1", d.env.EventID)
	require.NotNil(t, d.env.Event)
	require.Equal(t, "hi there", d.env.Event.Text)
	require.Equal(t, slack.KindAppMention, d.env.Event.Kind)
	require.JSONEq(t, string(payload), string(d.raw), "raw is the Events API payload, as on the webhook")

	require.JSONEq(t, "null", string(fake.WaitForAck(t, id, wait)))
	require.NoError(t, stop(), "Run returns nil when its context ends")
}

func TestSocketModeHandlerErrorIsNotAcked(t *testing.T) {
	fake, got, _ := startSocketMode(t, func(env slack.Envelope) error {
		if env.EventID == "EvFAIL" {
			return errors.New("temporal unavailable")
		}
		return nil
	})

	failID, err := fake.PushEvent(fakeslack.DirectMessage("T1", "D1", "U1", "one", "1700000000.000100", "", "EvFAIL"))
	require.NoError(t, err)
	require.Equal(t, "EvFAIL", next(t, got).env.EventID)

	okID, err := fake.PushEvent(fakeslack.DirectMessage("T1", "D1", "U1", "two", "1700000000.000200", "", "EvOK"))
	require.NoError(t, err)
	require.Equal(t, "EvOK", next(t, got).env.EventID)
	fake.WaitForAck(t, okID, wait)
	require.False(t, fake.Acked(failID), "a failed envelope stays unacknowledged for Slack to redeliver")

	// Slack's redelivery (retry_attempt 1) takes the same path; the handler
	// still fails, so it stays unacknowledged.
	retryID, err := fake.PushEventRetry(fakeslack.DirectMessage("T1", "D1", "U1", "one", "1700000000.000100", "", "EvFAIL"), 1, "timeout")
	require.NoError(t, err)
	require.Equal(t, "EvFAIL", next(t, got).env.EventID)
	okID2, err := fake.PushEvent(fakeslack.DirectMessage("T1", "D1", "U1", "three", "1700000000.000300", "", "EvOK2"))
	require.NoError(t, err)
	next(t, got)
	fake.WaitForAck(t, okID2, wait)
	require.False(t, fake.Acked(retryID))
}

func TestSocketModeIgnoredAndUnknownEventsAreAcked(t *testing.T) {
	fake, got, _ := startSocketMode(t, func(slack.Envelope) error { return nil })

	// A bot message: parsed, ignored by ParseEvent, still handed over and acked.
	id, err := fake.PushEvent(fakeslack.DirectMessage("T1", "D1", "UB", "beep", "1700000000.000100", "", "EvBOT", fakeslack.WithBotID("B9")))
	require.NoError(t, err)
	d := next(t, got)
	require.Nil(t, d.env.Event)
	require.Equal(t, slack.IgnoredBotMessage, d.env.IgnoredReason)
	fake.WaitForAck(t, id, wait)

	// An inner event type slack-go does not know still takes the same path.
	id, err = fake.PushEvent([]byte(`{"type":"event_callback","team_id":"T1","event_id":"EvNEW","event":{"type":"brand_new_event","x":1}}`))
	require.NoError(t, err)
	d = next(t, got)
	require.Equal(t, "EvNEW", d.env.EventID)
	require.Equal(t, slack.IgnoredEventType, d.env.IgnoredReason)
	fake.WaitForAck(t, id, wait)
}

func TestSocketModeReconnects(t *testing.T) {
	fake, got, _ := startSocketMode(t, func(slack.Envelope) error { return nil })

	fake.Disconnect()
	fake.WaitForSocket(t, 2, wait) // PushEvent uses the newest connection

	id, err := fake.PushEvent(fakeslack.DirectMessage("T1", "D1", "U1", "after reconnect", "1700000000.000100", "", "EvRE"))
	require.NoError(t, err)
	require.Equal(t, "EvRE", next(t, got).env.EventID)
	fake.WaitForAck(t, id, wait)
}

func TestSocketModeInvalidAppToken(t *testing.T) {
	fake := fakeslack.New(t)
	sm := slack.NewSocketMode("xapp-wrong", fake.URL(), func(context.Context, slack.Envelope, []byte) error { return nil },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := sm.Run(ctx)
	require.Error(t, err)
	require.ErrorContains(t, err, "invalid_auth")
	require.NoError(t, ctx.Err(), "Run gave up on its own")
}

// A click on a handoff button arrives over Socket Mode as an "interactive"
// envelope: handed to the interactions handler and acknowledged once it
// succeeds; a failure leaves it for Slack to redeliver.
func TestSocketModeInteractions(t *testing.T) {
	fake := fakeslack.New(t)
	fake.AddAppToken(appToken)
	clicks := make(chan slack.ButtonClick, 4)
	fail := true
	sm := slack.NewSocketMode(appToken, fake.URL(), func(context.Context, slack.Envelope, []byte) error { return nil },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	sm.OnInteraction(func(_ context.Context, in slack.Interaction) error {
		clicks <- in.Clicks[0]
		if fail {
			fail = false
			return errors.New("postgres down")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sm.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	fake.WaitForSocket(t, 1, wait)

	payload := fakeslack.ButtonClickPayload("T1", "U0STAFF", "jane", "C0SUPPORT", "1700000000.000100", slack.ActionResolve, "e1", "1700000001.1")
	first, err := fake.PushInteractive(payload)
	require.NoError(t, err)
	select {
	case c := <-clicks:
		require.Equal(t, "e1", c.Value)
		require.Equal(t, slack.ActionResolve, c.ActionID)
	case <-time.After(wait):
		t.Fatal("interaction not handled")
	}
	again, err := fake.PushInteractive(payload)
	require.NoError(t, err)
	<-clicks
	fake.WaitForAck(t, again, wait)
	require.False(t, fake.Acked(first), "a failed interaction stays unacknowledged")
}
