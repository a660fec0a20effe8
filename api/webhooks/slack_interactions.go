package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/store"
)

// SlackInteractions receives Slack's interactivity requests: the Take it
// and Resolve buttons of a handoff message. Like an event, a click is
// verified before its body is parsed, recorded in the inbox and
// acknowledged; the conversation workflow acts on it from there.
type SlackInteractions struct {
	SigningSecret string
	Routes        *Routes
	Escalations   *escalation.Service
	Metrics       *Metrics
	Logger        *slog.Logger
	Now           func() time.Time
}

// Mount registers POST /webhooks/slack/interactions.
func (h *SlackInteractions) Mount(s *api.Server) {
	s.Registry.Handle(s.Public, http.MethodPost, "/webhooks/slack/interactions", authz.Public, nil, h.interactions)
}

func (h *SlackInteractions) interactions(c *gin.Context) {
	start := time.Now()
	defer func() { h.Metrics.acked("slack_interactions", time.Since(start).Seconds()) }()
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	body, ok := readBody(c, h.Metrics, "slack_interactions", "the interaction")
	if !ok {
		return
	}
	// Verify before parsing: nothing in an unsigned body is looked at.
	if err := slack.Verify(c.Request.Header, body, h.SigningSecret, now()); err != nil {
		if errors.Is(err, slack.ErrNoSigningSecret) {
			h.Metrics.outcome("slack_interactions", OutcomeNotConfigured)
			apiutil.Error(c, apperr.Unavailable("Slack interactivity is not configured on this server (set KONSTRUCT_SLACK_SIGNING_SECRET)"))
			return
		}
		h.Metrics.outcome("slack_interactions", OutcomeBadSignature)
		h.Logger.WarnContext(c.Request.Context(), "slack interaction refused", "reason", err.Error(), "ip", c.ClientIP())
		apiutil.Error(c, apperr.Unauthorized("the request is not signed by Slack: "+verifyReason(err)).Wrap(err))
		return
	}
	in, err := slack.ParseInteraction(body)
	if err != nil {
		h.Metrics.outcome("slack_interactions", OutcomeMalformed)
		apiutil.Error(c, apperr.BadRequest("malformed_interaction",
			"the body is not a Slack interaction (a form with a JSON payload field)").Wrap(err))
		return
	}
	outcome, err := h.Handle(c.Request.Context(), in)
	h.Metrics.outcome("slack_interactions", outcome)
	switch outcome {
	case OutcomeMalformed:
		apiutil.Error(c, err)
	case OutcomeUnavailable:
		h.Logger.ErrorContext(c.Request.Context(), "could not record a slack button click", "err", err)
		apiutil.Error(c, apperr.Unavailable("the click could not be recorded; try again").Wrap(err))
	default:
		c.Status(http.StatusOK)
	}
}

// Handle records the clicks of one parsed interaction. Both the HTTP
// endpoint and Socket Mode call it. OutcomeUnavailable (with its error)
// means the click must be delivered again; OutcomeMalformed that it never
// can be recorded.
func (h *SlackInteractions) Handle(ctx context.Context, in slack.Interaction) (string, error) {
	outcome := OutcomeIgnored
	for _, click := range in.Clicks {
		kind := map[string]string{slack.ActionClaim: escalation.ActionClaim, slack.ActionResolve: escalation.ActionResolve}[click.ActionID]
		if kind == "" {
			continue // a button of another app or message
		}
		cctx := logging.With(ctx, slog.String("slack_team", click.TeamID), slog.String("escalation_id", click.Value))
		route, found, err := h.Routes.Lookup(cctx, store.ChannelSlack, click.TeamID)
		if err != nil {
			return OutcomeUnavailable, err
		}
		if !found || !route.TenantActive {
			h.Logger.InfoContext(cctx, "slack button from a workspace no active tenant has connected; ignoring")
			continue
		}
		recorded, err := h.Escalations.SlackButton(cctx, route.TenantID, click.Value, kind, click.TeamID, click.UserID,
			click.UserName, click.ActionTS)
		if apperr.From(err).Status == http.StatusBadRequest {
			return OutcomeMalformed, err
		}
		if err != nil {
			return OutcomeUnavailable, err
		}
		if recorded {
			outcome = OutcomeAccepted
			h.Logger.InfoContext(cctx, "slack button recorded", "action", kind, "user", click.UserID)
		}
	}
	return outcome, nil
}

// SocketHandler adapts Handle for Socket Mode: an error leaves the envelope
// unacknowledged, so Slack redelivers it (a malformed click is dropped).
func (h *SlackInteractions) SocketHandler(ctx context.Context, in slack.Interaction) error {
	outcome, err := h.Handle(ctx, in)
	h.Metrics.outcome("slack_interactions_socket", outcome)
	if outcome == OutcomeUnavailable {
		return err
	}
	return nil
}
