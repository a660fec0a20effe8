package webhooks

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/ratelimit"
	"github.com/konstruct/konstruct/workflows"
)

// readBody reads a webhook's raw body (size-limited by the server's body
// limit) for its signature check. When it cannot, it answers the request —
// 413 over the limit, 400 otherwise — counts the outcome for source, and
// returns false. what names the payload in the answer ("the event").
func readBody(c *gin.Context, m *Metrics, source, what string) ([]byte, bool) {
	body, err := io.ReadAll(c.Request.Body)
	if err == nil {
		return body, true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		m.outcome(source, OutcomeTooLarge)
		apiutil.Error(c, apperr.New(http.StatusRequestEntityTooLarge, "body_too_large", what+" is larger than the limit"))
		return nil, false
	}
	apiutil.Error(c, apperr.BadRequest("unreadable_body", "the request body could not be read").Wrap(err))
	return nil, false
}

// overLimit counts one message against its tenant's per-minute limit, then
// its channel's (channelKey: a Slack channel, a WhatsApp number's end user),
// each the route's own or else the default. It returns what the message is
// over, or nil.
func overLimit(ctx context.Context, l *ratelimit.Limiter, route Route, tenantDefault, channelDefault int, channelKey string) (*workflows.OverLimit, error) {
	tenantRate := route.TenantRatePerMinute
	if tenantRate == 0 {
		tenantRate = tenantDefault
	}
	channelRate := route.ChannelRatePerMinute
	if channelRate == 0 {
		channelRate = channelDefault
	}
	res, err := l.Allow(ctx, "tenant:"+route.TenantID.String(), tenantRate)
	if err != nil {
		return nil, err
	}
	if !res.Allowed {
		return &workflows.OverLimit{Scope: "tenant", PerMinute: tenantRate, RetryAfter: res.RetryAfter}, nil
	}
	res, err = l.Allow(ctx, "channel:"+channelKey, channelRate)
	if err != nil {
		return nil, err
	}
	if !res.Allowed {
		return &workflows.OverLimit{Scope: "channel", PerMinute: channelRate, RetryAfter: res.RetryAfter}, nil
	}
	return nil, nil
}
