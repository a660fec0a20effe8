package store_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/konstruct/konstruct/internal/audit"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

// BenchmarkAuditList measures the audit API's queries on a tenant with 100k
// events over 30 days (and a neighbour with 50k): the first page, a deep page
// by cursor, each filter, and a day's CSV export. ns/op is one page (or one
// export); rows/op is what it returned.
func BenchmarkAuditList(b *testing.B) {
	ctx := context.Background()
	db := testkit.NewDatabase(b)
	s, err := store.Open(ctx, db.AppURL)
	must(b, err)
	b.Cleanup(s.Close)
	a, other := seed(b, ctx, s, "a"), seed(b, ctx, s, "b")
	const perTenant = 100_000
	fill := func(tenantID uuid.UUID, n int) {
		// Ten agents, a thousand conversations; half the events are model
		// calls, knowledge changes are rare (2%).
		err := s.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `
				INSERT INTO audit_events (tenant_id, actor, action, agent_id, conversation_id, workflow_id,
					idempotency_key, data, created_at)
				SELECT $1, 'agent:x',
				       (ARRAY['llm.call','llm.call','llm.call','llm.call','llm.call','tool.call','tool.call',
				              'embedding.call','embedding.call','agent.update'])[1 + g % 10],
				       md5('agent' || (g % 7))::uuid,
				       md5('conv' || (g % 1000))::uuid,
				       'conversation/wf-' || (g % 1000),
				       'wf-' || (g % 1000) || ':' || g || ':llm:0',
				       jsonb_build_object('outcome', 'ok', 'provider', 'openai', 'model', 'gpt-4o-mini',
				                          'input_tokens', g % 4000, 'output_tokens', g % 600, 'latency_ms', g % 900),
				       now() - make_interval(secs => (g * 30 * 86400.0 / $2))
				FROM generate_series(1, $2) AS g`, tenantID, n)
			if err != nil {
				return err
			}
			// Knowledge changes: a rare family for the prefix filter.
			_, err = tx.Exec(ctx, `INSERT INTO audit_events (tenant_id, actor, action, data, created_at)
				SELECT $1, 'user:x', (ARRAY['knowledge.create','knowledge.delete'])[1 + g % 2], '{}',
				       now() - make_interval(secs => (g * 50 * 30 * 86400.0 / $2))
				FROM generate_series(1, $2 / 50) AS g`, tenantID, n)
			return err
		})
		if err != nil {
			b.Fatalf("fill: %v", err)
		}
	}
	fill(a.tenant.ID, perTenant)
	fill(other.tenant.ID, perTenant/2)
	// As autovacuum would, soon after a bulk load; the owner may ANALYZE.
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	must(b, err)
	_, err = owner.Exec(ctx, `ANALYZE audit_events`)
	must(b, err)
	must(b, owner.Close(ctx))

	md5ID := func(s string) uuid.UUID { return uuid.UUID(md5.Sum([]byte(s))) }
	agentID, convID := md5ID("agent3"), md5ID("conv42")
	var mid store.AuditCursor
	must(b, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		return tx.QueryRowScan(ctx, `SELECT created_at, id FROM audit_events ORDER BY created_at DESC, id DESC OFFSET 50000 LIMIT 1`,
			nil, &mid.CreatedAt, &mid.ID)
	}))
	day := time.Now().Add(-15 * 24 * time.Hour)
	cases := []struct {
		name string
		f    store.AuditFilter
	}{
		{"first_page", store.AuditFilter{}},
		{"cursor_mid", store.AuditFilter{After: &mid}},
		{"type_exact", store.AuditFilter{Types: []string{store.AuditToolCall}}},
		{"type_prefix_rare", store.AuditFilter{Types: []string{"knowledge."}}},
		{"two_types", store.AuditFilter{Types: []string{"knowledge.", store.AuditEmbeddingCall}}},
		{"agent", store.AuditFilter{AgentID: &agentID}},
		{"agent_and_type", store.AuditFilter{AgentID: &agentID, Types: []string{"llm."}}},
		{"conversation", store.AuditFilter{ConversationID: &convID}},
		{"one_day", store.AuditFilter{From: day, To: day.Add(24 * time.Hour)}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			f := tc.f
			f.Limit = audit.DefaultLimit
			if testing.Verbose() {
				sql, args := store.AuditQuery(f, a.tenant.ID)
				var plan []map[string]any
				must(b, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
					return tx.QueryRowScan(ctx, `EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF, FORMAT JSON) `+sql, args, &plan)
				}))
				b.Logf("plan: %s", planSummary(plan[0]["Plan"].(map[string]any)))
			}
			var rows int
			for b.Loop() {
				events, _, err := audit.List(ctx, s, a.tenant.ID, f)
				if err != nil {
					b.Fatal(err)
				}
				rows = len(events)
			}
			b.ReportMetric(float64(rows), "rows/op")
			if rows == 0 {
				b.Fatal("the filter selects nothing: the benchmark would measure an empty scan")
			}
		})
	}
	b.Run("export_csv_one_day", func(b *testing.B) {
		f := store.AuditFilter{From: day, To: day.Add(24 * time.Hour)}
		var cw countingWriter
		for b.Loop() {
			cw = countingWriter{}
			if err := audit.ExportCSV(ctx, s, a.tenant.ID, f, &cw, func() {}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cw.lines-1), "rows/op")
		b.ReportMetric(float64(cw.bytes), "bytes/op")
	})
}

type countingWriter struct{ bytes, lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += len(p)
	w.lines += strings.Count(string(p), "\n")
	return io.Discard.Write(p)
}

func must(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// planSummary prints a plan's nodes on one line: "Limit > Index Scan audit_events_tenant_idx (rows 50)".
func planSummary(n map[string]any) string {
	out := n["Node Type"].(string)
	if idx, ok := n["Index Name"].(string); ok {
		out += " " + idx
	}
	out += fmt.Sprintf(" (rows %v)", n["Actual Rows"])
	kids, _ := n["Plans"].([]any)
	for i, k := range kids {
		sep := " > "
		if i > 0 {
			sep = " & "
		}
		out += sep + planSummary(k.(map[string]any))
	}
	return out
}
