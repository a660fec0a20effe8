package portal

import (
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/store"
)

// costRange is a time range of the cost dashboard.
type costRange struct {
	Key, Label string
}

var costRanges = []costRange{{"24h", "24 hours"}, {"7d", "7 days"}, {"30d", "30 days"}, {"custom", "Custom"}}

// costQuery reads the dashboard's range (24h, 7d, 30d or custom from/to
// dates, UTC) and agent filter.
type costQuery struct {
	Range    string
	From, To string // custom range, YYYY-MM-DD (to inclusive)
	AgentID  string
	Problem  string // a custom range that could not be read
	q        billing.UsageQuery
}

func readCostQuery(c *gin.Context, now time.Time) costQuery {
	cq := costQuery{Range: c.DefaultQuery("range", "30d"), From: c.Query("from"), To: c.Query("to"), AgentID: c.Query("agent")}
	today := time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day(), 0, 0, 0, 0, time.UTC)
	switch cq.Range {
	case "24h":
		cq.q = billing.UsageQuery{From: now.Add(-24 * time.Hour).Truncate(time.Hour), To: now, GroupBy: billing.GroupHour}
	case "7d":
		cq.q = billing.UsageQuery{From: today.AddDate(0, 0, -6), To: now, GroupBy: billing.GroupDay}
	case "custom":
		from, ferr := time.Parse("2006-01-02", cq.From)
		to, terr := time.Parse("2006-01-02", cq.To)
		switch {
		case ferr != nil || terr != nil:
			cq.Problem = "Choose both dates of the custom range."
		case to.Before(from):
			cq.Problem = "The range ends before it starts."
		case to.Sub(from) > billing.MaxUsageRange:
			cq.Problem = "A range can span at most 400 days."
		}
		if cq.Problem != "" {
			cq.Range = "30d"
			cq.q = billing.UsageQuery{From: today.AddDate(0, 0, -29), To: now, GroupBy: billing.GroupDay}
			break
		}
		cq.q = billing.UsageQuery{From: from, To: to.AddDate(0, 0, 1), GroupBy: billing.GroupDay}
		if cq.q.To.Sub(cq.q.From) <= 48*time.Hour {
			cq.q.GroupBy = billing.GroupHour
		}
	default:
		cq.Range = "30d"
		cq.q = billing.UsageQuery{From: today.AddDate(0, 0, -29), To: now, GroupBy: billing.GroupDay}
	}
	if cq.From == "" {
		cq.From = cq.q.From.Format("2006-01-02")
	}
	if cq.To == "" {
		cq.To = now.UTC().Format("2006-01-02")
	}
	if id, err := uuid.Parse(cq.AgentID); err == nil {
		cq.q.AgentID = &id
	} else {
		cq.AgentID = ""
	}
	return cq
}

// Params is the query string of the range and filter, plus extra pairs.
func (cq costQuery) Params(extra ...string) string {
	v := url.Values{"range": {cq.Range}}
	if cq.Range == "custom" {
		v.Set("from", cq.From)
		v.Set("to", cq.To)
	}
	if cq.AgentID != "" {
		v.Set("agent", cq.AgentID)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v.Encode()
}

type costsData struct {
	Query      costQuery
	Ranges     []costRange
	Report     billing.UsageReport
	Hourly     bool
	Cost       stackChart
	Tokens     stackChart
	ByModel    []store.UsageRow
	ByAgent    []store.UsageRow
	Agents     []store.Agent
	AgentName  string
	Budgets    []budgetMeter
	RangeLabel string
}

// costs is the cost dashboard: tokens in and out and cost over a range, by
// model and agent, as stacked SVG charts with the budget's pace, tables and
// CSV export.
func (p *Portal) costs(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	if p.d.Billing == nil {
		p.renderError(c, http.StatusServiceUnavailable, "Costs are not available", "This server runs without the billing service.")
		return
	}
	ctx := c.Request.Context()
	cq := readCostQuery(c, time.Now())
	d := &costsData{Query: cq, Ranges: costRanges, Hourly: cq.q.GroupBy == billing.GroupHour}
	var err error
	if d.Report, err = p.d.Billing.Usage(ctx, tenant.ID, cq.q); err != nil {
		p.fail(c, err)
		return
	}
	byModel, byAgent := cq.q, cq.q
	byModel.GroupBy, byAgent.GroupBy = billing.GroupModel, billing.GroupAgent
	mr, err := p.d.Billing.Usage(ctx, tenant.ID, byModel)
	if err != nil {
		p.fail(c, err)
		return
	}
	ar, err := p.d.Billing.Usage(ctx, tenant.ID, byAgent)
	if err != nil {
		p.fail(c, err)
		return
	}
	d.ByModel, d.ByAgent = mr.Rows, ar.Rows
	if d.Agents, err = p.d.Designer.List(ctx, tenant.ID); err != nil {
		p.fail(c, err)
		return
	}
	for _, a := range d.Agents {
		if cq.q.AgentID != nil && a.ID == *cq.q.AgentID {
			d.AgentName = a.Name
		}
	}
	o, err := p.d.Billing.Overview(ctx, tenant.ID)
	if err != nil {
		p.fail(c, err)
		return
	}
	d.Budgets = budgetMeters(o.Budgets)
	d.Cost, _ = costChart(d.Report, d.Hourly)
	d.Tokens = tokenChart(d.Report, d.Hourly)
	d.RangeLabel = rangeLabel(cq)
	pg := &Page{Title: "Costs", Section: "usage", Tenant: tenant, Data: d}
	if cq.Problem != "" {
		pg.Flash = &Flash{Kind: "error", Message: cq.Problem + " Showing the last 30 days."}
	}
	p.render(c, http.StatusOK, "usage", pg)
}

func rangeLabel(cq costQuery) string {
	switch cq.Range {
	case "24h":
		return "last 24 hours"
	case "7d":
		return "last 7 days"
	case "custom":
		return cq.q.From.Format("2 Jan 2006") + " – " + cq.q.To.AddDate(0, 0, -1).Format("2 Jan 2006")
	}
	return "last 30 days"
}

// costsCSV downloads the dashboard's rows (by day or hour, model or agent).
func (p *Portal) costsCSV(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	if p.d.Billing == nil {
		p.renderError(c, http.StatusServiceUnavailable, "Costs are not available", "This server runs without the billing service.")
		return
	}
	cq := readCostQuery(c, time.Now())
	q := cq.q
	switch by := c.Query("by"); by {
	case billing.GroupModel, billing.GroupAgent:
		q.GroupBy = by
	}
	r, err := p.d.Billing.Usage(c.Request.Context(), tenant.ID, q)
	if err != nil {
		p.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="costs-`+tenant.ID.String()+`-`+q.GroupBy+`.csv"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	if err := r.WriteCSV(c.Writer); err != nil {
		p.d.Logger.ErrorContext(c.Request.Context(), "costs export cut short", "err", err)
	}
}

type adminCostsData struct {
	Query   costQuery
	Ranges  []costRange
	Tenants []store.TenantUsage
	Total   store.UsageTotals
	Top     int64
	Label   string
}

// adminCosts ranks every tenant by cost over a range (platform admins).
func (p *Portal) adminCosts(c *gin.Context) {
	if p.d.Billing == nil {
		p.renderError(c, http.StatusServiceUnavailable, "Costs are not available", "This server runs without the billing service.")
		return
	}
	cq := readCostQuery(c, time.Now())
	cq.AgentID = ""
	rows, err := p.d.Billing.TenantRanking(c.Request.Context(), cq.q.From, cq.q.To)
	if err != nil {
		p.fail(c, err)
		return
	}
	d := &adminCostsData{Query: cq, Ranges: costRanges, Tenants: rows, Label: rangeLabel(cq)}
	for _, r := range rows {
		d.Total.Calls += r.Calls
		d.Total.InputTokens += r.InputTokens
		d.Total.OutputTokens += r.OutputTokens
		d.Total.CostMicroUSD += r.CostMicroUSD
		d.Top = max(d.Top, r.CostMicroUSD)
	}
	p.render(c, http.StatusOK, "admin/costs", &Page{Title: "Costs by organisation", Section: "admin-costs", Data: d})
}
