package billing_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/store"
)

func TestEffectivePlan(t *testing.T) {
	three := 3
	plans := []store.Plan{{ID: "free", Name: "Free"}, {ID: "starter", Name: "Starter", Paid: true, MaxAgents: &three}}
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	grace := 7 * 24 * time.Hour
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, tc := range []struct {
		name   string
		acct   store.BillingAccount
		plan   string
		reason string
	}{
		{"never subscribed", store.BillingAccount{PlanID: "free", Status: "none"}, "free", billing.ReasonFree},
		{"active", store.BillingAccount{PlanID: "starter", Status: "active"}, "starter", billing.ReasonActive},
		{"trialing", store.BillingAccount{PlanID: "starter", Status: "trialing"}, "starter", billing.ReasonActive},
		{"past due, in grace", store.BillingAccount{PlanID: "starter", Status: "past_due", PastDueSince: ago(6 * 24 * time.Hour)}, "starter", billing.ReasonGrace},
		{"past due, grace over", store.BillingAccount{PlanID: "starter", Status: "past_due", PastDueSince: ago(8 * 24 * time.Hour)}, "free", billing.ReasonLapsed},
		{"unpaid", store.BillingAccount{PlanID: "starter", Status: "unpaid"}, "free", billing.ReasonLapsed},
		{"canceled", store.BillingAccount{PlanID: "starter", Status: "canceled"}, "free", billing.ReasonLapsed},
		{"paused", store.BillingAccount{PlanID: "starter", Status: "paused"}, "free", billing.ReasonLapsed},
		{"incomplete", store.BillingAccount{PlanID: "starter", Status: "incomplete"}, "free", billing.ReasonIncomplete},
		{"unknown plan", store.BillingAccount{PlanID: "gold", Status: "active"}, "free", billing.ReasonFree},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, why := billing.Effective(tc.acct, plans, now, grace)
			require.Equal(t, tc.plan, p.ID)
			require.Equal(t, tc.reason, why)
		})
	}
}

func TestUSD(t *testing.T) {
	for micro, want := range map[int64]string{0: "$0.00", 850: "$0.00085", 1000: "$0.0010", 9999: "$0.009999",
		10_000: "$0.01", 1_234_567: "$1.23", 50_000_000: "$50.00"} {
		require.Equal(t, want, billing.USD(micro), "%d", micro)
	}
}
