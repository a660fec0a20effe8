package billing

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

// Usage groupings.
const (
	GroupDay   = "day"
	GroupHour  = "hour"
	GroupAgent = "agent"
	GroupModel = "model"
)

// MaxUsageRange bounds a usage query.
const MaxUsageRange = 400 * 24 * time.Hour

// UsageQuery is a range of a tenant's usage, optionally of one agent.
type UsageQuery struct {
	From, To time.Time
	AgentID  *uuid.UUID
	GroupBy  string // GroupDay (default), GroupHour, GroupAgent or GroupModel
}

// UsageReport is a tenant's usage in a range: totals, rows grouped as asked,
// and the series by time bucket and model the charts stack.
type UsageReport struct {
	Query  UsageQuery
	Totals store.UsageTotals
	Rows   []store.UsageRow   // per bucket (Day set), agent or model
	Series []store.UsagePoint // per bucket and model, every bucket of the range present in Buckets
	// Buckets are the time buckets of the range, oldest first.
	Buckets []time.Time
	// Budget is the tenant-wide monthly budget (0: none), for the chart's line.
	BudgetMicroUSD int64
}

// Validate checks a query and fills its defaults (the last 30 days, by day).
func (q *UsageQuery) Validate(now time.Time) error {
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-30 * 24 * time.Hour)
	}
	switch q.GroupBy {
	case "":
		q.GroupBy = GroupDay
	case GroupDay, GroupHour, GroupAgent, GroupModel:
	default:
		return apperr.Invalid("group_by", "must be day, hour, agent or model")
	}
	if !q.From.Before(q.To) {
		return apperr.Invalid("from", "must be before to")
	}
	if q.To.Sub(q.From) > MaxUsageRange {
		return apperr.Invalid("from", "the range may span at most 400 days")
	}
	if q.GroupBy == GroupHour && q.To.Sub(q.From) > 14*24*time.Hour {
		return apperr.Invalid("group_by", "hour is for ranges of up to 14 days; use day")
	}
	return nil
}

// bucketOf is the series' bucket: the one asked for, or for a breakdown by
// agent or model, hours up to two days and days beyond.
func bucketOf(q UsageQuery) string {
	switch {
	case q.GroupBy == GroupHour, q.GroupBy != GroupDay && q.To.Sub(q.From) <= 48*time.Hour:
		return GroupHour
	}
	return GroupDay
}

// Usage reports a tenant's usage (see UsageReport).
func (s *Service) Usage(ctx context.Context, tenantID uuid.UUID, q UsageQuery) (UsageReport, error) {
	if err := q.Validate(s.now()); err != nil {
		return UsageReport{}, err
	}
	r := UsageReport{Query: q}
	bucket := bucketOf(q)
	sq := store.UsageQuery{From: q.From, To: q.To, AgentID: q.AgentID, Bucket: bucket}
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		if r.Totals, err = tx.SumUsageRange(ctx, sq); err != nil {
			return err
		}
		if r.Series, err = tx.UsageSeries(ctx, sq); err != nil {
			return err
		}
		switch q.GroupBy {
		case GroupAgent, GroupModel:
			if r.Rows, err = tx.UsageGrouped(ctx, sq, q.GroupBy); err != nil {
				return err
			}
		}
		budgets, err := tx.ListBudgets(ctx, s.now())
		for _, b := range budgets {
			if b.AgentID == nil && q.AgentID == nil {
				r.BudgetMicroUSD = b.LimitMicroUSD
			}
			if q.AgentID != nil && b.AgentID != nil && *b.AgentID == *q.AgentID {
				r.BudgetMicroUSD = b.LimitMicroUSD
			}
		}
		return err
	})
	if err != nil {
		return UsageReport{}, fmt.Errorf("billing: usage: %w", err)
	}
	r.Buckets = buckets(q.From, q.To, bucket)
	if q.GroupBy == GroupDay || q.GroupBy == GroupHour {
		r.Rows = rowsByBucket(r.Series, r.Buckets)
	}
	return r, nil
}

// buckets lists every bucket start (UTC) that overlaps [from, to).
func buckets(from, to time.Time, bucket string) []time.Time {
	step := 24 * time.Hour
	start := time.Date(from.UTC().Year(), from.UTC().Month(), from.UTC().Day(), 0, 0, 0, 0, time.UTC)
	if bucket == GroupHour {
		step = time.Hour
		start = from.UTC().Truncate(time.Hour)
	}
	var out []time.Time
	for t := start; t.Before(to); t = t.Add(step) {
		out = append(out, t)
	}
	return out
}

// rowsByBucket sums the series per bucket, with a row for every bucket.
func rowsByBucket(series []store.UsagePoint, bs []time.Time) []store.UsageRow {
	idx := make(map[time.Time]int, len(bs))
	out := make([]store.UsageRow, len(bs))
	for i, b := range bs {
		idx[b] = i
		out[i].Day = b
	}
	for _, p := range series {
		i, ok := idx[p.Bucket]
		if !ok {
			continue
		}
		out[i].Calls += p.Calls
		out[i].InputTokens += p.InputTokens
		out[i].OutputTokens += p.OutputTokens
		out[i].CostMicroUSD += p.CostMicroUSD
	}
	return out
}

// Models lists the report's models, costliest first (the charts' stacking
// order and legend).
func (r UsageReport) Models() []string {
	cost := map[string]int64{}
	for _, p := range r.Series {
		cost[p.Provider+"/"+p.Model] += p.CostMicroUSD + 1 // +1: a free model still shows
	}
	out := make([]string, 0, len(cost))
	for m := range cost {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if cost[out[i]] != cost[out[j]] {
			return cost[out[i]] > cost[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

// TenantRanking ranks every tenant by cost in [from, to), for platform admins.
func (s *Service) TenantRanking(ctx context.Context, from, to time.Time) ([]store.TenantUsage, error) {
	var out []store.TenantUsage
	err := s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.UsageByTenant(ctx, from, to)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("billing: tenant ranking: %w", err)
	}
	return out, nil
}

// WriteCSV writes the report's rows (grouped as asked) as CSV: one header
// line, then a row per day/hour, agent or model, costs in USD with six
// decimals (exact micro-USD).
func (r UsageReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	var head []string
	switch r.Query.GroupBy {
	case GroupAgent:
		head = []string{"agent_id", "agent_name"}
	case GroupModel:
		head = []string{"provider", "model"}
	default:
		head = []string{r.Query.GroupBy + "_utc"}
	}
	_ = cw.Write(append(head, "calls", "input_tokens", "output_tokens", "cost_usd"))
	for _, row := range r.Rows {
		var key []string
		switch r.Query.GroupBy {
		case GroupAgent:
			id := ""
			if row.AgentID != nil {
				id = row.AgentID.String()
			}
			key = []string{id, row.AgentName}
		case GroupModel:
			key = []string{row.Provider, row.Model}
		case GroupHour:
			key = []string{row.Day.UTC().Format("2006-01-02T15:04Z")}
		default:
			key = []string{row.Day.UTC().Format("2006-01-02")}
		}
		_ = cw.Write(append(key, strconv.Itoa(row.Calls), strconv.FormatInt(row.InputTokens, 10),
			strconv.FormatInt(row.OutputTokens, 10), MicroToUSD(row.CostMicroUSD)))
	}
	cw.Flush()
	return cw.Error()
}

// MicroToUSD formats micro-USD as an exact decimal number of dollars.
func MicroToUSD(micro int64) string {
	sign := ""
	if micro < 0 {
		sign, micro = "-", -micro
	}
	return fmt.Sprintf("%s%d.%06d", sign, micro/1_000_000, micro%1_000_000)
}
