package portal

import (
	"fmt"
	"math"
	"time"

	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/store"
)

// The cost and token charts are laid out here and drawn by the template as
// plain SVG: no script, readable without one, printable.

// Chart geometry, in viewBox units.
const (
	chartW, chartH = 1000.0, 260.0
	plotX0, plotX1 = 70.0, 992.0
	plotY0, plotY1 = 14.0, 222.0
)

// modelPalette colours the models of a stacked chart, costliest first; a
// seventh and further models share the last colour as "other models".
var modelPalette = []string{"#6366f1", "#0ea5e9", "#f59e0b", "#10b981", "#ec4899", "#8b5cf6", "#94a3b8"}

type svgRect struct {
	X, Y, W, H float64
	Fill       string
	Tip        string
}

type svgTick struct {
	Y     float64
	Label string
}

type svgXLabel struct {
	X     float64
	Label string
}

type legendItem struct {
	Label, Color string
	Value        string
}

// stackChart is one chart: bars stacked per bucket, y ticks, x labels, an
// optional dashed line (the budget's pace) and a legend.
type stackChart struct {
	W, H, X0, X1, Y0, Y1 float64
	Rects                []svgRect
	Ticks                []svgTick
	XLabels              []svgXLabel
	Legend               []legendItem
	LineY                float64 // 0: no line
	LineLabel            string
	Empty                bool
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*exp >= v {
			return m * exp
		}
	}
	return 10 * exp
}

func bucketLabel(t time.Time, hourly bool) string {
	if hourly {
		return t.UTC().Format("15:04")
	}
	return t.UTC().Format("2 Jan")
}

func bucketTip(t time.Time, hourly bool) string {
	if hourly {
		return t.UTC().Format("Mon 2 Jan 15:04") + " UTC"
	}
	return t.UTC().Format("Mon 2 Jan")
}

// layout places bars for values[bucket][series] with series colours and
// names, scaling to the larger of the highest stack and line (when line > 0
// is within reach), and labels the y axis with format.
func layout(buckets []time.Time, hourly bool, values [][]float64, names, colors []string, line float64, lineLabel string,
	format func(float64) string, tip func(series int, v float64) string) stackChart {
	c := stackChart{W: chartW, H: chartH, X0: plotX0, X1: plotX1, Y0: plotY0, Y1: plotY1}
	var top float64
	for _, vs := range values {
		var sum float64
		for _, v := range vs {
			sum += v
		}
		top = math.Max(top, sum)
	}
	c.Empty = top == 0
	// The budget's pace is drawn when it is near the bars; far above them it
	// would flatten every bar, and the legend says how far.
	if line > 0 && (top == 0 || line <= 3*top) {
		top = math.Max(top, line)
	}
	max := niceCeil(top * 1.05)
	scale := (plotY1 - plotY0) / max
	for i := 0; i <= 4; i++ {
		v := max * float64(i) / 4
		c.Ticks = append(c.Ticks, svgTick{Y: plotY1 - v*scale, Label: format(v)})
	}
	n := len(buckets)
	if n == 0 {
		return c
	}
	slot := (plotX1 - plotX0) / float64(n)
	gap := math.Min(slot*0.28, 14)
	for i, b := range buckets {
		x := plotX0 + float64(i)*slot + gap/2
		y := plotY1
		for s, v := range values[i] {
			if v <= 0 {
				continue
			}
			h := math.Max(v*scale, 1)
			y -= h
			c.Rects = append(c.Rects, svgRect{X: x, Y: y, W: slot - gap, H: h, Fill: colors[s],
				Tip: bucketTip(b, hourly) + " · " + names[s] + ": " + tip(s, v)})
		}
	}
	every := max1(n / 6)
	for i := 0; i < n; i += every {
		c.XLabels = append(c.XLabels, svgXLabel{X: plotX0 + (float64(i)+0.5)*slot, Label: bucketLabel(buckets[i], hourly)})
	}
	if line > 0 && line <= max {
		c.LineY, c.LineLabel = plotY1-line*scale, lineLabel
	} else if line > 0 {
		c.LineLabel = lineLabel + " (above this scale)"
	}
	return c
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// costChart stacks each bucket's cost by model, with the tenant's monthly
// budget drawn as its pace per bucket (the budget spread evenly over the
// month's days or hours).
func costChart(r billing.UsageReport, hourly bool) (stackChart, []string) {
	models := r.Models()
	const maxSeries = 7
	names := make([]string, 0, maxSeries)
	colors := make([]string, 0, maxSeries)
	index := map[string]int{}
	for i, m := range models {
		if i < maxSeries-1 || len(models) == maxSeries {
			index[m] = len(names)
			names = append(names, m)
			colors = append(colors, modelPalette[len(colors)])
			continue
		}
		if i == maxSeries-1 {
			names = append(names, "other models")
			colors = append(colors, modelPalette[maxSeries-1])
		}
		index[m] = maxSeries - 1
	}
	pos := map[time.Time]int{}
	for i, b := range r.Buckets {
		pos[b] = i
	}
	values := make([][]float64, len(r.Buckets))
	for i := range values {
		values[i] = make([]float64, len(names))
	}
	totals := make([]int64, len(names))
	for _, p := range r.Series {
		i, ok := pos[p.Bucket]
		if !ok {
			continue
		}
		s := index[p.Provider+"/"+p.Model]
		values[i][s] += float64(p.CostMicroUSD)
		totals[s] += p.CostMicroUSD
	}
	var line float64
	label := ""
	if r.BudgetMicroUSD > 0 {
		now := time.Now().UTC()
		days := float64(time.Date(now.Year(), now.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day())
		per := float64(r.BudgetMicroUSD) / days
		unit := "day"
		if hourly {
			per /= 24
			unit = "hour"
		}
		line, label = per, "Budget pace "+usd(int64(per))+" per "+unit+" ("+usd(r.BudgetMicroUSD)+" a month)"
	}
	c := layout(r.Buckets, hourly, values, names, colors, line, label, func(v float64) string { return usd(int64(v)) },
		func(_ int, v float64) string { return usd(int64(v)) })
	for i, n := range names {
		c.Legend = append(c.Legend, legendItem{Label: n, Color: colors[i], Value: usd(totals[i])})
	}
	return c, names
}

// tokenChart stacks each bucket's input and output tokens.
func tokenChart(r billing.UsageReport, hourly bool) stackChart {
	values := make([][]float64, len(r.Rows))
	var in, out int64
	for i, row := range r.Rows {
		values[i] = []float64{float64(row.InputTokens), float64(row.OutputTokens)}
		in += row.InputTokens
		out += row.OutputTokens
	}
	buckets := make([]time.Time, len(r.Rows))
	for i, row := range r.Rows {
		buckets[i] = row.Day
	}
	names := []string{"Input tokens", "Output tokens"}
	colors := []string{"#a5b4fc", "#4338ca"}
	c := layout(buckets, hourly, values, names, colors, 0, "", func(v float64) string { return compact(int64(v)) },
		func(_ int, v float64) string { return num(int64(v)) })
	c.Legend = []legendItem{{Label: names[0], Color: colors[0], Value: num(in)}, {Label: names[1], Color: colors[1], Value: num(out)}}
	return c
}

// compact writes a count for an axis: 950, 1.2k, 3.4M.
func compact(n int64) string {
	switch {
	case n >= 1_000_000_000:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e9)) + "B"
	case n >= 1_000_000:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e6)) + "M"
	case n >= 1_000:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e3)) + "k"
	}
	return fmt.Sprint(n)
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// budgetMeter is a budget laid out for a meter with an 80% tick.
type budgetMeter struct {
	store.Budget
	Percent  float64 // of the limit, capped at 100 for the bar
	Label    string  // "Organisation" or the agent's name
	Level    string  // ok | warn | over
	Reserved bool
}

func budgetMeters(bs []store.Budget) []budgetMeter {
	out := make([]budgetMeter, 0, len(bs))
	for _, b := range bs {
		m := budgetMeter{Budget: b, Label: "Whole organisation", Level: "ok", Reserved: b.ReservedMicroUSD > 0}
		if b.AgentID != nil {
			m.Label = b.AgentName
		}
		if b.LimitMicroUSD > 0 {
			m.Percent = math.Min(100, float64(b.SpentMicroUSD)*100/float64(b.LimitMicroUSD))
		}
		switch {
		case b.SpentMicroUSD >= b.LimitMicroUSD:
			m.Level = "over"
		case b.SpentMicroUSD*10 >= b.LimitMicroUSD*8:
			m.Level = "warn"
		}
		out = append(out, m)
	}
	return out
}
