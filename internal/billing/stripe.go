package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/uuid"
	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
)

// APIVersion is the Stripe API version stripe-go v76 speaks; the webhook
// endpoint must be created with it, or its events do not decode.
const APIVersion = stripe.APIVersion

// Stripe calls the Stripe API (or stripe-mock, through KONSTRUCT_STRIPE_API_URL).
type Stripe struct {
	api *client.API
}

// NewStripe returns a client for key; apiURL "" is Stripe's own.
func NewStripe(key, apiURL string, hc *http.Client, logger *slog.Logger) *Stripe {
	cfg := &stripe.BackendConfig{HTTPClient: hc, MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelWarn}}
	if apiURL != "" {
		cfg.URL = stripe.String(strings.TrimRight(apiURL, "/"))
	}
	api := &client.API{}
	api.Init(key, stripe.NewBackendsWithConfig(cfg))
	return &Stripe{api: api}
}

// stripeErr turns a Stripe failure into a safe client error: Stripe's own
// message for a request it refused, unavailable otherwise.
func stripeErr(op string, err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != http.StatusTooManyRequests {
		return apperr.New(http.StatusBadGateway, "stripe_refused", "Stripe refused to "+op+": "+se.Msg).Wrap(err)
	}
	return apperr.Unavailable("Stripe could not be reached to " + op + "; try again in a minute").Wrap(err)
}

// Checkout starts a Stripe Checkout session (mode=subscription) for planID
// and returns its URL. The tenant's Stripe customer is created on first use
// (with the tenant in its metadata) and linked before the session exists, so
// every later event resolves to the tenant; the session carries the tenant
// as client_reference_id and in the subscription's metadata too. A tenant
// that already pays changes plans in the Billing Portal instead.
func (s *Service) Checkout(ctx context.Context, p authz.Principal, tenantID uuid.UUID, planID string) (string, error) {
	if s.Stripe == nil {
		return "", apperr.Unavailable("billing is not configured on this server (set KONSTRUCT_STRIPE_SECRET_KEY)")
	}
	var plan store.Plan
	var acct store.BillingAccount
	var tenant store.Tenant
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if tenant, err = tx.GetTenant(ctx, tenantID); err != nil {
			return err
		}
		if acct, err = tx.GetBillingAccount(ctx, tenantID); err != nil {
			return err
		}
		plans, err := tx.ListPlans(ctx)
		for _, pl := range plans {
			if pl.ID == planID {
				plan = pl
			}
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", apperr.NotFound("tenant").Wrap(err)
	}
	if err != nil {
		return "", fmt.Errorf("billing: checkout: %w", err)
	}
	if plan.ID == "" || !plan.Paid {
		return "", apperr.Invalid("plan", "must be one of the paid plans listed by GET .../billing")
	}
	price := s.Prices[plan.ID]
	if price == "" {
		return "", apperr.Unavailable("the " + plan.Name + " plan has no Stripe price on this server (set KONSTRUCT_STRIPE_PRICE_" +
			strings.ToUpper(plan.ID) + ")")
	}
	switch acct.Status {
	case store.SubActive, store.SubTrialing, store.SubPastDue, store.SubUnpaid, store.SubPaused:
		if acct.StripeSubscriptionID != "" {
			return "", apperr.Conflict("this organisation already has a subscription: change or cancel it in the billing portal (POST .../billing/portal)")
		}
	}
	customer := acct.StripeCustomerID
	if customer == "" {
		params := &stripe.CustomerParams{Name: stripe.String(tenant.Name),
			Metadata: map[string]string{"tenant_id": tenantID.String()}}
		params.Context = ctx
		// One customer per tenant even if two checkouts race.
		params.SetIdempotencyKey("konstruct-customer-" + tenantID.String())
		c, err := s.Stripe.api.Customers.New(params)
		if err != nil {
			return "", stripeErr("create the customer", err)
		}
		customer = c.ID
		if err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
			return tx.SetStripeIDs(ctx, tenantID, customer, "")
		}); err != nil {
			return "", fmt.Errorf("billing: checkout: link customer: %w", err)
		}
	}
	back := s.BillingURL(tenantID)
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		ClientReferenceID: stripe.String(tenantID.String()),
		Customer:          stripe.String(customer),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(price), Quantity: stripe.Int64(1)}},
		SuccessURL:        stripe.String(back + "?checkout=success"),
		CancelURL:         stripe.String(back + "?checkout=canceled"),
		SubscriptionData: &stripe.CheckoutSessionSubscriptionDataParams{
			Metadata: map[string]string{"tenant_id": tenantID.String(), "plan": plan.ID}},
	}
	params.AddMetadata("tenant_id", tenantID.String())
	params.Context = ctx
	sess, err := s.Stripe.api.CheckoutSessions.New(params)
	if err != nil {
		return "", stripeErr("start the checkout", err)
	}
	s.audit(ctx, tenantID, p, "billing.checkout", map[string]any{"plan": plan.ID, "session": sess.ID})
	return sess.URL, nil
}

// Portal opens a Stripe Billing Portal session, where the tenant upgrades,
// downgrades, cancels and updates its payment method, and returns its URL.
func (s *Service) Portal(ctx context.Context, p authz.Principal, tenantID uuid.UUID) (string, error) {
	if s.Stripe == nil {
		return "", apperr.Unavailable("billing is not configured on this server (set KONSTRUCT_STRIPE_SECRET_KEY)")
	}
	var acct store.BillingAccount
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if _, err := tx.GetTenant(ctx, tenantID); err != nil {
			return err
		}
		var err error
		acct, err = tx.GetBillingAccount(ctx, tenantID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", apperr.NotFound("tenant").Wrap(err)
	}
	if err != nil {
		return "", fmt.Errorf("billing: portal: %w", err)
	}
	if acct.StripeCustomerID == "" {
		return "", apperr.Conflict("this organisation has no Stripe customer yet: subscribe first (POST .../billing/checkout)")
	}
	params := &stripe.BillingPortalSessionParams{Customer: stripe.String(acct.StripeCustomerID),
		ReturnURL: stripe.String(s.BillingURL(tenantID))}
	params.Context = ctx
	sess, err := s.Stripe.api.BillingPortalSessions.New(params)
	if err != nil {
		return "", stripeErr("open the billing portal", err)
	}
	s.audit(ctx, tenantID, p, "billing.portal", map[string]any{"session": sess.ID})
	return sess.URL, nil
}

func (s *Service) audit(ctx context.Context, tenantID uuid.UUID, p authz.Principal, action string, data map[string]any) {
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "user:" + p.UserID.String(), Action: action, TargetType: "tenant",
			TargetID: tenantID.String(), Data: data})
	})
	if err != nil {
		s.logger().WarnContext(ctx, "billing: audit", "action", action, "err", err)
	}
}
