// Package fakestripe is the Stripe side of billing tests: stripe-mock (the
// real Stripe API's behaviour for the calls Konstruct makes, started by
// scripts/stripe-mock.sh) and webhook events built in the shapes of API
// version 2023-10-16 — the one stripe-go v76 reads — signed as Stripe signs
// them (Stripe-Signature: t=...,v1=HMAC-SHA256 of "t.body").
package fakestripe

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/konstruct/konstruct/internal/testkit"
)

// APIVersion is the version events are rendered in.
const APIVersion = "2023-10-16"

// Prices of the paid plans in tests.
const (
	PriceStarter = "price_test_starter"
	PricePro     = "price_test_pro"
)

// MockURL is stripe-mock's base URL; the test fails (CI) or is skipped when
// it does not answer.
func MockURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("KONSTRUCT_STRIPE_API_URL")
	if url == "" {
		url = "http://127.0.0.1:12111"
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/customers", nil)
	req.SetBasicAuth("sk_test_konstruct", "")
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET /v1/customers: %s", resp.Status)
		}
	}
	if err != nil {
		testkit.Unavailable(t, "stripe-mock", "scripts/stripe-mock.sh", err)
	}
	return url
}

// Config is the Stripe configuration of a test platform.
type Config struct {
	APIURL, SecretKey, WebhookSecret string
}

// New returns settings pointing at stripe-mock with a fresh webhook secret.
func New(t testing.TB) Config {
	return Config{APIURL: MockURL(t), SecretKey: "sk_test_" + randHex(12), WebhookSecret: "whsec_" + randHex(16)}
}

// Env is c as KONSTRUCT_* variables, with both paid plans priced.
func (c Config) Env() map[string]string {
	return map[string]string{
		"KONSTRUCT_STRIPE_API_URL":        c.APIURL,
		"KONSTRUCT_STRIPE_SECRET_KEY":     c.SecretKey,
		"KONSTRUCT_STRIPE_WEBHOOK_SECRET": c.WebhookSecret,
		"KONSTRUCT_STRIPE_PRICE_STARTER":  PriceStarter,
		"KONSTRUCT_STRIPE_PRICE_PRO":      PricePro,
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ID returns a Stripe-style ID with prefix ("evt", "sub", "cus", ...).
func ID(prefix string) string { return prefix + "_test" + randHex(10) }

// Event is a webhook event body (v76 / 2023-10-16 shape).
func Event(id, typ string, created time.Time, object map[string]any, previous map[string]any) []byte {
	data := map[string]any{"object": object}
	if previous != nil {
		data["previous_attributes"] = previous
	}
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": APIVersion, "created": created.Unix(), "livemode": false,
		"pending_webhooks": 1, "request": map[string]any{"id": nil, "idempotency_key": nil}, "type": typ, "data": data,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// WithAPIVersion rewrites an event body's api_version (for mismatch tests).
func WithAPIVersion(body []byte, version string) []byte {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	m["api_version"] = version
	b, _ := json.Marshal(m)
	return b
}

// Sign returns the Stripe-Signature header for body at t.
func Sign(body []byte, secret string, t time.Time) string {
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(webhook.ComputeSignature(t, body, secret)))
}

// Subscription is a subscription object.
type Subscription struct {
	ID, Customer, TenantID, Price, Status string
	PeriodEnd                             time.Time
	CancelAtPeriodEnd                     bool
	TrialEnd                              time.Time
}

// Object renders the subscription as Stripe's API does.
func (s Subscription) Object() map[string]any {
	var trial any
	if !s.TrialEnd.IsZero() {
		trial = s.TrialEnd.Unix()
	}
	start := s.PeriodEnd.AddDate(0, -1, 0)
	meta := map[string]any{}
	if s.TenantID != "" {
		meta["tenant_id"] = s.TenantID
	}
	return map[string]any{
		"id": s.ID, "object": "subscription", "customer": s.Customer, "status": s.Status, "livemode": false,
		"cancel_at_period_end": s.CancelAtPeriodEnd, "collection_method": "charge_automatically", "currency": "usd",
		"current_period_start": start.Unix(), "current_period_end": s.PeriodEnd.Unix(), "created": start.Unix(),
		"trial_end": trial, "metadata": meta,
		"items": map[string]any{"object": "list", "has_more": false, "url": "/v1/subscription_items?subscription=" + s.ID,
			"data": []any{map[string]any{
				"id": "si_" + strings.TrimPrefix(s.ID, "sub_"), "object": "subscription_item", "quantity": 1, "subscription": s.ID,
				"price": map[string]any{"id": s.Price, "object": "price", "active": true, "currency": "usd", "product": "prod_konstruct",
					"type": "recurring", "unit_amount": 4900, "recurring": map[string]any{"interval": "month", "interval_count": 1}},
			}}},
	}
}

// Invoice renders an invoice of the subscription.
func Invoice(id string, s Subscription, paid bool, attempt int) map[string]any {
	status := "open"
	if paid {
		status = "paid"
	}
	return map[string]any{
		"id": id, "object": "invoice", "customer": s.Customer, "subscription": s.ID, "status": status, "paid": paid,
		"amount_due": 4900, "amount_paid": map[bool]int{true: 4900, false: 0}[paid], "currency": "usd", "attempt_count": attempt,
		"billing_reason": "subscription_cycle", "hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/" + id,
		"subscription_details": map[string]any{"metadata": map[string]any{"tenant_id": s.TenantID}},
		"livemode":             false,
	}
}

// CheckoutSession renders a completed Checkout session of a subscription.
func CheckoutSession(id, tenantID, customer, subscription string) map[string]any {
	return map[string]any{
		"id": id, "object": "checkout.session", "mode": "subscription", "status": "complete", "payment_status": "paid",
		"client_reference_id": tenantID, "customer": customer, "subscription": subscription, "livemode": false,
		"metadata": map[string]any{"tenant_id": tenantID}, "url": nil,
	}
}
