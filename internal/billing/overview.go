package billing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
)

// Overview is a tenant's billing as the Billing page and GET .../billing
// show it: the subscription, the plan that applies and why, usage against
// each limit, the budgets, and the plans on offer.
type Overview struct {
	Account   store.BillingAccount
	Plan      store.Plan // the plan that applies now
	Reason    string     // ReasonActive, ReasonGrace, ...
	Limits    Limits
	Counts    store.BillingCounts
	Budgets   []store.Budget
	Plans     []store.Plan
	Checkout  bool       // Stripe is configured: Checkout and the Billing Portal work
	GraceEnds *time.Time // past_due: when the plan lapses to the free limits
	Banners   []Banner
}

// Banner is news an operator must see on every page of the tenant.
type Banner struct {
	Kind    string // warning | error | info
	Message string
}

// Overview gathers the tenant's billing state.
func (s *Service) Overview(ctx context.Context, tenantID uuid.UUID) (Overview, error) {
	var o Overview
	now := s.now()
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		if o.Account, err = tx.GetBillingAccount(ctx, tenantID); err != nil {
			return err
		}
		if o.Plans, err = tx.ListPlans(ctx); err != nil {
			return err
		}
		if o.Counts, err = tx.CountBilling(ctx, tenantID, now); err != nil {
			return err
		}
		o.Budgets, err = tx.ListBudgets(ctx, now)
		return err
	})
	if err != nil {
		return Overview{}, fmt.Errorf("billing: overview: %w", err)
	}
	o.Plan, o.Reason = Effective(o.Account, o.Plans, now, s.grace())
	o.Limits = limitsOf(o.Plan, s.Enforced())
	o.Checkout = s.Enforced()
	if o.Account.Status == store.SubPastDue && o.Account.PastDueSince != nil {
		t := o.Account.PastDueSince.Add(s.grace())
		o.GraceEnds = &t
	}
	o.Banners = s.banners(o, now)
	return o, nil
}

// Banners returns only the banners of the tenant's billing state, for the
// portal's layout (every page of the tenant).
func (s *Service) Banners(ctx context.Context, tenantID uuid.UUID) ([]Banner, error) {
	o, err := s.Overview(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return o.Banners, nil
}

func (s *Service) banners(o Overview, now time.Time) []Banner {
	var out []Banner
	switch {
	case o.Reason == ReasonGrace && o.GraceEnds != nil:
		out = append(out, Banner{Kind: "warning", Message: fmt.Sprintf("The last payment for the %s plan failed. Your agents keep working until %s; "+
			"update the payment method in Billing to keep the plan.", o.Plan.Name, o.GraceEnds.UTC().Format("2 January"))})
	case o.Reason == ReasonLapsed:
		out = append(out, Banner{Kind: "error", Message: fmt.Sprintf("The subscription is %s, so the Free plan's limits apply. "+
			"Nothing was deleted; subscribe again in Billing to lift the limits.", statusLabel(o.Account.Status))})
	}
	if o.Limits.Enforced {
		if l := o.Limits.MessagesPerMonth; l != nil && o.Counts.Messages >= int64(*l) {
			out = append(out, Banner{Kind: "error", Message: fmt.Sprintf("This month's %s messages are used up: agents answer "+
				"with a notice instead of a reply. Upgrade in Billing to resume.", fmtInt(int64(*l)))})
		} else if l := o.Limits.PlatformTokensPerMonth; l != nil && o.Counts.Tokens >= *l {
			out = append(out, Banner{Kind: "error", Message: fmt.Sprintf("This month's %s model tokens are used up: agents answer "+
				"with a notice instead of a reply. Upgrade in Billing to resume.", fmtInt(*l))})
		}
	}
	for _, b := range o.Budgets {
		if b.SpentMicroUSD < b.LimitMicroUSD {
			continue
		}
		whose := "The organisation's"
		if b.AgentID != nil {
			whose = b.AgentName + "'s"
		}
		if b.HardStop {
			out = append(out, Banner{Kind: "error", Message: fmt.Sprintf("%s monthly budget of %s is spent (%s): its agents are paused "+
				"and tell users so. Raise the budget in Billing to resume.", whose, USD(b.LimitMicroUSD), USD(b.SpentMicroUSD))})
		} else {
			out = append(out, Banner{Kind: "warning", Message: fmt.Sprintf("%s monthly budget of %s is exceeded (%s spent).",
				whose, USD(b.LimitMicroUSD), USD(b.SpentMicroUSD))})
		}
	}
	return out
}

func statusLabel(s string) string {
	switch s {
	case store.SubPastDue:
		return "past due"
	case "incomplete_expired":
		return "expired"
	}
	return s
}

func fmtInt(n int64) string {
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// BudgetInput sets a budget: the tenant's (AgentID nil) or an agent's.
// LimitUSD 0 removes it.
type BudgetInput struct {
	AgentID  *uuid.UUID
	LimitUSD float64
	HardStop bool
}

// MaxBudgetUSD bounds a budget (a typo of extra zeros is refused).
const MaxBudgetUSD = 10_000_000

// PutBudget sets or removes a budget.
func (s *Service) PutBudget(ctx context.Context, p authz.Principal, tenantID uuid.UUID, in BudgetInput) error {
	if math.IsNaN(in.LimitUSD) || in.LimitUSD < 0 || in.LimitUSD > MaxBudgetUSD {
		return apperr.Invalid("monthly_limit_usd", fmt.Sprintf("must be a number of dollars from 0 (no budget) to %d", MaxBudgetUSD))
	}
	micro := int64(math.Round(in.LimitUSD * 1e6))
	if in.LimitUSD > 0 && micro == 0 {
		return apperr.Invalid("monthly_limit_usd", "must be at least $0.000001")
	}
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		if in.AgentID != nil {
			if _, err := tx.GetAgent(ctx, *in.AgentID); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return apperr.Invalid("agent_id", "must be the ID of one of this organisation's agents")
				}
				return err
			}
		}
		var err error
		action := "billing.budget.set"
		if micro == 0 {
			action = "billing.budget.remove"
			err = tx.DeleteBudget(ctx, tenantID, in.AgentID)
		} else {
			err = tx.PutBudget(ctx, tenantID, in.AgentID, micro, in.HardStop)
		}
		if err != nil {
			return err
		}
		data := map[string]any{"monthly_limit_micro_usd": micro, "hard_stop": in.HardStop}
		if in.AgentID != nil {
			data["agent_id"] = in.AgentID.String()
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "user:" + p.UserID.String(), Action: action, TargetType: "budget",
			TargetID: tenantID.String(), AgentID: in.AgentID, Data: data})
	})
	if err != nil {
		return fmt.Errorf("billing: put budget: %w", err)
	}
	return nil
}
