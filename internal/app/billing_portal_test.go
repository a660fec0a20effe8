package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakestripe"
)

// The Billing page's actions, as a customer admin clicks them: subscribe
// (to Stripe Checkout, on stripe-mock), set and remove a budget; a second
// agent over the Free plan is refused with an upgrade link; operators see
// costs but not billing; the costs export is a CSV.
func TestBillingPortalFlows(t *testing.T) {
	h := newHarness(t, fakestripe.New(t).Env())
	admin := h.browser()
	home := admin.signUp("owner@billing.test", "Owner", "Billing Co")
	tenantID := uuid.MustParse(strings.TrimPrefix(home, "/t/"))

	p := admin.get(home + "/billing")
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, `data-testid="plan-name">Free<`)
	require.Contains(t, p.Body, `data-testid="subscribe-starter"`)

	p = admin.post(home+"/billing/checkout", url.Values{"plan": {"starter"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.True(t, strings.HasPrefix(p.Location, "https://checkout.stripe.com/"), p.Location)
	p = admin.post(home+"/billing/checkout", url.Values{"plan": {"platinum"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, admin.get(p.Location).Body, "must be one of the paid plans")

	// Budgets: the whole organisation's with a hard stop, then removed.
	p = admin.post(home+"/billing/budget", url.Values{"monthly_limit_usd": {"$1,250.50"}, "hard_stop": {"on"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	p = admin.get(p.Location)
	require.Contains(t, p.Body, "Budget saved.")
	require.Contains(t, p.Body, "$1,250.50")
	require.Contains(t, p.Body, "Pause agents")
	p = admin.post(home+"/billing/budget", url.Values{"monthly_limit_usd": {"lots"}})
	require.Contains(t, admin.get(p.Location).Body, "must be an amount in dollars")
	p = admin.post(home+"/billing/budget", url.Values{"monthly_limit_usd": {"0"}})
	p = admin.get(p.Location)
	require.Contains(t, p.Body, "Budget removed.")
	require.NotContains(t, p.Body, "$1,250.50")

	// The Free plan's one agent, then a refusal that offers the upgrade.
	p = admin.post(home+"/agents", url.Values{"name": {"First"}, "models": {"openai/gpt-4o-mini"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = admin.post(home+"/agents", url.Values{"name": {"Second"}, "models": {"openai/gpt-4o-mini"}})
	require.Equal(t, http.StatusPaymentRequired, p.Status)
	require.Contains(t, p.Body, "Your plan is full")
	require.Contains(t, p.Body, `href="`+h.URL+home+`/billing"`)

	// An operator reads costs, not billing.
	ctx := context.Background()
	hash, err := auth.HashPassword("Operator-Pass-Word-1")
	require.NoError(t, err)
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Email: "op@billing.test", Name: "Op", PasswordHash: hash, Role: store.RoleCustomerOperator})
		return err
	}))
	op := h.browser()
	op.signIn("op@billing.test", "Operator-Pass-Word-1")
	require.Equal(t, http.StatusForbidden, op.get(home+"/billing").Status)
	p = op.get(home + "/usage?range=7d")
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, `data-testid="cost-chart"`)
	require.NotContains(t, p.Body, `data-testid="nav-billing"`)
	require.Equal(t, http.StatusForbidden, op.post(home+"/billing/budget", url.Values{"monthly_limit_usd": {"5"}}).Status)
	p = op.get(home + "/usage.csv?range=30d&by=model")
	require.Equal(t, http.StatusOK, p.Status)
	require.Equal(t, "text/csv; charset=utf-8", p.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(p.Body, "provider,model,calls,input_tokens,output_tokens,cost_usd\n"), p.Body)
	// A custom range that makes no sense falls back, saying so.
	require.Contains(t, op.get(home+"/usage?range=custom&from=2026-05-02&to=2026-05-01").Body, "The range ends before it starts.")
}
