package v1

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/store"
)

type planJSON struct {
	ID                     string `json:"id"`
	Name                   string `json:"name"`
	MonthlyPriceCents      int    `json:"monthly_price_cents"`
	Paid                   bool   `json:"paid"`
	MaxAgents              *int   `json:"max_agents"`
	MaxChannels            *int   `json:"max_channels"`
	MessagesPerMonth       *int   `json:"messages_per_month"`
	PlatformTokensPerMonth *int64 `json:"platform_tokens_per_month"`
	BYOKeys                bool   `json:"byo_keys"`
	// Available: a paid plan with a Stripe price configured (Checkout works).
	Available bool `json:"available"`
}

type budgetJSON struct {
	AgentID         *string `json:"agent_id"`
	AgentName       string  `json:"agent_name,omitempty"`
	MonthlyLimitUSD float64 `json:"monthly_limit_usd"`
	HardStop        bool    `json:"hard_stop"`
	SpentUSD        float64 `json:"spent_usd"`
	ReservedUSD     float64 `json:"reserved_usd"`
	Percent         int     `json:"percent"`
}

type billingJSON struct {
	Plan               planJSON        `json:"plan"`
	SubscribedPlan     string          `json:"subscribed_plan"`
	Status             string          `json:"status"`
	PlanReason         string          `json:"plan_reason"`
	CurrentPeriodEnd   *string         `json:"current_period_end"`
	CancelAtPeriodEnd  bool            `json:"cancel_at_period_end"`
	GraceEndsAt        *string         `json:"grace_ends_at"`
	Limits             billing.Limits  `json:"limits"`
	Usage              billingUsage    `json:"usage"`
	Budgets            []budgetJSON    `json:"budgets"`
	Plans              []planJSON      `json:"plans"`
	CheckoutAvailable  bool            `json:"checkout_available"`
	Notices            []billingNotice `json:"notices"`
	StripeCustomerLink bool            `json:"has_stripe_customer"`
}

type billingUsage struct {
	Agents            int   `json:"agents"`
	Channels          int   `json:"channels"`
	MessagesThisMonth int64 `json:"messages_this_month"`
	TokensThisMonth   int64 `json:"tokens_this_month"`
}

type billingNotice struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func usd(micro int64) float64 { return float64(micro) / 1e6 }

func planOut(p store.Plan, prices map[string]string) planJSON {
	return planJSON{ID: p.ID, Name: p.Name, MonthlyPriceCents: p.MonthlyPriceCents, Paid: p.Paid, MaxAgents: p.MaxAgents,
		MaxChannels: p.MaxChannels, MessagesPerMonth: p.MessagesPerMonth, PlatformTokensPerMonth: p.PlatformTokensPerMonth,
		BYOKeys: p.BYOKeys, Available: p.Paid && prices[p.ID] != ""}
}

// BudgetsOut shapes budgets for JSON (the portal's forms read the same).
func budgetsOut(bs []store.Budget) []budgetJSON {
	out := make([]budgetJSON, 0, len(bs))
	for _, b := range bs {
		j := budgetJSON{AgentName: b.AgentName, MonthlyLimitUSD: usd(b.LimitMicroUSD), HardStop: b.HardStop,
			SpentUSD: usd(b.SpentMicroUSD), ReservedUSD: usd(b.ReservedMicroUSD)}
		if b.AgentID != nil {
			s := b.AgentID.String()
			j.AgentID = &s
		}
		if b.LimitMicroUSD > 0 {
			j.Percent = int(b.SpentMicroUSD * 100 / b.LimitMicroUSD)
		}
		out = append(out, j)
	}
	return out
}

func (a *API) billingService() (*billing.Service, error) {
	if a.Billing == nil {
		return nil, apperr.Unavailable("billing is not available on this server")
	}
	return a.Billing, nil
}

// getBilling answers the tenant's plan, subscription, usage against each
// limit, budgets and the plans on offer.
func (a *API) getBilling(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	b, err := a.billingService()
	if err != nil {
		return err
	}
	o, err := b.Overview(c.Request.Context(), tenantID)
	if err != nil {
		return notFoundAs(err, "tenant")
	}
	out := billingJSON{Plan: planOut(o.Plan, b.Prices), SubscribedPlan: o.Account.PlanID, Status: o.Account.Status,
		PlanReason: o.Reason, CurrentPeriodEnd: tsPtr(o.Account.CurrentPeriodEnd), CancelAtPeriodEnd: o.Account.CancelAtPeriodEnd,
		GraceEndsAt: tsPtr(o.GraceEnds), Limits: o.Limits, Budgets: budgetsOut(o.Budgets), CheckoutAvailable: o.Checkout,
		Usage: billingUsage{Agents: o.Counts.Agents, Channels: o.Counts.Channels, MessagesThisMonth: o.Counts.Messages,
			TokensThisMonth: o.Counts.Tokens},
		StripeCustomerLink: o.Account.StripeCustomerID != "", Notices: []billingNotice{}, Plans: []planJSON{}}
	for _, p := range o.Plans {
		out.Plans = append(out.Plans, planOut(p, b.Prices))
	}
	for _, n := range o.Banners {
		out.Notices = append(out.Notices, billingNotice{Kind: n.Kind, Message: n.Message})
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// createCheckout starts a Stripe Checkout session for a paid plan.
func (a *API) createCheckout(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	b, err := a.billingService()
	if err != nil {
		return err
	}
	var req struct {
		Plan string `json:"plan"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	if req.Plan == "" {
		return apperr.Invalid("plan", "is required: the ID of a paid plan (GET .../billing lists them)")
	}
	url, err := b.Checkout(c.Request.Context(), principal(c), tenantID, req.Plan)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"url": url})
	return nil
}

// createPortalSession opens the Stripe Billing Portal for the tenant.
func (a *API) createPortalSession(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	b, err := a.billingService()
	if err != nil {
		return err
	}
	url, err := b.Portal(c.Request.Context(), principal(c), tenantID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"url": url})
	return nil
}

// putBudget sets (or with monthly_limit_usd 0 removes) the tenant's monthly
// budget, or one agent's, and answers the billing overview's budgets.
func (a *API) putBudget(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	b, err := a.billingService()
	if err != nil {
		return err
	}
	var req struct {
		AgentID         *string  `json:"agent_id"`
		MonthlyLimitUSD *float64 `json:"monthly_limit_usd"`
		HardStop        bool     `json:"hard_stop"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	if req.MonthlyLimitUSD == nil {
		return apperr.Invalid("monthly_limit_usd", "is required: dollars per calendar month (UTC), or 0 to remove the budget")
	}
	in := billing.BudgetInput{LimitUSD: *req.MonthlyLimitUSD, HardStop: req.HardStop}
	if req.AgentID != nil {
		id, err := uuid.Parse(*req.AgentID)
		if err != nil {
			return apperr.Invalid("agent_id", "must be the ID of one of this organisation's agents, or null for the whole organisation")
		}
		in.AgentID = &id
	}
	ctx := c.Request.Context()
	if err := b.PutBudget(ctx, principal(c), tenantID, in); err != nil {
		return notFoundAs(err, "tenant")
	}
	o, err := b.Overview(ctx, tenantID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"budgets": budgetsOut(o.Budgets)})
	return nil
}

// usage answers the tenant's tokens and cost in a range, grouped by day,
// hour, agent or model; ?format=csv downloads the same rows.
func (a *API) usage(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	b, err := a.billingService()
	if err != nil {
		return err
	}
	q, format, err := ParseUsageQuery(c)
	if err != nil {
		return err
	}
	r, err := b.Usage(c.Request.Context(), tenantID, q)
	if err != nil {
		return notFoundAs(err, "tenant")
	}
	if format == "csv" {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", `attachment; filename="usage-`+tenantID.String()+`-`+r.Query.GroupBy+`.csv"`)
		c.Header("Cache-Control", "no-store")
		c.Status(http.StatusOK)
		return r.WriteCSV(c.Writer)
	}
	type rowJSON struct {
		Bucket       *string `json:"bucket,omitempty"`
		AgentID      *string `json:"agent_id,omitempty"`
		AgentName    *string `json:"agent_name,omitempty"`
		Provider     string  `json:"provider,omitempty"`
		Model        string  `json:"model,omitempty"`
		Calls        int     `json:"calls"`
		InputTokens  int64   `json:"input_tokens"`
		OutputTokens int64   `json:"output_tokens"`
		CostMicroUSD int64   `json:"cost_micro_usd"`
		CostUSD      float64 `json:"cost_usd"`
	}
	rows := make([]rowJSON, 0, len(r.Rows))
	for _, row := range r.Rows {
		j := rowJSON{Provider: row.Provider, Model: row.Model, Calls: row.Calls, InputTokens: row.InputTokens,
			OutputTokens: row.OutputTokens, CostMicroUSD: row.CostMicroUSD, CostUSD: usd(row.CostMicroUSD)}
		switch r.Query.GroupBy {
		case billing.GroupDay, billing.GroupHour:
			s := ts(row.Day)
			j.Bucket = &s
		case billing.GroupAgent:
			name := row.AgentName
			j.AgentName = &name
			if row.AgentID != nil {
				s := row.AgentID.String()
				j.AgentID = &s
			}
		}
		rows = append(rows, j)
	}
	c.JSON(http.StatusOK, gin.H{
		"from": ts(r.Query.From), "to": ts(r.Query.To), "group_by": r.Query.GroupBy,
		"totals": gin.H{"calls": r.Totals.Calls, "input_tokens": r.Totals.InputTokens, "output_tokens": r.Totals.OutputTokens,
			"cost_micro_usd": r.Totals.CostMicroUSD, "cost_usd": usd(r.Totals.CostMicroUSD)},
		"rows": rows,
	})
	return nil
}

// ParseUsageQuery reads from, to (RFC 3339 or YYYY-MM-DD, UTC), group_by,
// agent_id and format.
func ParseUsageQuery(c *gin.Context) (billing.UsageQuery, string, error) {
	var q billing.UsageQuery
	parse := func(name string, endOfDay bool) (time.Time, error) {
		v := c.Query(name)
		if v == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC(), nil
		}
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return time.Time{}, apperr.Invalid(name, "must be an RFC 3339 time (2026-11-01T09:30:00Z) or a date (2026-11-01)")
		}
		if endOfDay {
			t = t.Add(24 * time.Hour) // a date as `to` includes that day
		}
		return t, nil
	}
	var err error
	if q.From, err = parse("from", false); err != nil {
		return q, "", err
	}
	if q.To, err = parse("to", true); err != nil {
		return q, "", err
	}
	q.GroupBy = c.Query("group_by")
	if v := c.Query("agent_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return q, "", apperr.Invalid("agent_id", "must be an agent's ID")
		}
		q.AgentID = &id
	}
	format := c.Query("format")
	if format != "" && format != "json" && format != "csv" {
		return q, "", apperr.Invalid("format", "must be json or csv")
	}
	return q, format, nil
}
