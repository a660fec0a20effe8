package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/store"
)

// Outlet sends a conversation's messages to one channel (Slack, WhatsApp, …).
// Deliver owns the exactly-once discipline around it: each part's key is
// claimed in Postgres before Post and completed after; when an earlier
// attempt left a claim pending (it may have sent before losing the answer),
// Deliver asks Find before posting again.
//
// Post and Find return errors already classified for Temporal: a
// non-retryable ErrChannelGone when the connection can no longer be used,
// an application error with NextRetryDelay when the channel asks to slow
// down, and a plain (retryable) error otherwise.
type Outlet interface {
	// ConnectionID names the channel_connections row (its external ID) whose
	// secret sending to addr needs; "" when the channel has none.
	ConnectionID(addr Address) string
	// Split cuts text into the parts the channel accepts, in order.
	Split(text string) []string
	// Post sends one part and returns the channel's ID for it.
	Post(ctx context.Context, conn Connection, addr Address, part Part) (string, error)
	// Find reports whether a part carrying key was already sent, and its ID.
	Find(ctx context.Context, conn Connection, addr Address, key string) (string, bool, error)
}

// templateStandIn is an Outlet that may send the channel's approved
// template instead of a message (WhatsApp outside the 24-hour window).
type templateStandIn interface {
	// SentTemplate reports whether the part keyed key went out as the template.
	SentTemplate(ctx context.Context, conn Connection, key string) (bool, error)
}

// Connection is what an outlet sends with: the tenant's connection row and
// its secret (bot or access token), opened.
type Connection struct {
	Row   store.ChannelConnection
	Token string
}

// Part is one message to send.
type Part struct {
	Key   string // idempotency key: workflow ID, turn, kind, part number
	Kind  string // KindReply, KindNotice, ...
	Index int    // the part's position in the message
	Text  string
	// ReplyTo is the channel's ID of the message being answered (WhatsApp
	// shows the reply quoting it), or "".
	ReplyTo string
}

// ParsePartKey splits a part's key (see Deliver: workflow ID, turn, kind,
// part number) into its turn and kind. The workflow ID itself may contain
// ':', so the key is read from the right.
func ParsePartKey(key string) (workflowID string, turn int, kind string, part int, ok bool) {
	f := strings.Split(key, ":")
	if len(f) < 4 {
		return "", 0, "", 0, false
	}
	n := len(f)
	turn, err1 := strconv.Atoi(f[n-3])
	part, err2 := strconv.Atoi(f[n-1])
	if err1 != nil || err2 != nil || turn < 1 || part < 0 || f[n-2] == "" {
		return "", 0, "", 0, false
	}
	return strings.Join(f[:n-3], ":"), turn, f[n-2], part, true
}

// outlet returns the channel's outlet, or a non-retryable error for a channel
// this worker cannot send to.
func (a *Conversation) outlet(channel string) (Outlet, error) {
	if o, ok := a.Outlets[channel]; ok {
		return o, nil
	}
	if channel == store.ChannelSlack && a.Slack != nil {
		return SlackOutlet{Client: a.Slack}, nil
	}
	return nil, temporal.NewNonRetryableApplicationError("no outlet for channel "+channel, ErrChannelGone, nil)
}

// SlackOutlet posts into a Slack thread with the workspace's bot token. Each
// message carries its key in Slack message metadata, which Find looks for.
type SlackOutlet struct {
	Client *slack.Client
}

// ConnectionID is the Slack workspace (team) ID.
func (SlackOutlet) ConnectionID(addr Address) string { return addr.TeamID }

// Split cuts at slack.MaxPartChars, preferring paragraph and line breaks.
func (SlackOutlet) Split(text string) []string { return slack.SplitText(text, slack.MaxPartChars) }

// Post posts one part in the conversation's thread.
func (o SlackOutlet) Post(ctx context.Context, conn Connection, addr Address, part Part) (string, error) {
	ts, err := o.Client.PostMessage(ctx, conn.Token, slack.Outbound{Channel: addr.ChannelID, ThreadTS: addr.ThreadTS, Text: part.Text, Key: part.Key})
	if err != nil {
		return "", slackError("post reply", err)
	}
	return ts, nil
}

// Find looks for a message carrying key in the thread.
func (o SlackOutlet) Find(ctx context.Context, conn Connection, addr Address, key string) (string, bool, error) {
	ts, found, err := o.Client.FindByKey(ctx, conn.Token, addr.ChannelID, addr.ThreadTS, key)
	if err != nil {
		return "", false, slackError("find previous reply", err)
	}
	return ts, found, nil
}

// slackError decides what Temporal does after a failed Slack call.
func slackError(op string, err error) error {
	if slack.IsPermanent(err) {
		return temporal.NewNonRetryableApplicationError("slack refused to "+op+": "+slack.ErrorCode(err), ErrChannelGone, err)
	}
	if d, ok := slack.RetryAfter(err); ok {
		return temporal.NewApplicationErrorWithOptions("slack asked us to slow down", "SlackRateLimited",
			temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: d})
	}
	return fmt.Errorf("activities: deliver: %s: %w", op, err)
}

// PortalOutlet delivers to the portal's test chat. The channel has no
// connection and nothing outside to post to: the message Deliver records is
// the post, and the browser reads it from there. Its ID is the part's key,
// so every attempt names the same message.
type PortalOutlet struct{}

// ConnectionID is "": the portal chat needs no token.
func (PortalOutlet) ConnectionID(Address) string { return "" }

// Split keeps the text whole: the chat shows any length.
func (PortalOutlet) Split(text string) []string { return []string{text} }

// Post has nothing to send; the recorded message is the delivery.
func (PortalOutlet) Post(_ context.Context, _ Connection, _ Address, part Part) (string, error) {
	return "portal:" + part.Key, nil
}

// Find reports the part as sent: posting has no effect outside the record
// Deliver makes once the claim completes, so a pending claim only lacks that.
func (PortalOutlet) Find(_ context.Context, _ Connection, _ Address, key string) (string, bool, error) {
	return "portal:" + key, true, nil
}
