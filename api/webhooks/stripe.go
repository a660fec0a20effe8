package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/store"
)

// StripeTolerance is how far a Stripe-Signature timestamp may be from now.
const StripeTolerance = 300 * time.Second

// Outcomes of a Stripe event beyond the shared ones.
const (
	OutcomeAPIVersion    = "api_version_mismatch"
	OutcomeUnknownTenant = "unknown_tenant"
)

// Stripe receives Stripe's webhook events: the signature is verified before
// the body is parsed, the tenant resolved, the event recorded in the inbox
// (deduped by event ID) and acknowledged; the inbox dispatcher then hands it
// to billing.Service.Deliver, which applies it.
type Stripe struct {
	Secret  string // KONSTRUCT_STRIPE_WEBHOOK_SECRET (whsec_...)
	Billing *billing.Service
	Store   *store.Store
	Wake    func()
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Mount registers POST /webhooks/stripe.
func (h *Stripe) Mount(s *api.Server) {
	s.Registry.Handle(s.Public, http.MethodPost, "/webhooks/stripe", authz.Public, nil, h.events)
}

func (h *Stripe) events(c *gin.Context) {
	start := time.Now()
	defer func() { h.Metrics.acked("stripe", time.Since(start).Seconds()) }()
	ctx := c.Request.Context()

	body, ok := readBody(c, h.Metrics, "stripe", "the event")
	if !ok {
		return
	}
	if h.Secret == "" {
		h.Metrics.outcome("stripe", OutcomeNotConfigured)
		apiutil.Error(c, apperr.Unavailable("Stripe events are not configured on this server (set KONSTRUCT_STRIPE_WEBHOOK_SECRET)"))
		return
	}
	// Verify before parsing. The signature is checked on its own (not by
	// webhook.ConstructEvent, which also refuses an api_version other than
	// stripe-go's), so a version mismatch is reported as what it is.
	if err := webhook.ValidatePayloadWithTolerance(body, c.GetHeader("Stripe-Signature"), h.Secret, StripeTolerance); err != nil {
		h.Metrics.outcome("stripe", OutcomeBadSignature)
		h.Logger.WarnContext(ctx, "stripe event refused", "reason", err.Error(), "ip", c.ClientIP())
		apiutil.Error(c, apperr.Unauthorized("the request is not signed by Stripe: "+stripeVerifyReason(err)).Wrap(err))
		return
	}
	ev, err := billing.ParseEvent(body)
	if err != nil {
		h.Metrics.outcome("stripe", OutcomeMalformed)
		apiutil.Error(c, apperr.BadRequest("malformed_event", "the body is not a Stripe event").Wrap(err))
		return
	}
	ctx = logging.With(ctx, slog.String("stripe_event", ev.ID), slog.String("stripe_type", string(ev.Type)))
	if ev.APIVersion != billing.APIVersion {
		// Refused (Stripe retries, and shows the failures on the endpoint)
		// rather than applied in a shape this version does not decode.
		h.Metrics.outcome("stripe", OutcomeAPIVersion)
		h.Logger.ErrorContext(ctx, "stripe event in an API version Konstruct does not read: create the webhook endpoint with API version "+
			billing.APIVersion, "api_version", ev.APIVersion, "want", billing.APIVersion)
		apiutil.Error(c, apperr.BadRequest("api_version_mismatch", "the event is rendered in Stripe API version "+ev.APIVersion+
			"; Konstruct reads "+billing.APIVersion+": create the webhook endpoint with that version"))
		return
	}
	tenantID, found, err := h.Billing.ResolveTenant(ctx, ev)
	if err != nil {
		h.Metrics.outcome("stripe", OutcomeUnavailable)
		c.Header("Retry-After", "1")
		apiutil.Error(c, apperr.Unavailable("the event could not be recorded yet; Stripe will retry").Wrap(err))
		return
	}
	if !found {
		// Acknowledged: no tenant here will ever match it (another
		// platform's customer on a shared account, or a deleted tenant).
		h.Metrics.outcome("stripe", OutcomeUnknownTenant)
		h.Logger.InfoContext(ctx, "stripe event for no known tenant; acknowledged and ignored")
		c.Status(http.StatusOK)
		return
	}
	ctx = logging.With(ctx, slog.String("tenant_id", tenantID.String()))
	outcome, err := h.record(ctx, tenantID, ev.ID, body)
	h.Metrics.outcome("stripe", outcome)
	if err != nil {
		h.Logger.ErrorContext(ctx, "could not record the stripe event; asking Stripe to retry", "err", err)
		c.Header("Retry-After", "1")
		apiutil.Error(c, apperr.Unavailable("the event could not be recorded yet; Stripe will retry").Wrap(err))
		return
	}
	c.Status(http.StatusOK)
}

// record writes the verified event to the inbox, keyed per tenant so one
// tenant's events are applied one at a time in arrival order (their effect
// does not depend on it: events carry `created`).
func (h *Stripe) record(ctx context.Context, tenantID uuid.UUID, eventID string, body []byte) (string, error) {
	recorded, err := h.Store.RecordInbound(ctx, tenantID, store.InboxEvent{Source: store.SourceStripe, EventID: eventID,
		OrderingKey: "stripe:" + tenantID.String(), Payload: body})
	if err != nil {
		return OutcomeUnavailable, err
	}
	if !recorded {
		return OutcomeDuplicate, nil
	}
	if h.Wake != nil {
		h.Wake()
	}
	return OutcomeAccepted, nil
}

func stripeVerifyReason(err error) string {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return "missing Stripe-Signature header"
	case errors.Is(err, webhook.ErrInvalidHeader):
		return "malformed Stripe-Signature header"
	case errors.Is(err, webhook.ErrTooOld):
		return "the timestamp is more than 5 minutes from now"
	}
	return "signature mismatch"
}
