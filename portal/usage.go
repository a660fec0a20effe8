package portal

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/store"
)

type usageData struct {
	Days     int
	Periods  []int
	Totals   store.UsageTotals
	ByDay    []store.UsageRow
	ByModel  []store.UsageRow
	ByAgent  []store.UsageRow
	MaxCost  int64
	MaxCalls int
	Chart    []chartBar
}

// chartBar is one day of the cost chart, laid out for SVG.
type chartBar struct {
	X, Y, W, H float64
	Label      string
	Tip        string
}

func (p *Portal) usage(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	d := usageData{Days: 30, Periods: []int{7, 30, 90}}
	if n, err := strconv.Atoi(c.Query("days")); err == nil && (n == 7 || n == 30 || n == 90) {
		d.Days = n
	}
	since := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -(d.Days - 1))
	ctx := c.Request.Context()
	err := p.d.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		var err error
		if d.Totals, err = tx.SumUsage(ctx, since); err != nil {
			return err
		}
		if d.ByDay, err = tx.UsageByDay(ctx, since); err != nil {
			return err
		}
		if d.ByModel, err = tx.UsageByModel(ctx, since); err != nil {
			return err
		}
		d.ByAgent, err = tx.UsageByAgent(ctx, since)
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	for _, r := range d.ByDay {
		d.MaxCost = max(d.MaxCost, r.CostMicroUSD)
		d.MaxCalls = max(d.MaxCalls, r.Calls)
	}
	d.Chart = layoutChart(d.ByDay, d.MaxCost, d.MaxCalls)
	p.render(c, http.StatusOK, "usage", &Page{Title: "Usage", Section: "usage", Tenant: tenant, Data: &d})
}

// layoutChart places one bar per day in a 1000×200 viewBox. Bars measure
// cost, or calls when nothing cost money (local models).
func layoutChart(days []store.UsageRow, maxCost int64, maxCalls int) []chartBar {
	if len(days) == 0 {
		return nil
	}
	const width, height = 1000.0, 200.0
	slot := width / float64(len(days))
	gap := slot * 0.25
	out := make([]chartBar, 0, len(days))
	for _, r := range days {
		var frac float64
		switch {
		case maxCost > 0:
			frac = float64(r.CostMicroUSD) / float64(maxCost)
		case maxCalls > 0:
			frac = float64(r.Calls) / float64(maxCalls)
		}
		h := frac * (height - 4)
		if h < 2 {
			h = 2 // an empty day still shows a baseline tick
		}
		x := float64(len(out)) * slot
		out = append(out, chartBar{X: x + gap/2, Y: height - h, W: slot - gap, H: h, Label: r.Day.Format("2 Jan"),
			Tip: r.Day.Format("Mon 2 Jan") + ": " + usd(r.CostMicroUSD) + " · " + plural(r.Calls, "call", "calls") + " · " +
				num(r.InputTokens+r.OutputTokens) + " tokens"})
	}
	return out
}
