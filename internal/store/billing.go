package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Plan is a row of the plans table: what a subscription allows. Nil limits
// are unlimited.
type Plan struct {
	ID                     string
	Name                   string
	Position               int
	MonthlyPriceCents      int
	MaxAgents              *int
	MaxChannels            *int
	MessagesPerMonth       *int
	BYOKeys                bool
	PlatformTokensPerMonth *int64
	Paid                   bool
}

// FreePlan is the plan of a tenant without a subscription.
const FreePlan = "free"

const planCols = `id, name, position, monthly_price_cents, max_agents, max_channels, messages_per_month, byo_keys,
	platform_tokens_per_month, paid`

func scanPlan(row pgx.Row) (Plan, error) {
	var p Plan
	err := row.Scan(&p.ID, &p.Name, &p.Position, &p.MonthlyPriceCents, &p.MaxAgents, &p.MaxChannels, &p.MessagesPerMonth,
		&p.BYOKeys, &p.PlatformTokensPerMonth, &p.Paid)
	return p, mapErr(err)
}

// ListPlans returns every plan, cheapest first.
func (t *Tx) ListPlans(ctx context.Context) ([]Plan, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+planCols+` FROM plans ORDER BY position`)
	if err != nil {
		return nil, fmt.Errorf("store: list plans: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Plan, error) { return scanPlan(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list plans: %w", err)
	}
	return out, nil
}

// BillingAccount is a tenant's subscription state as Stripe last told it.
type BillingAccount struct {
	TenantID             uuid.UUID
	PlanID               string
	Status               string // none | incomplete | trialing | active | past_due | unpaid | canceled | paused ...
	StripeCustomerID     string
	StripeSubscriptionID string
	CurrentPeriodEnd     *time.Time
	CancelAtPeriodEnd    bool
	TrialEnd             *time.Time
	PastDueSince         *time.Time
	LastEventCreated     *time.Time
	LastPaymentFailedAt  *time.Time
	LastPaidAt           *time.Time
	UpdatedAt            time.Time
}

// Subscription statuses (Stripe's, plus none for a tenant that never subscribed).
const (
	SubNone     = "none"
	SubActive   = "active"
	SubTrialing = "trialing"
	SubPastDue  = "past_due"
	SubUnpaid   = "unpaid"
	SubCanceled = "canceled"
	SubPaused   = "paused"
)

const billingCols = `tenant_id, plan_id, status, coalesce(stripe_customer_id, ''), coalesce(stripe_subscription_id, ''),
	current_period_end, cancel_at_period_end, trial_end, past_due_since, last_event_created, last_payment_failed_at,
	last_paid_at, updated_at`

func scanBilling(row pgx.Row) (BillingAccount, error) {
	var b BillingAccount
	err := row.Scan(&b.TenantID, &b.PlanID, &b.Status, &b.StripeCustomerID, &b.StripeSubscriptionID, &b.CurrentPeriodEnd,
		&b.CancelAtPeriodEnd, &b.TrialEnd, &b.PastDueSince, &b.LastEventCreated, &b.LastPaymentFailedAt, &b.LastPaidAt,
		&b.UpdatedAt)
	return b, mapErr(err)
}

// GetBillingAccount returns the tenant's billing state; a tenant that never
// had one is on the free plan with status none.
func (t *Tx) GetBillingAccount(ctx context.Context, tenantID uuid.UUID) (BillingAccount, error) {
	b, err := scanBilling(t.tx.QueryRow(ctx, `SELECT `+billingCols+` FROM billing_accounts WHERE tenant_id = $1`, t.scope(tenantID)))
	if errors.Is(err, ErrNotFound) {
		return BillingAccount{TenantID: t.scope(tenantID), PlanID: FreePlan, Status: SubNone}, nil
	}
	if err != nil {
		return BillingAccount{}, fmt.Errorf("store: get billing account: %w", err)
	}
	return b, nil
}

// LockBillingAccount creates the tenant's billing row if needed and locks it
// until the transaction ends: plan-limit checks (counting agents, channels)
// and subscription changes of one tenant then run one at a time.
func (t *Tx) LockBillingAccount(ctx context.Context, tenantID uuid.UUID) (BillingAccount, error) {
	if _, err := t.tx.Exec(ctx, `INSERT INTO billing_accounts (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING`, t.scope(tenantID)); err != nil {
		return BillingAccount{}, fmt.Errorf("store: lock billing account: %w", mapErr(err))
	}
	b, err := scanBilling(t.tx.QueryRow(ctx, `SELECT `+billingCols+` FROM billing_accounts WHERE tenant_id = $1 FOR UPDATE`, t.scope(tenantID)))
	if err != nil {
		return BillingAccount{}, fmt.Errorf("store: lock billing account: %w", err)
	}
	return b, nil
}

// SetStripeIDs links the tenant to its Stripe customer (and subscription,
// when given); empty arguments leave the stored values alone.
func (t *Tx) SetStripeIDs(ctx context.Context, tenantID uuid.UUID, customerID, subscriptionID string) error {
	_, err := t.tx.Exec(ctx, `
		INSERT INTO billing_accounts (tenant_id, stripe_customer_id, stripe_subscription_id) VALUES ($1, NULLIF($2, ''), NULLIF($3, ''))
		ON CONFLICT (tenant_id) DO UPDATE SET
			stripe_customer_id = coalesce(NULLIF($2, ''), billing_accounts.stripe_customer_id),
			stripe_subscription_id = coalesce(NULLIF($3, ''), billing_accounts.stripe_subscription_id),
			updated_at = now()`, t.scope(tenantID), customerID, subscriptionID)
	if err != nil {
		return fmt.Errorf("store: set stripe IDs: %w", mapErr(err))
	}
	return nil
}

// TenantByStripeCustomer finds the tenant linked to a Stripe customer
// (platform scope: the webhook does not know the tenant yet).
func (t *Tx) TenantByStripeCustomer(ctx context.Context, customerID string) (uuid.UUID, error) {
	var id uuid.UUID
	err := t.tx.QueryRow(ctx, `SELECT tenant_id FROM billing_accounts WHERE stripe_customer_id = $1`, customerID).Scan(&id)
	if err != nil {
		return uuid.Nil, fmt.Errorf("store: tenant by stripe customer: %w", mapErr(err))
	}
	return id, nil
}

// RecordStripeEvent notes that an event was applied (outcome: applied, stale
// or ignored). fresh is false when it already was: the caller then changes
// nothing, which makes redelivery harmless.
func (t *Tx) RecordStripeEvent(ctx context.Context, tenantID uuid.UUID, eventID, typ string, created time.Time, outcome string) (fresh bool, err error) {
	tag, err := t.tx.Exec(ctx, `INSERT INTO stripe_events (tenant_id, event_id, type, created, outcome) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`, t.scope(tenantID), eventID, typ, created, outcome)
	if err != nil {
		return false, fmt.Errorf("store: record stripe event: %w", mapErr(err))
	}
	return tag.RowsAffected() == 1, nil
}

// StripeEventSeen reports whether an event was already applied.
func (t *Tx) StripeEventSeen(ctx context.Context, tenantID uuid.UUID, eventID string) (bool, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM stripe_events WHERE tenant_id = $1 AND event_id = $2`, t.scope(tenantID), eventID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: stripe event seen: %w", mapErr(err))
	}
	return n > 0, nil
}

// SubscriptionState is what a subscription event says.
type SubscriptionState struct {
	PlanID            string // "" keeps the stored plan (a price no plan is configured with)
	Status            string
	CustomerID        string
	SubscriptionID    string
	CurrentPeriodEnd  *time.Time
	CancelAtPeriodEnd bool
	TrialEnd          *time.Time
	Created           time.Time // the event's created: newer state only
}

// ApplySubscription stores s unless the account holds state from a newer
// event. applied is false for such a stale event. past_due_since is set when
// the status becomes past_due and cleared when it leaves it.
func (t *Tx) ApplySubscription(ctx context.Context, tenantID uuid.UUID, s SubscriptionState) (applied bool, err error) {
	tag, err := t.tx.Exec(ctx, `
		INSERT INTO billing_accounts AS b (tenant_id, plan_id, status, stripe_customer_id, stripe_subscription_id,
			current_period_end, cancel_at_period_end, trial_end, past_due_since, last_event_created)
		VALUES ($1, coalesce(NULLIF($2, ''), 'free'), $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8,
			CASE WHEN $3 = 'past_due' THEN $9::timestamptz END, $9)
		ON CONFLICT (tenant_id) DO UPDATE SET
			plan_id = coalesce(NULLIF($2, ''), b.plan_id),
			status = $3,
			stripe_customer_id = coalesce(NULLIF($4, ''), b.stripe_customer_id),
			stripe_subscription_id = coalesce(NULLIF($5, ''), b.stripe_subscription_id),
			current_period_end = $6, cancel_at_period_end = $7, trial_end = $8,
			past_due_since = CASE WHEN $3 <> 'past_due' THEN NULL ELSE coalesce(b.past_due_since, $9) END,
			last_event_created = $9, updated_at = now()
		WHERE b.last_event_created IS NULL OR b.last_event_created <= $9`,
		t.scope(tenantID), s.PlanID, s.Status, s.CustomerID, s.SubscriptionID, s.CurrentPeriodEnd, s.CancelAtPeriodEnd,
		s.TrialEnd, s.Created)
	if err != nil {
		return false, fmt.Errorf("store: apply subscription: %w", mapErr(err))
	}
	return tag.RowsAffected() == 1, nil
}

// NoteInvoice records a paid or failed invoice's time (the newest wins).
func (t *Tx) NoteInvoice(ctx context.Context, tenantID uuid.UUID, paid bool, at time.Time) error {
	col := "last_payment_failed_at"
	if paid {
		col = "last_paid_at"
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO billing_accounts AS b (tenant_id, `+col+`) VALUES ($1, $2)
		ON CONFLICT (tenant_id) DO UPDATE SET `+col+` = greatest(b.`+col+`, $2), updated_at = now()`, t.scope(tenantID), at)
	if err != nil {
		return fmt.Errorf("store: note invoice: %w", mapErr(err))
	}
	return nil
}

// BillingCounts are what the plan's count limits are checked against.
type BillingCounts struct {
	Agents   int
	Channels int
	Messages int64 // user messages received this month
	Tokens   int64 // tokens used this month
}

// CountBilling counts the tenant's agents and channels and this month's
// messages and tokens.
func (t *Tx) CountBilling(ctx context.Context, tenantID uuid.UUID, now time.Time) (BillingCounts, error) {
	var c BillingCounts
	err := t.tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM agents WHERE tenant_id = $1),
			(SELECT count(*) FROM channel_connections WHERE tenant_id = $1),
			coalesce((SELECT messages FROM usage_counters WHERE tenant_id = $1 AND period = billing_period($2)), 0),
			coalesce((SELECT tokens FROM usage_counters WHERE tenant_id = $1 AND period = billing_period($2)), 0)`,
		t.scope(tenantID), now).Scan(&c.Agents, &c.Channels, &c.Messages, &c.Tokens)
	if err != nil {
		return BillingCounts{}, fmt.Errorf("store: count billing: %w", mapErr(err))
	}
	return c, nil
}

// ClaimNotice records that the notice key was sent this period. send is true
// for the first claim, and for a retry of the turn that made it (turnKey),
// so a retried activity still hands the notice to the workflow.
func (t *Tx) ClaimNotice(ctx context.Context, tenantID uuid.UUID, period time.Time, key, turnKey string) (send bool, err error) {
	var got string
	err = t.tx.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO billing_notices (tenant_id, period, key, turn_key) VALUES ($1, billing_period($2), $3, $4)
			ON CONFLICT DO NOTHING RETURNING turn_key)
		SELECT turn_key FROM ins
		UNION ALL
		SELECT turn_key FROM billing_notices WHERE tenant_id = $1 AND period = billing_period($2) AND key = $3
		LIMIT 1`, t.scope(tenantID), period, key, turnKey).Scan(&got)
	if err != nil {
		return false, fmt.Errorf("store: claim notice: %w", mapErr(err))
	}
	return got == turnKey, nil
}

// Budget is a monthly spending limit, the tenant's (AgentID nil) or an agent's.
type Budget struct {
	ID            uuid.UUID
	TenantID      uuid.UUID
	AgentID       *uuid.UUID
	AgentName     string
	LimitMicroUSD int64
	HardStop      bool
	// This month's figures.
	SpentMicroUSD    int64
	ReservedMicroUSD int64
	Alerted80At      *time.Time
	Alerted100At     *time.Time
}

// ListBudgets returns the tenant's budgets with this month's spending; the
// month of a budget that has no row yet is summed from the usage.
func (t *Tx) ListBudgets(ctx context.Context, now time.Time) ([]Budget, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT b.id, b.tenant_id, b.agent_id, coalesce(a.name, ''), b.limit_micro_usd, b.hard_stop,
			coalesce(p.spent_micro_usd, (SELECT coalesce(sum(u.cost_micro_usd), 0) FROM llm_usage u
				WHERE u.tenant_id = b.tenant_id AND (b.agent_id IS NULL OR u.agent_id = b.agent_id)
				AND u.created_at >= (billing_period($1)::timestamp AT TIME ZONE 'UTC'))),
			coalesce(p.reserved_micro_usd, 0), p.alerted_80_at, p.alerted_100_at
		FROM budgets b
		LEFT JOIN agents a ON a.tenant_id = b.tenant_id AND a.id = b.agent_id
		LEFT JOIN budget_periods p ON p.budget_id = b.id AND p.period = billing_period($1)
		ORDER BY b.agent_id NULLS FIRST, a.name`, now)
	if err != nil {
		return nil, fmt.Errorf("store: list budgets: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Budget, error) {
		var b Budget
		err := r.Scan(&b.ID, &b.TenantID, &b.AgentID, &b.AgentName, &b.LimitMicroUSD, &b.HardStop, &b.SpentMicroUSD,
			&b.ReservedMicroUSD, &b.Alerted80At, &b.Alerted100At)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list budgets: %w", mapErr(err))
	}
	return out, nil
}

// PutBudget creates or replaces the budget of the tenant (agentID nil) or of
// one of its agents.
func (t *Tx) PutBudget(ctx context.Context, tenantID uuid.UUID, agentID *uuid.UUID, limit int64, hardStop bool) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO budgets (tenant_id, agent_id, limit_micro_usd, hard_stop) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, agent_id) DO UPDATE SET limit_micro_usd = $3, hard_stop = $4, updated_at = now()`,
		t.scope(tenantID), agentID, limit, hardStop)
	if err != nil {
		return fmt.Errorf("store: put budget: %w", mapErr(err))
	}
	return nil
}

// DeleteBudget removes the budget of the tenant (agentID nil) or an agent.
func (t *Tx) DeleteBudget(ctx context.Context, tenantID uuid.UUID, agentID *uuid.UUID) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM budgets WHERE tenant_id = $1 AND agent_id IS NOT DISTINCT FROM $2`, t.scope(tenantID), agentID)
	if err != nil {
		return fmt.Errorf("store: delete budget: %w", mapErr(err))
	}
	return nil
}

// Reservation outcomes.
const (
	ReserveGranted  = "granted"  // reserved (or nothing to reserve against)
	ReserveExisting = "existing" // this key reserved (or settled) before: a retry
	ReserveOver     = "over"     // a hard-stop budget is spent
	ReserveBusy     = "busy"     // not spent, but calls in flight have reserved the rest
)

// ReserveResult says whether a model call may go ahead.
type ReserveResult struct {
	Outcome string
	// The budget that refused (Over or Busy).
	Budget Budget
}

// ReserveBudget reserves amount for the model call key against every
// hard-stop budget it falls under (the tenant's, and agentID's), in this
// transaction: the budgets' month rows are locked (in budget ID order, so
// concurrent reservations never deadlock), each must have room — spent plus
// reserved under the limit — and then each is charged the amount. So
// concurrent calls overshoot a budget by at most one call's estimate.
// Reservations left open longer than stale (an activity that died between
// reserve and settle) are released first.
func (t *Tx) ReserveBudget(ctx context.Context, tenantID uuid.UUID, key string, agentID *uuid.UUID, amount int64, now time.Time, stale time.Duration) (ReserveResult, error) {
	tenantID = t.scope(tenantID)
	var status string
	err := t.tx.QueryRow(ctx, `SELECT status FROM budget_reservations WHERE tenant_id = $1 AND key = $2`, tenantID, key).Scan(&status)
	if err == nil {
		return ReserveResult{Outcome: ReserveExisting}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return ReserveResult{}, fmt.Errorf("store: reserve budget: %w", mapErr(err))
	}
	if err := t.releaseStale(ctx, tenantID, now.Add(-stale)); err != nil {
		return ReserveResult{}, err
	}
	// Ensure this month's rows exist, starting from the month's usage so far.
	if _, err := t.tx.Exec(ctx, `
		INSERT INTO budget_periods (tenant_id, budget_id, period, spent_micro_usd)
		SELECT b.tenant_id, b.id, billing_period($3), (SELECT coalesce(sum(u.cost_micro_usd), 0) FROM llm_usage u
			WHERE u.tenant_id = b.tenant_id AND (b.agent_id IS NULL OR u.agent_id = b.agent_id)
			AND u.created_at >= (billing_period($3)::timestamp AT TIME ZONE 'UTC'))
		FROM budgets b WHERE b.tenant_id = $1 AND b.hard_stop AND (b.agent_id IS NULL OR b.agent_id = $2)
		ON CONFLICT DO NOTHING`, tenantID, agentID, now); err != nil {
		return ReserveResult{}, fmt.Errorf("store: reserve budget: periods: %w", mapErr(err))
	}
	rows, err := t.tx.Query(ctx, `
		SELECT b.id, b.agent_id, b.limit_micro_usd, p.spent_micro_usd, p.reserved_micro_usd
		FROM budgets b JOIN budget_periods p ON p.budget_id = b.id AND p.period = billing_period($3)
		WHERE b.tenant_id = $1 AND b.hard_stop AND (b.agent_id IS NULL OR b.agent_id = $2)
		ORDER BY b.id FOR UPDATE OF p`, tenantID, agentID, now)
	if err != nil {
		return ReserveResult{}, fmt.Errorf("store: reserve budget: lock: %w", mapErr(err))
	}
	budgets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Budget, error) {
		var b Budget
		err := r.Scan(&b.ID, &b.AgentID, &b.LimitMicroUSD, &b.SpentMicroUSD, &b.ReservedMicroUSD)
		return b, err
	})
	if err != nil {
		return ReserveResult{}, fmt.Errorf("store: reserve budget: lock: %w", mapErr(err))
	}
	if len(budgets) == 0 {
		return ReserveResult{Outcome: ReserveGranted}, nil
	}
	ids := make([]uuid.UUID, 0, len(budgets))
	for _, b := range budgets {
		switch {
		case b.SpentMicroUSD >= b.LimitMicroUSD:
			return ReserveResult{Outcome: ReserveOver, Budget: b}, nil
		case b.SpentMicroUSD+b.ReservedMicroUSD >= b.LimitMicroUSD:
			return ReserveResult{Outcome: ReserveBusy, Budget: b}, nil
		}
		ids = append(ids, b.ID)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE budget_periods SET reserved_micro_usd = reserved_micro_usd + $3
		WHERE budget_id = ANY($1) AND period = billing_period($2)`, ids, now, amount); err != nil {
		return ReserveResult{}, fmt.Errorf("store: reserve budget: charge: %w", mapErr(err))
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO budget_reservations (tenant_id, key, period, budget_ids, amount_micro_usd, created_at)
		VALUES ($1, $2, billing_period($3), $4, $5, $3)`, tenantID, key, now, ids, amount); err != nil {
		return ReserveResult{}, fmt.Errorf("store: reserve budget: record: %w", mapErr(err))
	}
	return ReserveResult{Outcome: ReserveGranted}, nil
}

// SettleReservation releases the reservation of the model call key (once):
// its actual cost reaches the budgets through its usage row. released is
// the status to leave: settled after a call, released after a failed one.
func (t *Tx) SettleReservation(ctx context.Context, key, status string) error {
	var ids []uuid.UUID
	var period time.Time
	var amount int64
	err := t.tx.QueryRow(ctx, `UPDATE budget_reservations SET status = $2, settled_at = now()
		WHERE key = $1 AND status = 'reserved' RETURNING budget_ids, period, amount_micro_usd`, key, status).Scan(&ids, &period, &amount)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // nothing reserved, or settled by an earlier attempt
	}
	if err != nil {
		return fmt.Errorf("store: settle reservation: %w", mapErr(err))
	}
	if _, err := t.tx.Exec(ctx, `UPDATE budget_periods SET reserved_micro_usd = greatest(reserved_micro_usd - $3, 0)
		WHERE budget_id = ANY($1) AND period = $2`, ids, period, amount); err != nil {
		return fmt.Errorf("store: settle reservation: %w", mapErr(err))
	}
	return nil
}

func (t *Tx) releaseStale(ctx context.Context, tenantID uuid.UUID, before time.Time) error {
	rows, err := t.tx.Query(ctx, `SELECT key FROM budget_reservations WHERE tenant_id = $1 AND status = 'reserved' AND created_at < $2
		LIMIT 100`, tenantID, before)
	if err != nil {
		return fmt.Errorf("store: release stale reservations: %w", mapErr(err))
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("store: release stale reservations: %w", mapErr(err))
	}
	for _, k := range keys {
		if err := t.SettleReservation(ctx, k, "released"); err != nil {
			return err
		}
	}
	return nil
}

// BudgetAlert is a threshold a budget crossed this month, claimed once.
type BudgetAlert struct {
	Budget
	Percent int // 80 or 100
}

// ClaimBudgetAlerts marks (once per budget and month) the 80% and 100%
// thresholds this month's spending has reached and returns them, so the
// caller sends each alert exactly once.
func (t *Tx) ClaimBudgetAlerts(ctx context.Context, now time.Time) ([]BudgetAlert, error) {
	var out []BudgetAlert
	for _, level := range []struct {
		pct int
		col string
	}{{100, "alerted_100_at"}, {80, "alerted_80_at"}} {
		rows, err := t.tx.Query(ctx, `
			UPDATE budget_periods p SET `+level.col+` = now()
			FROM budgets b LEFT JOIN agents a ON a.tenant_id = b.tenant_id AND a.id = b.agent_id
			WHERE p.budget_id = b.id AND p.period = billing_period($1) AND p.`+level.col+` IS NULL
			  AND p.spent_micro_usd * 100 >= b.limit_micro_usd * $2
			RETURNING b.id, b.tenant_id, b.agent_id, coalesce(a.name, ''), b.limit_micro_usd, b.hard_stop, p.spent_micro_usd`,
			now, level.pct)
		if err != nil {
			return nil, fmt.Errorf("store: claim budget alerts: %w", mapErr(err))
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BudgetAlert, error) {
			a := BudgetAlert{Percent: level.pct}
			err := r.Scan(&a.ID, &a.TenantID, &a.AgentID, &a.AgentName, &a.LimitMicroUSD, &a.HardStop, &a.SpentMicroUSD)
			return a, err
		})
		if err != nil {
			return nil, fmt.Errorf("store: claim budget alerts: %w", mapErr(err))
		}
		out = append(out, got...)
	}
	// Crossing 100% in one step also passes 80%: one email (the 100% one) is
	// enough, so a fresh 80% claim beside a 100% one of the same budget is
	// kept marked but not returned.
	seen := map[uuid.UUID]bool{}
	kept := out[:0]
	for _, a := range out {
		if a.Percent == 80 && seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		kept = append(kept, a)
	}
	return kept, nil
}

// UsageQuery selects usage rows for the cost dashboard and the usage API.
type UsageQuery struct {
	From, To time.Time
	AgentID  *uuid.UUID
	// Bucket is "hour" or "day" for series.
	Bucket string
}

// UsagePoint is usage summed over one bucket and one model.
type UsagePoint struct {
	Bucket   time.Time
	Provider string
	Model    string
	UsageTotals
}

// UsageSeries sums usage per time bucket (UTC) and model in [From, To).
func (t *Tx) UsageSeries(ctx context.Context, q UsageQuery) ([]UsagePoint, error) {
	bucket := "day"
	if q.Bucket == "hour" {
		bucket = "hour"
	}
	rows, err := t.tx.Query(ctx, `
		SELECT date_trunc('`+bucket+`', created_at AT TIME ZONE 'UTC') AS b, provider, model, count(*),
			sum(input_tokens), sum(output_tokens), sum(cost_micro_usd)
		FROM llm_usage WHERE created_at >= $1 AND created_at < $2 AND ($3::uuid IS NULL OR agent_id = $3)
		GROUP BY b, provider, model ORDER BY b, provider, model`, q.From, q.To, q.AgentID)
	if err != nil {
		return nil, fmt.Errorf("store: usage series: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsagePoint, error) {
		var p UsagePoint
		err := r.Scan(&p.Bucket, &p.Provider, &p.Model, &p.Calls, &p.InputTokens, &p.OutputTokens, &p.CostMicroUSD)
		p.Bucket = p.Bucket.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: usage series: %w", mapErr(err))
	}
	return out, nil
}

// UsageGrouped sums usage in [From, To) by "model" or "agent", costliest first.
func (t *Tx) UsageGrouped(ctx context.Context, q UsageQuery, by string) ([]UsageRow, error) {
	var sql string
	switch by {
	case "model":
		sql = `SELECT NULL::uuid, '', provider, model, count(*), sum(input_tokens), sum(output_tokens), sum(cost_micro_usd)
			FROM llm_usage u WHERE created_at >= $1 AND created_at < $2 AND ($3::uuid IS NULL OR agent_id = $3)
			GROUP BY provider, model ORDER BY 8 DESC, 5 DESC, 3, 4`
	case "agent":
		sql = `SELECT u.agent_id, coalesce(a.name, ''), '', '', count(*), sum(u.input_tokens), sum(u.output_tokens),
				sum(u.cost_micro_usd)
			FROM llm_usage u LEFT JOIN agents a ON a.tenant_id = u.tenant_id AND a.id = u.agent_id
			WHERE u.created_at >= $1 AND u.created_at < $2 AND ($3::uuid IS NULL OR u.agent_id = $3)
			GROUP BY u.agent_id, a.name ORDER BY 8 DESC, 5 DESC, 2`
	default:
		return nil, fmt.Errorf("store: usage grouped by %q", by)
	}
	rows, err := t.tx.Query(ctx, sql, q.From, q.To, q.AgentID)
	out, err := collectUsage(rows, err, func(r pgx.CollectableRow, u *UsageRow) error {
		return r.Scan(&u.AgentID, &u.AgentName, &u.Provider, &u.Model, &u.Calls, &u.InputTokens, &u.OutputTokens, &u.CostMicroUSD)
	})
	if err != nil {
		return nil, fmt.Errorf("store: usage by %s: %w", by, err)
	}
	return out, nil
}

// TenantUsage is one tenant's usage in a range, for the platform ranking.
type TenantUsage struct {
	TenantID   uuid.UUID
	TenantName string
	PlanID     string
	Status     string
	UsageTotals
}

// UsageByTenant ranks every tenant by cost in [from, to) (platform scope).
func (t *Tx) UsageByTenant(ctx context.Context, from, to time.Time) ([]TenantUsage, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT te.id, te.name, coalesce(b.plan_id, 'free'), coalesce(b.status, 'none'),
			count(u.id), coalesce(sum(u.input_tokens), 0), coalesce(sum(u.output_tokens), 0), coalesce(sum(u.cost_micro_usd), 0)
		FROM tenants te
		LEFT JOIN billing_accounts b ON b.tenant_id = te.id
		LEFT JOIN llm_usage u ON u.tenant_id = te.id AND u.created_at >= $1 AND u.created_at < $2
		GROUP BY te.id, te.name, b.plan_id, b.status
		ORDER BY 8 DESC, 5 DESC, 2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: usage by tenant: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TenantUsage, error) {
		var u TenantUsage
		err := r.Scan(&u.TenantID, &u.TenantName, &u.PlanID, &u.Status, &u.Calls, &u.InputTokens, &u.OutputTokens, &u.CostMicroUSD)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: usage by tenant: %w", mapErr(err))
	}
	return out, nil
}

// SumUsageRange adds up the usage in [from, to), optionally of one agent.
func (t *Tx) SumUsageRange(ctx context.Context, q UsageQuery) (UsageTotals, error) {
	var u UsageTotals
	err := t.tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
		coalesce(sum(cost_micro_usd), 0) FROM llm_usage WHERE created_at >= $1 AND created_at < $2
		AND ($3::uuid IS NULL OR agent_id = $3)`, q.From, q.To, q.AgentID).
		Scan(&u.Calls, &u.InputTokens, &u.OutputTokens, &u.CostMicroUSD)
	if err != nil {
		return UsageTotals{}, fmt.Errorf("store: sum usage: %w", mapErr(err))
	}
	return u, nil
}
