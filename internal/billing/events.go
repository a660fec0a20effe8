package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	stripe "github.com/stripe/stripe-go/v76"

	"github.com/konstruct/konstruct/internal/inbox"
	"github.com/konstruct/konstruct/internal/store"
)

// Event types applied; any other verified event is recorded and ignored.
const (
	EvCheckoutCompleted = "checkout.session.completed"
	EvSubCreated        = "customer.subscription.created"
	EvSubUpdated        = "customer.subscription.updated"
	EvSubDeleted        = "customer.subscription.deleted"
	EvSubPaused         = "customer.subscription.paused"
	EvSubResumed        = "customer.subscription.resumed"
	EvTrialWillEnd      = "customer.subscription.trial_will_end"
	EvInvoicePaid       = "invoice.paid"
	EvInvoiceFailed     = "invoice.payment_failed"
)

// ParseEvent decodes a verified event body in the v76 (2023-10-16) shape.
func ParseEvent(body []byte) (stripe.Event, error) {
	var ev stripe.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return stripe.Event{}, fmt.Errorf("billing: parse event: %w", err)
	}
	if ev.ID == "" || ev.Type == "" || ev.Data == nil || len(ev.Data.Raw) == 0 {
		return stripe.Event{}, errors.New("billing: parse event: not a Stripe event (no id, type or data.object)")
	}
	return ev, nil
}

// ResolveTenant finds the tenant an event is about: the checkout session's
// client_reference_id, the tenant_id in a subscription's (or an invoice's
// subscription's) metadata, or the customer linked to a tenant. found is
// false for an event about no tenant this platform knows.
func (s *Service) ResolveTenant(ctx context.Context, ev stripe.Event) (tenantID uuid.UUID, found bool, err error) {
	var obj struct {
		ClientReferenceID string            `json:"client_reference_id"`
		Metadata          map[string]string `json:"metadata"`
		Customer          json.RawMessage   `json:"customer"`
		SubDetails        *struct {
			Metadata map[string]string `json:"metadata"`
		} `json:"subscription_details"`
	}
	if err := json.Unmarshal(ev.Data.Raw, &obj); err != nil {
		return uuid.Nil, false, fmt.Errorf("billing: resolve tenant: %w", err)
	}
	var candidates []string
	candidates = append(candidates, obj.ClientReferenceID, obj.Metadata["tenant_id"])
	if obj.SubDetails != nil {
		candidates = append(candidates, obj.SubDetails.Metadata["tenant_id"])
	}
	customer := expandableID(obj.Customer)
	err = s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		for _, c := range candidates {
			id, perr := uuid.Parse(c)
			if perr != nil {
				continue
			}
			if _, err := tx.GetTenant(ctx, id); err == nil {
				tenantID, found = id, true
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if customer == "" {
			return nil
		}
		id, err := tx.TenantByStripeCustomer(ctx, customer)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		tenantID, found = id, err == nil
		return err
	})
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("billing: resolve tenant: %w", err)
	}
	return tenantID, found, nil
}

// expandableID reads a Stripe field that is an ID or an expanded object.
func expandableID(raw json.RawMessage) string {
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return id
	}
	var obj struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &obj)
	return obj.ID
}

// errDuplicate rolls back an event that another delivery applied first.
var errDuplicate = errors.New("billing: event already applied")

// Deliver applies a recorded Stripe event (the inbox dispatcher's handler for
// source stripe). The event ID is recorded in the transaction that applies
// it, so a redelivery changes nothing; subscription state is replaced only by
// an event at least as new as the one that set it (`created`), so deliveries
// out of order end in the state of the newest event. Emails go out after the
// commit, at most once.
func (s *Service) Deliver(ctx context.Context, rec store.InboxEvent) error {
	ev, err := ParseEvent(rec.Payload)
	if err != nil {
		return inbox.Permanent(err)
	}
	created := time.Unix(ev.Created, 0).UTC()
	var emails []email
	err = s.Store.WithTenant(ctx, rec.TenantID, func(tx *store.Tx) error {
		emails = nil
		seen, err := tx.StripeEventSeen(ctx, rec.TenantID, ev.ID)
		if err != nil || seen {
			return err
		}
		outcome, mails, err := s.apply(ctx, tx, rec.TenantID, ev, created)
		if err != nil {
			return err
		}
		fresh, err := tx.RecordStripeEvent(ctx, rec.TenantID, ev.ID, string(ev.Type), created, outcome)
		if err != nil {
			return err
		}
		if !fresh {
			return errDuplicate
		}
		emails = mails
		s.logger().InfoContext(ctx, "stripe event applied", "tenant_id", rec.TenantID, "event_id", ev.ID, "type", ev.Type,
			"outcome", outcome)
		return nil
	})
	if errors.Is(err, errDuplicate) {
		return nil
	}
	if err != nil {
		var perm permanent
		// A payload that does not decode, or a customer already linked to
		// another tenant, will not apply on any retry.
		if errors.As(err, &perm) || errors.Is(err, store.ErrConflict) {
			return inbox.Permanent(err)
		}
		return fmt.Errorf("billing: apply %s %s: %w", ev.Type, ev.ID, err)
	}
	for _, m := range emails {
		s.sendToAdmins(ctx, rec.TenantID, m)
	}
	return nil
}

type permanent struct{ error }

// apply changes the tenant's billing state for one event.
func (s *Service) apply(ctx context.Context, tx *store.Tx, tenantID uuid.UUID, ev stripe.Event, created time.Time) (string, []email, error) {
	switch string(ev.Type) {
	case EvCheckoutCompleted:
		var cs stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil {
			return "", nil, permanent{fmt.Errorf("decode checkout session: %w", err)}
		}
		var customer, sub string
		if cs.Customer != nil {
			customer = cs.Customer.ID
		}
		if cs.Subscription != nil {
			sub = cs.Subscription.ID
		}
		return "applied", nil, tx.SetStripeIDs(ctx, tenantID, customer, sub)

	case EvSubCreated, EvSubUpdated, EvSubDeleted, EvSubPaused, EvSubResumed:
		var sub stripe.Subscription
		if err := json.Unmarshal(ev.Data.Raw, &sub); err != nil {
			return "", nil, permanent{fmt.Errorf("decode subscription: %w", err)}
		}
		before, err := tx.GetBillingAccount(ctx, tenantID)
		if err != nil {
			return "", nil, err
		}
		st := store.SubscriptionState{PlanID: s.planOfSubscription(ctx, &sub), Status: string(sub.Status), SubscriptionID: sub.ID,
			CancelAtPeriodEnd: sub.CancelAtPeriodEnd, Created: created}
		if string(ev.Type) == EvSubDeleted && st.Status == "" {
			st.Status = store.SubCanceled
		}
		if sub.Customer != nil {
			st.CustomerID = sub.Customer.ID
		}
		if sub.CurrentPeriodEnd > 0 {
			t := time.Unix(sub.CurrentPeriodEnd, 0).UTC()
			st.CurrentPeriodEnd = &t
		}
		if sub.TrialEnd > 0 {
			t := time.Unix(sub.TrialEnd, 0).UTC()
			st.TrialEnd = &t
		}
		applied, err := tx.ApplySubscription(ctx, tenantID, st)
		if err != nil || !applied {
			return "stale", nil, err
		}
		return "applied", s.statusEmails(tenantID, before, st), nil

	case EvInvoicePaid, EvInvoiceFailed:
		var inv stripe.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
			return "", nil, permanent{fmt.Errorf("decode invoice: %w", err)}
		}
		paid := string(ev.Type) == EvInvoicePaid
		if err := tx.NoteInvoice(ctx, tenantID, paid, created); err != nil {
			return "", nil, err
		}
		if paid {
			return "applied", nil, nil
		}
		link := inv.HostedInvoiceURL
		if link == "" {
			link = s.BillingURL(tenantID)
		}
		text := fmt.Sprintf("Stripe could not collect the payment of %s for your Konstruct subscription (attempt %d).\n\n"+
			"Your agents keep working for a grace period of %s while the payment is retried. Update the payment method "+
			"to keep your plan: %s\n", money(inv.AmountDue, string(inv.Currency)), inv.AttemptCount, days(s.grace()), link)
		return "applied", []email{{subject: "Payment failed for your Konstruct subscription", text: text, link: link}}, nil

	case EvTrialWillEnd:
		var sub stripe.Subscription
		if err := json.Unmarshal(ev.Data.Raw, &sub); err != nil {
			return "", nil, permanent{fmt.Errorf("decode subscription: %w", err)}
		}
		when := "soon"
		if sub.TrialEnd > 0 {
			when = "on " + time.Unix(sub.TrialEnd, 0).UTC().Format("2 January 2006")
		}
		return "applied", []email{{subject: "Your Konstruct trial ends " + when,
			text: "Your Konstruct trial ends " + when + ". Add a payment method to keep your plan: " + s.BillingURL(tenantID) + "\n",
			link: s.BillingURL(tenantID)}}, nil
	}
	return "ignored", nil, nil
}

// planOfSubscription maps the subscription's price to a plan through the
// configured KONSTRUCT_STRIPE_PRICE_* settings ("" when none matches: the
// stored plan is kept and the mismatch logged).
func (s *Service) planOfSubscription(ctx context.Context, sub *stripe.Subscription) string {
	if sub.Items == nil {
		return ""
	}
	for _, it := range sub.Items.Data {
		if it == nil || it.Price == nil {
			continue
		}
		for plan, price := range s.Prices {
			if price == it.Price.ID {
				return plan
			}
		}
		s.logger().WarnContext(ctx, "stripe subscription with a price no plan is configured with (KONSTRUCT_STRIPE_PRICE_*); keeping the plan",
			"subscription", sub.ID, "price", it.Price.ID)
	}
	return ""
}

// statusEmails tells customer admins of a change they must act on.
func (s *Service) statusEmails(tenantID uuid.UUID, before store.BillingAccount, after store.SubscriptionState) []email {
	if before.Status == after.Status {
		return nil
	}
	link := s.BillingURL(tenantID)
	switch after.Status {
	case store.SubUnpaid, store.SubCanceled:
		if before.Status == store.SubNone {
			return nil
		}
		return []email{{subject: "Your Konstruct subscription has ended",
			text: "Your Konstruct subscription is " + after.Status + ". Your organisation is back on the Free plan's limits; " +
				"nothing was deleted, but agents, channels and messages over those limits are paused. Subscribe again: " + link + "\n",
			link: link}}
	}
	return nil
}

func money(amount int64, currency string) string {
	if currency == "" {
		currency = "usd"
	}
	return fmt.Sprintf("%.2f %s", float64(amount)/100, currencyUpper(currency))
}

func currencyUpper(c string) string {
	b := []byte(c)
	for i := range b {
		if b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

func days(d time.Duration) string {
	n := int(d.Round(time.Hour) / (24 * time.Hour))
	if n == 1 {
		return "1 day"
	}
	if n < 1 {
		return d.String()
	}
	return fmt.Sprintf("%d days", n)
}
