// Package billing is what a tenant pays for and may use: plans with limits
// (the plans table), the tenant's Stripe subscription (Checkout, the Billing
// Portal, and the webhook events that keep it current, stripe.go and
// events.go), monthly budgets enforced before a model is called
// (budget.go), and the emails that tell customer admins about them.
//
// Plan limits are enforced only when Stripe is configured
// (KONSTRUCT_STRIPE_SECRET_KEY): a self-hosted install without billing has
// no plan to limit it. Budgets are the tenant's own, and always apply.
package billing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/store"
)

// DefaultGrace is how long a past_due subscription keeps its plan.
const DefaultGrace = 7 * 24 * time.Hour

// Service answers what a tenant's plan allows and carries out billing
// changes, for the REST API, the portal, the webhook's dispatcher and the
// conversation activities alike.
type Service struct {
	Store *store.Store
	// Stripe is nil when KONSTRUCT_STRIPE_SECRET_KEY is not set: no checkout,
	// no portal, and plan limits are not enforced.
	Stripe *Stripe
	// Prices maps a paid plan's ID to its Stripe price ID (KONSTRUCT_STRIPE_PRICE_<PLAN>).
	Prices    map[string]string
	PublicURL string        // links in emails and Checkout's return URLs
	Grace     time.Duration // past_due keeps the plan this long (DefaultGrace)
	Mail      mail.Sender   // nil: emails are only logged
	Logger    *slog.Logger
	Now       func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// Enforced reports whether plan limits apply (Stripe is configured).
func (s *Service) Enforced() bool { return s != nil && s.Stripe != nil }

func (s *Service) grace() time.Duration {
	if s.Grace > 0 {
		return s.Grace
	}
	return DefaultGrace
}

// Limits is what a tenant may use now, under its effective plan.
type Limits struct {
	PlanID   string `json:"plan"`
	PlanName string `json:"plan_name"`
	// Enforced is false when billing is off (no Stripe): nothing is limited.
	Enforced bool `json:"enforced"`
	// Nil: unlimited.
	MaxAgents              *int   `json:"max_agents"`
	MaxChannels            *int   `json:"max_channels"`
	MessagesPerMonth       *int   `json:"messages_per_month"`
	PlatformTokensPerMonth *int64 `json:"platform_tokens_per_month"`
	// BYOKeys: the tenant may bring its own LLM API keys. PlatformKeys: calls
	// may use the platform's keys (the plan pays for some tokens).
	BYOKeys      bool `json:"byo_keys"`
	PlatformKeys bool `json:"platform_keys"`
}

func limitsOf(p store.Plan, enforced bool) Limits {
	l := Limits{PlanID: p.ID, PlanName: p.Name, Enforced: enforced, MaxAgents: p.MaxAgents, MaxChannels: p.MaxChannels,
		MessagesPerMonth: p.MessagesPerMonth, PlatformTokensPerMonth: p.PlatformTokensPerMonth, BYOKeys: p.BYOKeys,
		PlatformKeys: p.PlatformTokensPerMonth == nil || *p.PlatformTokensPerMonth > 0}
	if !enforced {
		l.MaxAgents, l.MaxChannels, l.MessagesPerMonth, l.PlatformTokensPerMonth = nil, nil, nil, nil
		l.BYOKeys, l.PlatformKeys = true, true
	}
	return l
}

// Why a subscribed plan does or does not apply.
const (
	ReasonFree       = "free"   // never subscribed
	ReasonActive     = "active" // active or trialing
	ReasonGrace      = "grace"  // past_due, within the grace period
	ReasonLapsed     = "lapsed" // past_due past the grace period, unpaid, canceled, paused...: the free plan's limits
	ReasonIncomplete = "incomplete"
)

// Effective is the plan whose limits apply to acct now, and why: a paid plan
// while the subscription is active or trialing, or past_due within the grace
// period; the free plan otherwise. Nothing is deleted when a plan lapses:
// only new agents, channels and messages over the free limits are refused.
func Effective(acct store.BillingAccount, plans []store.Plan, now time.Time, grace time.Duration) (store.Plan, string) {
	byID := map[string]store.Plan{}
	var free store.Plan
	for _, p := range plans {
		byID[p.ID] = p
		if p.ID == store.FreePlan {
			free = p
		}
	}
	sub, ok := byID[acct.PlanID]
	if !ok || !sub.Paid {
		return free, ReasonFree
	}
	switch acct.Status {
	case store.SubActive, store.SubTrialing:
		return sub, ReasonActive
	case store.SubPastDue:
		if acct.PastDueSince == nil || now.Before(acct.PastDueSince.Add(grace)) {
			return sub, ReasonGrace
		}
		return free, ReasonLapsed
	case store.SubNone, "incomplete", "incomplete_expired":
		return free, ReasonIncomplete
	}
	return free, ReasonLapsed
}

// Limits returns what the tenant's plan allows now. Other features ask it
// (say, whether BYO LLM keys or the platform's keys may be used).
func (s *Service) Limits(ctx context.Context, tenantID uuid.UUID) (Limits, error) {
	var l Limits
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		plan, _, err := s.effective(ctx, tx, tenantID)
		l = limitsOf(plan, s.Enforced())
		return err
	})
	if err != nil {
		return Limits{}, fmt.Errorf("billing: limits: %w", err)
	}
	return l, nil
}

// KeyPolicy says whether a tenant's model calls may use its own LLM keys
// (the plan allows bringing them) and the platform's (the plan pays for
// tokens, and this month's are not used up). Without billing, both.
func (s *Service) KeyPolicy(ctx context.Context, tenantID uuid.UUID) (own, platform bool, err error) {
	if !s.Enforced() {
		return true, true, nil
	}
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		plan, _, err := s.effective(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		own = plan.BYOKeys
		platform = plan.PlatformTokensPerMonth == nil
		if !platform && *plan.PlatformTokensPerMonth > 0 {
			counts, err := tx.CountBilling(ctx, tenantID, s.now())
			if err != nil {
				return err
			}
			platform = counts.Tokens < *plan.PlatformTokensPerMonth
		}
		return nil
	})
	if err != nil {
		return false, false, fmt.Errorf("billing: key policy: %w", err)
	}
	return own, platform, nil
}

func (s *Service) effective(ctx context.Context, tx *store.Tx, tenantID uuid.UUID) (store.Plan, string, error) {
	acct, err := tx.GetBillingAccount(ctx, tenantID)
	if err != nil {
		return store.Plan{}, "", err
	}
	plans, err := tx.ListPlans(ctx)
	if err != nil {
		return store.Plan{}, "", err
	}
	p, why := Effective(acct, plans, s.now(), s.grace())
	return p, why, nil
}

// Resources a plan counts.
const (
	ResourceAgents   = "agents"
	ResourceChannels = "channels"
)

// ErrPlanLimitCode is the API error code of a refusal over a plan's count.
const ErrPlanLimitCode = "plan_limit"

// CheckCreate refuses, with 402 plan_limit and a link to the Billing page,
// to create one more of resource when the tenant's plan has no room. It runs
// inside the creating transaction and locks the tenant's billing row, so
// concurrent creations cannot both take the last place.
func (s *Service) CheckCreate(ctx context.Context, tx *store.Tx, tenantID uuid.UUID, resource string) error {
	if !s.Enforced() {
		return nil
	}
	acct, err := tx.LockBillingAccount(ctx, tenantID)
	if err != nil {
		return err
	}
	plans, err := tx.ListPlans(ctx)
	if err != nil {
		return err
	}
	plan, _ := Effective(acct, plans, s.now(), s.grace())
	counts, err := tx.CountBilling(ctx, tenantID, s.now())
	if err != nil {
		return err
	}
	limit, have, what := plan.MaxAgents, counts.Agents, "agents"
	if resource == ResourceChannels {
		limit, have, what = plan.MaxChannels, counts.Channels, "channels"
	}
	if limit == nil || have < *limit {
		return nil
	}
	return PlanLimitError(fmt.Sprintf("The %s plan includes %d %s and this organisation has %d. Upgrade the plan to add more: %s",
		plan.Name, *limit, what, have, s.BillingURL(tenantID)), s.BillingURL(tenantID))
}

// PlanLimitError is the 402 a refused creation answers with.
func PlanLimitError(message, upgradeURL string) *apperr.Error {
	e := apperr.New(http.StatusPaymentRequired, ErrPlanLimitCode, message)
	e.URL = upgradeURL
	return e
}

// BillingURL is the portal's Billing page of a tenant.
func (s *Service) BillingURL(tenantID uuid.UUID) string {
	return s.PublicURL + "/t/" + tenantID.String() + "/billing"
}

// period is the first instant of now's calendar month in UTC.
func period(now time.Time) time.Time {
	now = now.UTC()
	return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
}
