package v1_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
	"github.com/konstruct/konstruct/internal/testkit/fakestripe"
)

type billingView struct {
	Plan struct {
		ID string `json:"id"`
	} `json:"plan"`
	SubscribedPlan    string  `json:"subscribed_plan"`
	Status            string  `json:"status"`
	PlanReason        string  `json:"plan_reason"`
	CurrentPeriodEnd  *string `json:"current_period_end"`
	CancelAtPeriodEnd bool    `json:"cancel_at_period_end"`
	GraceEndsAt       *string `json:"grace_ends_at"`
	Limits            struct {
		Enforced  bool `json:"enforced"`
		MaxAgents *int `json:"max_agents"`
		BYOKeys   bool `json:"byo_keys"`
	} `json:"limits"`
	Usage struct {
		Agents int `json:"agents"`
	} `json:"usage"`
	Notices []struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"notices"`
}

// stripeServer is an API server with Stripe pointed at stripe-mock and the
// inbox dispatcher running, as `konstruct serve` runs it.
func stripeServer(t *testing.T) (*apitest.Server, fakestripe.Config) {
	t.Helper()
	st := fakestripe.New(t)
	s := apitest.Start(t, apitest.Options{Env: st.Env()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.App.RunInbox(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, st
}

func getBilling(t *testing.T, s *apitest.Server, token string, tenantID uuid.UUID) billingView {
	t.Helper()
	var b billingView
	s.Do(t, http.MethodGet, tenantPath(tenantID)+"/billing", token, nil).Expect(t, http.StatusOK).JSON(t, &b)
	return b
}

// postStripe signs body as Stripe does and posts it to the webhook.
func postStripe(t *testing.T, s *apitest.Server, secret string, body []byte, at time.Time) *apitest.Response {
	t.Helper()
	req := s.NewRequest(t, http.MethodPost, "/webhooks/stripe", "", body)
	req.Header.Set("Stripe-Signature", fakestripe.Sign(body, secret, at))
	return s.Send(t, req)
}

func appliedEvents(t *testing.T, s *apitest.Server, tenantID uuid.UUID) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.Store.WithTenant(context.Background(), tenantID, func(tx *store.Tx) error {
		var err error
		n, err = tx.QueryInt(context.Background(), `SELECT count(*) FROM stripe_events`)
		return err
	}))
	return n
}

// lifecycle is one subscription's events, oldest first: subscribe to
// Starter, upgrade to Pro, a payment fails (past_due), it is paid, the
// subscription is set to cancel and then ends.
type lifecycle struct {
	sub    fakestripe.Subscription
	events [][]byte
	steps  []string // what each event is, for failure messages
}

func newLifecycle(tenantID uuid.UUID, customer string, t0 time.Time) lifecycle {
	sub := fakestripe.Subscription{ID: fakestripe.ID("sub"), Customer: customer, TenantID: tenantID.String(),
		Price: fakestripe.PriceStarter, Status: "active", PeriodEnd: t0.AddDate(0, 1, 0)}
	var l lifecycle
	l.sub = sub
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	add := func(step, typ string, when time.Time, obj map[string]any) {
		l.events = append(l.events, fakestripe.Event(fakestripe.ID("evt"), typ, when, obj, nil))
		l.steps = append(l.steps, step)
	}
	add("checkout completed", "checkout.session.completed", at(0), fakestripe.CheckoutSession(fakestripe.ID("cs"), tenantID.String(), customer, sub.ID))
	add("subscribed to starter", "customer.subscription.created", at(0), sub.Object())
	add("first invoice paid", "invoice.paid", at(1), fakestripe.Invoice(fakestripe.ID("in"), sub, true, 1))
	pro := sub
	pro.Price = fakestripe.PricePro
	add("upgraded to pro", "customer.subscription.updated", at(10), pro.Object())
	add("payment failed", "invoice.payment_failed", at(20), fakestripe.Invoice(fakestripe.ID("in"), pro, false, 1))
	pastDue := pro
	pastDue.Status = "past_due"
	add("past due", "customer.subscription.updated", at(20), pastDue.Object())
	add("invoice paid", "invoice.paid", at(30), fakestripe.Invoice(fakestripe.ID("in"), pro, true, 2))
	add("active again", "customer.subscription.updated", at(31), pro.Object())
	canceling := pro
	canceling.CancelAtPeriodEnd = true
	add("set to cancel", "customer.subscription.updated", at(40), canceling.Object())
	ended := canceling
	ended.Status = "canceled"
	add("canceled", "customer.subscription.deleted", at(50), ended.Object())
	return l
}

func TestStripeSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	s, st := stripeServer(t)
	ten := s.CreateTenant(t, "Acme")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)

	b := getBilling(t, s, admin.Token, ten.ID)
	require.Equal(t, "free", b.Plan.ID)
	require.Equal(t, "none", b.Status)
	require.True(t, b.Limits.Enforced)
	require.Equal(t, 1, *b.Limits.MaxAgents)

	// Subscribing goes through Checkout (stripe-mock): the tenant gets its
	// Stripe customer first, so every later event resolves to it.
	var out struct {
		URL string `json:"url"`
	}
	s.Do(t, http.MethodPost, tenantPath(ten.ID)+"/billing/checkout", admin.Token, map[string]string{"plan": "starter"}).
		Expect(t, http.StatusOK).JSON(t, &out)
	require.True(t, strings.HasPrefix(out.URL, "https://checkout.stripe.com/"), out.URL)
	var acct store.BillingAccount
	require.NoError(t, s.Store.WithTenant(context.Background(), ten.ID, func(tx *store.Tx) error {
		var err error
		acct, err = tx.GetBillingAccount(context.Background(), ten.ID)
		return err
	}))
	require.True(t, strings.HasPrefix(acct.StripeCustomerID, "cus_"), acct.StripeCustomerID)

	// On the free plan a second agent is refused with an upgrade link.
	s.CreateAgent(t, admin.Token, ten.ID, "One")
	r := s.Do(t, http.MethodPost, tenantPath(ten.ID)+"/agents", admin.Token, map[string]any{"name": "Two"})
	msg := r.ExpectError(t, http.StatusPaymentRequired, "plan_limit", "")
	require.Contains(t, msg, "Free plan includes 1 agents")
	require.Equal(t, s.App.Config.PublicURL+"/t/"+ten.ID.String()+"/billing", r.Err(t).URL)

	l := newLifecycle(ten.ID, acct.StripeCustomerID, time.Now().Add(-time.Hour).Truncate(time.Second))
	deliver := func(i int) {
		t.Helper()
		postStripe(t, s, st.WebhookSecret, l.events[i], time.Now()).Expect(t, http.StatusOK)
		require.Eventually(t, func() bool { return appliedEvents(t, s, ten.ID) == int64(i+1) }, 30*time.Second, 20*time.Millisecond,
			"event %d (%s) applied", i, l.steps[i])
	}
	for i := range 3 {
		deliver(i)
	}
	b = getBilling(t, s, admin.Token, ten.ID)
	require.Equal(t, "starter", b.Plan.ID)
	require.Equal(t, "active", b.Status)
	require.Equal(t, "active", b.PlanReason)
	require.NotNil(t, b.CurrentPeriodEnd)
	require.Equal(t, 3, *b.Limits.MaxAgents, "limits follow the plan")
	s.CreateAgent(t, admin.Token, ten.ID, "Two")
	s.CreateAgent(t, admin.Token, ten.ID, "Three")
	s.Do(t, http.MethodPost, tenantPath(ten.ID)+"/agents", admin.Token, map[string]any{"name": "Four"}).
		ExpectError(t, http.StatusPaymentRequired, "plan_limit", "")

	deliver(3) // upgraded to pro
	b = getBilling(t, s, admin.Token, ten.ID)
	require.Equal(t, "pro", b.Plan.ID)
	s.CreateAgent(t, admin.Token, ten.ID, "Four")

	deliver(4) // payment failed
	deliver(5) // past due
	b = getBilling(t, s, admin.Token, ten.ID)
	require.Equal(t, "past_due", b.Status)
	require.Equal(t, "grace", b.PlanReason, "past_due keeps the plan for the grace period")
	require.Equal(t, "pro", b.Plan.ID)
	require.NotNil(t, b.GraceEndsAt)
	require.NotEmpty(t, b.Notices)
	require.Contains(t, b.Notices[0].Message, "payment")
	// The customer admin is emailed (logged here: no SMTP in this test) with
	// the invoice's payment link.
	require.Contains(t, s.Logs(), "Payment failed for your Konstruct subscription")
	require.Contains(t, s.Logs(), admin.Email)

	deliver(6)
	deliver(7) // paid and active again
	b = getBilling(t, s, admin.Token, ten.ID)
	require.Equal(t, "active", b.Status)
	require.Nil(t, b.GraceEndsAt)
	require.Empty(t, b.Notices)

	deliver(8)
	b = getBilling(t, s, admin.Token, ten.ID)
	require.True(t, b.CancelAtPeriodEnd)
	require.Equal(t, "pro", b.Plan.ID, "a subscription set to cancel runs to the end of its period")

	deliver(9) // canceled
	b = getBilling(t, s, admin.Token, ten.ID)
	require.Equal(t, "canceled", b.Status)
	require.Equal(t, "lapsed", b.PlanReason)
	require.Equal(t, "free", b.Plan.ID, "a canceled subscription falls back to the free plan's limits")
	require.Equal(t, 4, b.Usage.Agents, "nothing is deleted")
	s.Do(t, http.MethodPost, tenantPath(ten.ID)+"/agents", admin.Token, map[string]any{"name": "Five"}).
		ExpectError(t, http.StatusPaymentRequired, "plan_limit", "")

	// A redelivered old event changes nothing.
	postStripe(t, s, st.WebhookSecret, l.events[5], time.Now()).Expect(t, http.StatusOK)
	postStripe(t, s, st.WebhookSecret, l.events[3], time.Now()).Expect(t, http.StatusOK)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, int64(10), appliedEvents(t, s, ten.ID))
	require.Equal(t, "canceled", getBilling(t, s, admin.Token, ten.ID).Status)
}

// Delivered in any order, with duplicates, the lifecycle ends in the state
// of its newest event every time.
func TestStripeEventsOutOfOrderAndDuplicated(t *testing.T) {
	t.Parallel()
	s, st := stripeServer(t)
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	for run := range 4 {
		ten := s.CreateTenant(t, "Shuffled")
		admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
		l := newLifecycle(ten.ID, fakestripe.ID("cus"), time.Now().Add(-time.Hour).Truncate(time.Second))
		order := make([]int, 0, 2*len(l.events))
		for i := range l.events {
			order = append(order, i)
			if rng.IntN(2) == 0 {
				order = append(order, i) // Stripe delivers at least once
			}
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if run == 0 { // newest first, then the rest
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, i := range order {
			postStripe(t, s, st.WebhookSecret, l.events[i], time.Now()).Expect(t, http.StatusOK)
		}
		require.Eventually(t, func() bool { return appliedEvents(t, s, ten.ID) == int64(len(l.events)) }, 60*time.Second,
			20*time.Millisecond, "run %d: every event applied once (order %v)", run, order)
		b := getBilling(t, s, admin.Token, ten.ID)
		require.Equal(t, "canceled", b.Status, "run %d, order %v", run, order)
		require.Equal(t, "pro", b.SubscribedPlan, "run %d", run)
		require.True(t, b.CancelAtPeriodEnd, "run %d", run)
		require.Equal(t, "free", b.Plan.ID, "run %d", run)
	}
}

func TestStripeWebhookRefusals(t *testing.T) {
	t.Parallel()
	s, st := stripeServer(t)
	ten := s.CreateTenant(t, "Refusals")
	l := newLifecycle(ten.ID, fakestripe.ID("cus"), time.Now().Truncate(time.Second))
	body := l.events[1]

	// A wrong secret, a tampered body, a stale timestamp, no header: 401,
	// nothing recorded.
	postStripe(t, s, "whsec_wrong", body, time.Now()).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	req := s.NewRequest(t, http.MethodPost, "/webhooks/stripe", "", append([]byte(nil), body...))
	req.Header.Set("Stripe-Signature", fakestripe.Sign([]byte(strings.Replace(string(body), "active", "canceled", 1)), st.WebhookSecret, time.Now()))
	s.Send(t, req).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	msg := postStripe(t, s, st.WebhookSecret, body, time.Now().Add(-6*time.Minute)).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	require.Contains(t, msg, "5 minutes")
	s.Send(t, s.NewRequest(t, http.MethodPost, "/webhooks/stripe", "", body)).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")

	// Signed but rendered in another API version: refused as such.
	other := fakestripe.WithAPIVersion(body, "2024-06-20")
	msg = postStripe(t, s, st.WebhookSecret, other, time.Now()).ExpectError(t, http.StatusBadRequest, "api_version_mismatch", "")
	require.Contains(t, msg, "2023-10-16")
	require.Contains(t, s.Logs(), "create the webhook endpoint with API version 2023-10-16")

	// Signed but not an event.
	postStripe(t, s, st.WebhookSecret, []byte(`{"hello":"world"}`), time.Now()).ExpectError(t, http.StatusBadRequest, "malformed_event", "")

	// An event about no tenant here is acknowledged and ignored.
	stranger := fakestripe.Subscription{ID: fakestripe.ID("sub"), Customer: fakestripe.ID("cus"), Price: fakestripe.PriceStarter,
		Status: "active", PeriodEnd: time.Now().AddDate(0, 1, 0)}
	postStripe(t, s, st.WebhookSecret, fakestripe.Event(fakestripe.ID("evt"), "customer.subscription.created", time.Now(), stranger.Object(), nil),
		time.Now()).Expect(t, http.StatusOK)

	time.Sleep(300 * time.Millisecond)
	require.Zero(t, appliedEvents(t, s, ten.ID))
	require.Equal(t, "none", getBilling(t, s, s.AdminToken, ten.ID).Status)
}

func TestBillingCheckoutPortalAndRoles(t *testing.T) {
	t.Parallel()
	s, _ := stripeServer(t)
	ten := s.CreateTenant(t, "Roles")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	other := s.CreateTenant(t, "Other")
	otherAdmin := s.NewUser(t, other.ID, store.RoleCustomerAdmin)
	path := tenantPath(ten.ID) + "/billing"

	// Operators see usage, not billing, and cannot act on it.
	s.Do(t, http.MethodGet, path, op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodPost, path+"/checkout", op.Token, map[string]string{"plan": "pro"}).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodPost, path+"/portal", op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodGet, tenantPath(ten.ID)+"/usage", op.Token, nil).Expect(t, http.StatusOK)
	// Another tenant's admin learns nothing.
	s.Do(t, http.MethodGet, path, otherAdmin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPost, path+"/checkout", otherAdmin.Token, map[string]string{"plan": "pro"}).ExpectError(t, http.StatusNotFound, "not_found", "")

	// Bad plans.
	s.Do(t, http.MethodPost, path+"/checkout", admin.Token, map[string]string{"plan": "free"}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "plan")
	s.Do(t, http.MethodPost, path+"/checkout", admin.Token, map[string]string{"plan": "gold"}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "plan")
	s.Do(t, http.MethodPost, path+"/checkout", admin.Token, map[string]any{"plan": "pro", "extra": 1}).ExpectError(t, http.StatusBadRequest, "unknown_field", "extra")
	// No customer yet: no portal.
	s.Do(t, http.MethodPost, path+"/portal", admin.Token, nil).ExpectError(t, http.StatusConflict, "conflict", "")

	// The platform admin and the customer admin may both act.
	var out struct {
		URL string `json:"url"`
	}
	s.Do(t, http.MethodPost, path+"/checkout", s.AdminToken, map[string]string{"plan": "pro"}).Expect(t, http.StatusOK).JSON(t, &out)
	require.NotEmpty(t, out.URL)
	s.Do(t, http.MethodPost, path+"/portal", admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &out)
	require.NotEmpty(t, out.URL)
}

func TestUsageAPI(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Usage")
	other := s.CreateTenant(t, "Other")
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	otherAdmin := s.NewUser(t, other.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, s.AdminToken, ten.ID, "Ada")
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, s.Store.WithTenant(ctx, ten.ID, func(tx *store.Tx) error {
		for i, u := range []struct {
			model    string
			in, out  int
			cost     int64
			daysBack int
		}{{"gpt-4o-mini", 1000, 100, 210, 0}, {"gpt-4o-mini", 2000, 200, 420, 1}, {"gpt-4o", 500, 50, 1750, 1}, {"gpt-4o", 10, 10, 5, 40}} {
			if err := tx.AddUsage(ctx, store.Usage{AgentID: &ag.ID, Provider: "openai", Model: u.model, InputTokens: u.in, OutputTokens: u.out,
				CostMicroUSD: u.cost, IdempotencyKey: fmt.Sprintf("k%d", i)}); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE llm_usage SET created_at = now() - make_interval(days => $1) WHERE idempotency_key = $2`,
				u.daysBack, fmt.Sprintf("k%d", i)); err != nil {
				return err
			}
		}
		return nil
	}))
	// The other tenant's usage never shows.
	require.NoError(t, s.Store.WithTenant(ctx, other.ID, func(tx *store.Tx) error {
		return tx.AddUsage(ctx, store.Usage{Provider: "openai", Model: "gpt-4o", InputTokens: 99999, CostMicroUSD: 999999, IdempotencyKey: "x"})
	}))
	path := tenantPath(ten.ID) + "/usage"

	type usage struct {
		GroupBy string `json:"group_by"`
		Totals  struct {
			Calls        int   `json:"calls"`
			InputTokens  int64 `json:"input_tokens"`
			CostMicroUSD int64 `json:"cost_micro_usd"`
		} `json:"totals"`
		Rows []struct {
			Bucket       *string `json:"bucket"`
			AgentName    *string `json:"agent_name"`
			Model        string  `json:"model"`
			Calls        int     `json:"calls"`
			CostMicroUSD int64   `json:"cost_micro_usd"`
		} `json:"rows"`
	}
	var u usage
	s.Do(t, http.MethodGet, path, op.Token, nil).Expect(t, http.StatusOK).JSON(t, &u)
	require.Equal(t, "day", u.GroupBy)
	require.Equal(t, 3, u.Totals.Calls, "the default range is the last 30 days")
	require.Equal(t, int64(2380), u.Totals.CostMicroUSD)
	require.Len(t, u.Rows, 31, "a row per day, the empty ones too")
	require.Equal(t, int64(210), u.Rows[30].CostMicroUSD)
	require.Equal(t, int64(2170), u.Rows[29].CostMicroUSD)

	s.Do(t, http.MethodGet, path+"?group_by=model", op.Token, nil).Expect(t, http.StatusOK).JSON(t, &u)
	require.Len(t, u.Rows, 2)
	require.Equal(t, "gpt-4o", u.Rows[0].Model, "costliest first")
	require.Equal(t, int64(1750), u.Rows[0].CostMicroUSD)

	from := now.AddDate(0, 0, -45).Format("2006-01-02")
	s.Do(t, http.MethodGet, path+"?group_by=agent&from="+from, op.Token, nil).Expect(t, http.StatusOK).JSON(t, &u)
	require.Len(t, u.Rows, 1)
	require.Equal(t, "Ada", *u.Rows[0].AgentName)
	require.Equal(t, 4, u.Rows[0].Calls)

	r := s.Do(t, http.MethodGet, path+"?group_by=model&format=csv", op.Token, nil).Expect(t, http.StatusOK)
	require.Equal(t, "text/csv; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, "provider,model,calls,input_tokens,output_tokens,cost_usd\nopenai,gpt-4o,1,500,50,0.001750\nopenai,gpt-4o-mini,2,3000,300,0.000630\n",
		string(r.Body))

	s.Do(t, http.MethodGet, path+"?group_by=week", op.Token, nil).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "group_by")
	s.Do(t, http.MethodGet, path+"?from=yesterday", op.Token, nil).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "from")
	s.Do(t, http.MethodGet, path+"?from=2026-05-02&to=2026-05-01", op.Token, nil).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "from")
	s.Do(t, http.MethodGet, path+"?from=2020-01-01&to=2026-01-01", op.Token, nil).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "from")
	s.Do(t, http.MethodGet, path, otherAdmin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
}
