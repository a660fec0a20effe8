package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/ratelimit"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/workflows"
)

// Slack receives the Events API (and Socket Mode envelopes, through Handle).
// An event is acknowledged once it is durably recorded in the inbox, in the
// transaction that dedupes it by event ID; the inbox dispatcher hands it to
// its conversation afterwards (ConversationHandler), so a Temporal outage
// delays answers but never refuses or loses an event.
type Slack struct {
	SigningSecret        string
	Routes               *Routes
	Store                *store.Store
	Limiter              *ratelimit.Limiter
	Wake                 func() // tells the dispatcher an event is waiting (optional)
	Settings             workflows.Settings
	TenantRatePerMinute  int // defaults for tenants without their own
	ChannelRatePerMinute int
	Metrics              *Metrics
	Logger               *slog.Logger
	Escalations          *escalation.Service // staff replies in handoff threads (nil: none)
	Now                  func() time.Time
}

// Mount registers POST /webhooks/slack/events.
func (h *Slack) Mount(s *api.Server) {
	s.Registry.Handle(s.Public, http.MethodPost, "/webhooks/slack/events", authz.Public, nil, h.events)
}

// Outcomes of one event, as counted in konstruct_webhook_requests_total.
const (
	OutcomeAccepted      = "accepted"
	OutcomeRateLimited   = "rate_limited" // accepted, flagged over the limit
	OutcomeDuplicate     = "duplicate"
	OutcomeIgnored       = "ignored"
	OutcomeUnknownTeam   = "unknown_team"
	OutcomeSuspended     = "tenant_suspended"
	OutcomeChallenge     = "url_verification"
	OutcomeUnavailable   = "unavailable"
	OutcomeBadSignature  = "bad_signature"
	OutcomeMalformed     = "malformed"
	OutcomeTooLarge      = "too_large"
	OutcomeNotConfigured = "not_configured"
	OutcomeStaffReply    = "staff_reply" // a reply in an escalation's handoff thread
)

func (h *Slack) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Slack) events(c *gin.Context) {
	start := time.Now()
	defer func() { h.Metrics.acked("slack", time.Since(start).Seconds()) }()

	if n := retryNum(c.Request); n > 0 {
		c.Request = c.Request.WithContext(logging.With(c.Request.Context(), slog.Int("slack_retry_num", n),
			slog.String("slack_retry_reason", c.GetHeader("X-Slack-Retry-Reason"))))
	}
	body, ok := readBody(c, h.Metrics, "slack", "the event")
	if !ok {
		return
	}
	// Verify before parsing: nothing in an unsigned body is looked at.
	if err := slack.Verify(c.Request.Header, body, h.SigningSecret, h.now()); err != nil {
		if errors.Is(err, slack.ErrNoSigningSecret) {
			h.Metrics.outcome("slack", OutcomeNotConfigured)
			apiutil.Error(c, apperr.Unavailable("Slack events are not configured on this server (set KONSTRUCT_SLACK_SIGNING_SECRET)"))
			return
		}
		h.Metrics.outcome("slack", OutcomeBadSignature)
		h.Logger.WarnContext(c.Request.Context(), "slack event refused", "reason", err.Error(), "ip", c.ClientIP())
		apiutil.Error(c, apperr.Unauthorized("the request is not signed by Slack: "+verifyReason(err)).Wrap(err))
		return
	}
	env, err := slack.ParseEvent(body)
	if err != nil {
		h.Metrics.outcome("slack", OutcomeMalformed)
		apiutil.Error(c, apperr.BadRequest("malformed_event", "the body is not a Slack Events API payload").Wrap(err))
		return
	}
	if env.Type == slack.TypeURLVerification {
		h.Metrics.outcome("slack", OutcomeChallenge)
		c.JSON(http.StatusOK, gin.H{"challenge": env.Challenge})
		return
	}
	outcome, err := h.Handle(c.Request.Context(), env)
	h.Metrics.outcome("slack", outcome)
	switch outcome {
	case OutcomeUnavailable:
		// Postgres or Redis is down: the event is not recorded, and Slack
		// retries non-2xx answers.
		c.Header("Retry-After", "1")
		apiutil.Error(c, apperr.Unavailable("the event could not be recorded yet; Slack will retry").Wrap(err))
	case OutcomeUnknownTeam:
		// 200 so Slack stops retrying an event nobody here can answer.
		c.Header("X-Slack-No-Retry", "1")
		c.Status(http.StatusOK)
	default:
		c.Status(http.StatusOK)
	}
}

func verifyReason(err error) string {
	switch {
	case errors.Is(err, slack.ErrMissingSignature):
		return "missing X-Slack-Signature or X-Slack-Request-Timestamp"
	case errors.Is(err, slack.ErrStaleTimestamp):
		return "the timestamp is more than 5 minutes from now"
	case errors.Is(err, slack.ErrMalformedSignature), errors.Is(err, slack.ErrMalformedTimestamp):
		return "malformed signature headers"
	}
	return "signature mismatch"
}

// Handle records one parsed event for its conversation. Both the HTTP webhook
// and Socket Mode call it. The returned outcome says what happened; an error
// accompanies OutcomeUnavailable, after which the event must be redelivered.
func (h *Slack) Handle(ctx context.Context, env slack.Envelope) (string, error) {
	if env.Event == nil {
		return OutcomeIgnored, nil
	}
	msg := env.Event
	ctx = logging.With(ctx, slog.String("slack_team", msg.TeamID), slog.String("event_id", env.EventID))

	route, found, err := h.Routes.Lookup(ctx, store.ChannelSlack, msg.TeamID)
	if err != nil {
		return OutcomeUnavailable, err
	}
	if !found {
		h.Logger.InfoContext(ctx, "slack event from a workspace no tenant has connected; ignoring")
		return OutcomeUnknownTeam, nil
	}
	ctx = logging.With(ctx, slog.String("tenant_id", route.TenantID.String()), slog.String("agent_id", route.AgentID.String()))
	if !route.TenantActive {
		h.Logger.InfoContext(ctx, "slack event for a suspended tenant or disabled connection; ignoring")
		return OutcomeSuspended, nil
	}
	if outcome, handled, err := h.staffReply(ctx, route, msg); handled || err != nil {
		return outcome, err
	}

	in := workflows.ConversationInput{
		TenantID: route.TenantID.String(), AgentID: route.AgentID.String(), Channel: store.ChannelSlack,
		ExternalKey: workflows.SlackKey(msg.TeamID, msg.ChannelID, msg.ThreadRoot()),
		Address:     activities.Address{TeamID: msg.TeamID, ChannelID: msg.ChannelID, ThreadTS: msg.ThreadRoot()},
		UserRef:     msg.UserID, Settings: h.Settings,
	}
	inbound := workflows.Inbound{EventID: env.EventID, UserID: msg.UserID, Text: msg.Text, TS: msg.TS, ReceivedAt: h.now(),
		Media: slackMedia(msg.Files)}
	if inbound.EventID == "" {
		// Every Events API delivery has an ID; should one not, a message is
		// still identified by its channel and timestamp.
		inbound.EventID = "ts:" + msg.ChannelID + ":" + msg.TS
	}

	outcome := OutcomeAccepted
	over, err := overLimit(ctx, h.Limiter, route, h.TenantRatePerMinute, h.ChannelRatePerMinute, "slack:"+msg.TeamID+":"+msg.ChannelID)
	if err != nil {
		return OutcomeUnavailable, err
	}
	if over != nil {
		inbound.OverLimit = over
		outcome = OutcomeRateLimited
		h.Metrics.limited(store.ChannelSlack, over.Scope)
		h.Logger.InfoContext(ctx, "slack message over the rate limit", "scope", over.Scope, "per_minute", over.PerMinute,
			"retry_after", over.RetryAfter.String())
	}

	recorded, err := RecordConversationEvent(ctx, h.Store, route.TenantID, store.SourceSlack, in, inbound)
	if err != nil {
		h.Logger.ErrorContext(ctx, "could not record the event; asking Slack to retry", "err", err)
		return OutcomeUnavailable, err
	}
	if !recorded {
		// Slack retried an event it did not see acknowledged, or sent it twice.
		return OutcomeDuplicate, nil
	}
	if h.Wake != nil {
		h.Wake()
	}
	return outcome, nil
}

// slackMedia describes a message's files for the conversation, which
// downloads them (FetchMedia) before the turn.
func slackMedia(files []slack.File) []activities.MediaRef {
	var out []activities.MediaRef
	for _, f := range files {
		ref := activities.MediaRef{Source: store.SourceSlack, ID: f.ID, MimeType: f.MimeType, Size: f.Size, Name: f.Name}
		if f.Downloadable() {
			ref.URL = f.URL // "" for a stub: FetchMedia asks files.info
		}
		out = append(out, ref)
	}
	return out
}

// staffReply takes a message in a thread that is an escalation's handoff:
// a staff member's reply for the end user (the bot's own posts never get
// here; ParseEvent drops them). A message in another channel thread that
// does not mention the bot is ignored; one that mentions it, outside a
// handoff thread, is a conversation as before (handled is false).
func (h *Slack) staffReply(ctx context.Context, route Route, msg *slack.Message) (string, bool, error) {
	if msg.ThreadTS == "" || msg.ThreadTS == msg.TS || msg.Kind == slack.KindDirect {
		return "", false, nil
	}
	if h.Escalations == nil {
		if msg.Kind == slack.KindThreadReply {
			return OutcomeIgnored, true, nil
		}
		return "", false, nil
	}
	found, recorded, err := h.Escalations.SlackReply(ctx, route.TenantID, msg.TeamID, msg.ChannelID, msg.ThreadTS, msg.TS, msg.UserID, msg.Text)
	switch {
	case err != nil:
		h.Logger.ErrorContext(ctx, "could not record a reply in a handoff thread; asking Slack to retry", "err", err)
		return OutcomeUnavailable, true, err
	case found && recorded:
		return OutcomeStaffReply, true, nil
	case found:
		// The same reply's other event (app_mention and message), or the
		// escalation is over: nothing more to do.
		return OutcomeDuplicate, true, nil
	case msg.Kind == slack.KindThreadReply:
		return OutcomeIgnored, true, nil // an ordinary thread of the workspace
	}
	return "", false, nil
}

// SocketHandler adapts Handle for Socket Mode: returning an error leaves the
// envelope unacknowledged, so Slack redelivers it.
func (h *Slack) SocketHandler(ctx context.Context, env slack.Envelope, _ []byte) error {
	outcome, err := h.Handle(ctx, env)
	h.Metrics.outcome("slack_socket", outcome)
	if outcome == OutcomeUnavailable {
		return err
	}
	return nil
}

// retryNum reads X-Slack-Retry-Num, for logs.
func retryNum(r *http.Request) int {
	n, _ := strconv.Atoi(r.Header.Get("X-Slack-Retry-Num"))
	return n
}
