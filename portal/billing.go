package portal

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/store"
)

type planCard struct {
	store.Plan
	Current   bool // the plan subscribed to (or Free, for a tenant without one)
	Available bool // a paid plan with a Stripe price: Checkout works
	Features  []string
}

type limitMeter struct {
	Label   string
	Used    string
	Limit   string // "" unlimited
	Percent float64
	Level   string // ok | warn | over
}

type billingData struct {
	billing.Overview
	PlanCards  []planCard
	Meters     []limitMeter
	Budgets    []budgetMeter
	Agents     []store.Agent
	Subscribed bool // a live Stripe subscription: changes go through the Billing Portal
	StatusText string
	StatusKind string // badge class
}

func planFeatures(p store.Plan) []string {
	count := func(n *int, one, many string) string {
		if n == nil {
			return "Unlimited " + many
		}
		if *n == 1 {
			return "1 " + one
		}
		return num(*n) + " " + many
	}
	out := []string{count(p.MaxAgents, "agent", "agents"), count(p.MaxChannels, "channel", "channels")}
	if p.MessagesPerMonth == nil {
		out = append(out, "Unlimited messages")
	} else {
		out = append(out, num(*p.MessagesPerMonth)+" messages a month")
	}
	if p.PlatformTokensPerMonth == nil {
		out = append(out, "Unlimited model tokens")
	} else {
		out = append(out, compact(*p.PlatformTokensPerMonth)+" model tokens a month included")
	}
	if p.BYOKeys {
		out = append(out, "Bring your own LLM keys")
	}
	return out
}

func meter(label string, used int64, limit *int64) limitMeter {
	m := limitMeter{Label: label, Used: num(used), Level: "ok"}
	if limit == nil {
		return m
	}
	m.Limit = num(*limit)
	if *limit > 0 {
		m.Percent = min(100, float64(used)*100/float64(*limit))
	} else {
		m.Percent = 100
	}
	switch {
	case used >= *limit:
		m.Level = "over"
	case used*10 >= *limit*8:
		m.Level = "warn"
	}
	return m
}

func i64(p *int) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

var statusLabels = map[string][2]string{
	store.SubNone:        {"Free", "muted"},
	store.SubActive:      {"Active", "active"},
	store.SubTrialing:    {"Trial", "active"},
	store.SubPastDue:     {"Payment due", "warn"},
	store.SubUnpaid:      {"Unpaid", "danger"},
	store.SubCanceled:    {"Canceled", "muted"},
	store.SubPaused:      {"Paused", "warn"},
	"incomplete":         {"Awaiting payment", "warn"},
	"incomplete_expired": {"Expired", "muted"},
}

// billingPage shows the plan, subscription, usage against each limit, the
// plans on offer and the budgets.
func (p *Portal) billingPage(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	if p.d.Billing == nil {
		p.renderError(c, http.StatusServiceUnavailable, "Billing is not available", "This server runs without the billing service.")
		return
	}
	ctx := c.Request.Context()
	o, err := p.d.Billing.Overview(ctx, tenant.ID)
	if err != nil {
		p.fail(c, err)
		return
	}
	d := &billingData{Overview: o, Budgets: budgetMeters(o.Budgets)}
	if d.Agents, err = p.d.Designer.List(ctx, tenant.ID); err != nil {
		p.fail(c, err)
		return
	}
	switch o.Account.Status {
	case store.SubActive, store.SubTrialing, store.SubPastDue, store.SubUnpaid, store.SubPaused:
		d.Subscribed = o.Account.StripeSubscriptionID != ""
	}
	label := statusLabels[o.Account.Status]
	if label[0] == "" {
		label = [2]string{o.Account.Status, "muted"}
	}
	d.StatusText, d.StatusKind = label[0], label[1]
	for _, pl := range o.Plans {
		current := pl.ID == o.Account.PlanID && (d.Subscribed || !pl.Paid)
		if !d.Subscribed && pl.ID == store.FreePlan {
			current = true
		}
		d.PlanCards = append(d.PlanCards, planCard{Plan: pl, Current: current, Available: pl.Paid && p.d.Billing.Prices[pl.ID] != "",
			Features: planFeatures(pl)})
	}
	l := o.Limits
	d.Meters = []limitMeter{
		meter("Agents", int64(o.Counts.Agents), i64(l.MaxAgents)),
		meter("Channels", int64(o.Counts.Channels), i64(l.MaxChannels)),
		meter("Messages this month", o.Counts.Messages, i64(l.MessagesPerMonth)),
		meter("Model tokens this month", o.Counts.Tokens, l.PlatformTokensPerMonth),
	}
	pg := &Page{Title: "Billing", Section: "billing", Tenant: tenant, Data: d}
	switch c.Query("checkout") {
	case "success":
		pg.Flash = &Flash{Kind: "success", Message: "Thank you! Your plan changes here as soon as Stripe confirms the payment, usually within seconds."}
	case "canceled":
		pg.Flash = &Flash{Kind: "info", Message: "Checkout was canceled; nothing changed."}
	}
	p.render(c, http.StatusOK, "billing", pg)
}

// billingCheckout sends the browser to Stripe Checkout for a plan.
func (p *Portal) billingCheckout(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	if p.d.Billing == nil {
		p.renderError(c, http.StatusServiceUnavailable, "Billing is not available", "This server runs without the billing service.")
		return
	}
	url, err := p.d.Billing.Checkout(c.Request.Context(), viewerOf(c).Principal, tenant.ID, c.PostForm("plan"))
	if err != nil {
		p.billingError(c, tenant, err)
		return
	}
	c.Redirect(http.StatusSeeOther, url)
}

// billingPortal sends the browser to the Stripe Billing Portal.
func (p *Portal) billingPortal(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	if p.d.Billing == nil {
		p.renderError(c, http.StatusServiceUnavailable, "Billing is not available", "This server runs without the billing service.")
		return
	}
	url, err := p.d.Billing.Portal(c.Request.Context(), viewerOf(c).Principal, tenant.ID)
	if err != nil {
		p.billingError(c, tenant, err)
		return
	}
	c.Redirect(http.StatusSeeOther, url)
}

// billingError shows a refusal the operator can act on as a flash on the
// Billing page; anything else as an error page.
func (p *Portal) billingError(c *gin.Context, tenant *store.Tenant, err error) {
	e := apperr.From(err)
	if e.Status >= 500 && e.Status != http.StatusServiceUnavailable && e.Status != http.StatusBadGateway {
		p.fail(c, err)
		return
	}
	if e.Status >= 500 {
		p.d.Logger.WarnContext(c.Request.Context(), "billing action failed", "err", err)
	}
	p.back(c, "/t/"+tenant.ID.String()+"/billing", "error", e.Message)
}

// billingBudget sets or removes the organisation's or an agent's budget.
func (p *Portal) billingBudget(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	if p.d.Billing == nil {
		p.renderError(c, http.StatusServiceUnavailable, "Billing is not available", "This server runs without the billing service.")
		return
	}
	in := billing.BudgetInput{HardStop: c.PostForm("hard_stop") == "on"}
	raw := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c.PostForm("monthly_limit_usd")), "$"))
	back := "/t/" + tenant.ID.String() + "/billing#budgets"
	if raw == "" {
		raw = "0"
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(raw, ",", ""), 64)
	if err != nil {
		p.back(c, back, "error", "The budget must be an amount in dollars, such as 50 or 12.50 (0 removes it).")
		return
	}
	in.LimitUSD = v
	if a := c.PostForm("agent_id"); a != "" {
		id, err := uuid.Parse(a)
		if err != nil {
			p.back(c, back, "error", "Choose one of your agents, or the whole organisation.")
			return
		}
		in.AgentID = &id
	}
	if err := p.d.Billing.PutBudget(c.Request.Context(), viewerOf(c).Principal, tenant.ID, in); err != nil {
		e := apperr.From(err)
		if e.Status == http.StatusUnprocessableEntity {
			p.back(c, back, "error", "The budget "+e.Message+".")
			return
		}
		p.fail(c, err)
		return
	}
	msg := "Budget saved."
	if v == 0 {
		msg = "Budget removed."
	}
	p.back(c, back, "success", msg)
}
