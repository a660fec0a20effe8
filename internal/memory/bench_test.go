package memory_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/migrations"
)

// The recall benchmark runs on a dedicated database that it builds once and
// reuses: building an HNSW index over 100k×1536 vectors takes minutes on two
// cores. The name carries a data version, so a change to the data (size,
// shape, generator) builds a new one; migrations are applied on every run, so
// schema changes elsewhere reach it.
//
// Shape (all rows 1536 dimensions, one embedding model):
//   - the measured tenant holds benchVectors() vectors: one heavy end user
//     with all but 10,000 of them (the HNSW path: recall filtered by tenant,
//     agent and end user) and 100 end users with 100 each (the exact path);
//   - 9 other tenants hold 5,000 vectors each, for an end user with the
//     same user_ref, in the same index: the tenant filter must not let them
//     in nor starve the measured tenant's results.
//
// Vectors are clustered (1,000 random centroids, each vector a centroid plus
// Gaussian noise, normalised), like text embeddings; uniform random vectors
// would be unrealistically hard for any graph index. Queries are fresh
// perturbations of stored vectors.
//
// KONSTRUCT_BENCH_MEMORY_VECTORS overrides the measured tenant's size.
const (
	benchDims        = 1536
	benchModel       = "openai/text-embedding-3-small"
	benchDataVersion = "v1"
	benchOthers      = 9
	benchOtherSize   = 5_000
	benchSmallUsers  = 100
	benchSmallSize   = 100
	benchCentroids   = 1_000
)

func benchVectors() int {
	if n, err := strconv.Atoi(os.Getenv("KONSTRUCT_BENCH_MEMORY_VECTORS")); err == nil && n > benchSmallUsers*benchSmallSize {
		return n
	}
	return 100_000
}

type benchData struct {
	appURL          string
	tenant, agent   uuid.UUID
	centroids       [][]float32
	built           bool
	buildTime       time.Duration
	heavy, vectors  int
	otherTenantRows int
}

func normalise(v []float32) []float32 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	n := float32(math.Sqrt(s))
	for i := range v {
		v[i] /= n
	}
	return v
}

func near(r *rand.Rand, c []float32, noise float64) []float32 {
	v := make([]float32, len(c))
	for i := range v {
		v[i] = c[i] + float32(r.NormFloat64()*noise)
	}
	return normalise(v)
}

func centroids() [][]float32 {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([][]float32, benchCentroids)
	for i := range out {
		v := make([]float32, benchDims)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		out[i] = normalise(v)
	}
	return out
}

// The noise (per coordinate) puts a vector at cosine ~0.7 from its centroid:
// clusters overlap enough that neighbours are not trivial to find.
const benchNoise = 0.026

func openBenchData(b *testing.B) benchData {
	b.Helper()
	ctx := context.Background()
	n := benchVectors()
	name := fmt.Sprintf("konstruct_bench_memory_%s_%d", benchDataVersion, n)
	d := benchData{heavy: n - benchSmallUsers*benchSmallSize, vectors: n, otherTenantRows: benchOthers * benchOtherSize,
		centroids: centroids()}
	admin, err := pgx.Connect(ctx, testkit.OwnerURL())
	if err != nil {
		testkit.Unavailable(b, "PostgreSQL (role konstruct_owner)", "scripts/postgres.sh && scripts/db-setup.sh", err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	ownerURL, appURL := withDB(testkit.OwnerURL(), name), withDB(testkit.AppURL(), name)
	d.appURL = appURL
	if !exists {
		// Built under another name and renamed when complete, so an
		// interrupted build is never mistaken for data.
		building := name + "_building"
		_, _ = admin.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`)
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+building); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		build(b, withDB(testkit.OwnerURL(), building), d)
		if _, err := admin.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
			b.Fatal(err)
		}
		d.built, d.buildTime = true, time.Since(start)
	}
	m, err := migrations.Open(ownerURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		b.Fatal(err)
	}
	m.Close()
	conn, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT set_config('app.platform', 'on', false)`); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT t.id, a.id FROM tenants t JOIN agents a ON a.tenant_id = t.id WHERE t.name = 'measured'`).Scan(&d.tenant, &d.agent); err != nil {
		b.Fatal(err)
	}
	return d
}

func withDB(raw, db string) string {
	u, err := pgx.ParseConfig(raw)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", u.User, u.Password, u.Host, u.Port, db)
}

func build(b *testing.B, ownerURL string, d benchData) {
	ctx := context.Background()
	m, err := migrations.Open(ownerURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		b.Fatal(err)
	}
	m.Close()
	conn, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := pgxvec.RegisterTypes(ctx, conn); err != nil {
		b.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`SELECT set_config('app.platform', 'on', false)`)
	// Bulk load without the HNSW indexes, then build them once (much faster
	// than inserting into a graph), with memory for the whole graph.
	// COPY refuses a table under row-level security; the owner lifts the
	// FORCE for the load (no other session uses this database) and restores it.
	exec(`ALTER TABLE memories NO FORCE ROW LEVEL SECURITY`)
	defer exec(`ALTER TABLE memories FORCE ROW LEVEL SECURITY`)
	exec(`DROP INDEX memories_embedding_1536_idx`)
	exec(`DROP INDEX memories_embedding_768_idx`)
	r := rand.New(rand.NewPCG(3, 4))
	load := func(tenantName, user string, users, perUser int) {
		tenant := uuid.New()
		var agent uuid.UUID
		exec(`INSERT INTO tenants (id, name) VALUES ($1, $2)`, tenant, tenantName)
		if err := conn.QueryRow(ctx, `INSERT INTO agents (tenant_id, name) VALUES ($1, 'Bench') RETURNING id`, tenant).Scan(&agent); err != nil {
			b.Fatal(err)
		}
		for u := 0; u < users; u++ {
			ref := user
			if users > 1 {
				ref = fmt.Sprintf("%s%03d", user, u)
			}
			var conv uuid.UUID
			if err := conn.QueryRow(ctx, `INSERT INTO conversations (tenant_id, agent_id, channel, external_key, workflow_id, user_ref)
				VALUES ($1, $2, 'slack', $3, $3, $4) RETURNING id`, tenant, agent, "bench/"+tenant.String()+"/"+ref, ref).Scan(&conv); err != nil {
				b.Fatal(err)
			}
			rows := make([][]any, 0, perUser)
			for i := 0; i < perUser; i++ {
				v := near(r, d.centroids[r.IntN(len(d.centroids))], benchNoise)
				rows = append(rows, []any{tenant, agent, ref, conv, i + 1, "message", "user", "bench memory " + strconv.Itoa(i),
					pgvector.NewVector(v), benchModel, benchDims, fmt.Sprintf("%s:%d", ref, i)})
			}
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{"memories"},
				[]string{"tenant_id", "agent_id", "end_user_ref", "conversation_id", "turn", "kind", "role", "content",
					"embedding", "embedding_model", "dims", "idempotency_key"}, pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
		}
	}
	start := time.Now()
	load("measured", "U0BIG", 1, d.heavy)
	// The small users live in the measured tenant, under its one agent.
	var tenant, agent uuid.UUID
	if err := conn.QueryRow(ctx, `SELECT t.id, a.id FROM tenants t JOIN agents a ON a.tenant_id = t.id WHERE t.name = 'measured'`).Scan(&tenant, &agent); err != nil {
		b.Fatal(err)
	}
	for u := 0; u < benchSmallUsers; u++ {
		ref := fmt.Sprintf("U0SMALL%03d", u)
		var conv uuid.UUID
		if err := conn.QueryRow(ctx, `INSERT INTO conversations (tenant_id, agent_id, channel, external_key, workflow_id, user_ref)
			VALUES ($1, $2, 'slack', $3, $3, $4) RETURNING id`, tenant, agent, "bench/"+tenant.String()+"/"+ref, ref).Scan(&conv); err != nil {
			b.Fatal(err)
		}
		rows := make([][]any, 0, benchSmallSize)
		for i := 0; i < benchSmallSize; i++ {
			v := near(r, d.centroids[r.IntN(len(d.centroids))], benchNoise)
			rows = append(rows, []any{tenant, agent, ref, conv, i + 1, "message", "user", "bench memory", pgvector.NewVector(v),
				benchModel, benchDims, fmt.Sprintf("%s:%d", ref, i)})
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"memories"},
			[]string{"tenant_id", "agent_id", "end_user_ref", "conversation_id", "turn", "kind", "role", "content",
				"embedding", "embedding_model", "dims", "idempotency_key"}, pgx.CopyFromRows(rows)); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < benchOthers; i++ {
		load(fmt.Sprintf("other %d", i), "U0BIG", 1, benchOtherSize)
	}
	fmt.Printf("memory bench: loaded %d vectors in %s\n", d.vectors+d.otherTenantRows, time.Since(start).Round(time.Second))
	start = time.Now()
	exec(`SET maintenance_work_mem = '2GB'`)
	exec(`SET max_parallel_maintenance_workers = 1`) // two cores, shared
	exec(`CREATE INDEX memories_embedding_1536_idx ON memories USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WHERE dims = 1536`)
	exec(`CREATE INDEX memories_embedding_768_idx ON memories USING hnsw ((embedding::vector(768)) vector_cosine_ops) WHERE dims = 768`)
	exec(`ANALYZE memories`)
	fmt.Printf("memory bench: built the HNSW index in %s\n", time.Since(start).Round(time.Second))
}

// BenchmarkRecall measures RecallMemories (top 10) for the measured tenant's
// heavy end user through the HNSW index and for its small end users through
// exact search, and recall@10 of the index against exact search over the
// same queries in the same run. Metrics: p50-ms, p99-ms, recall@10.
func BenchmarkRecall(b *testing.B) {
	d := openBenchData(b)
	if d.built {
		// Printed, not logged: make bench runs without -v.
		fmt.Printf("memory bench: built the database for %d vectors (+%d in %d other tenants) in %s\n",
			d.vectors, d.otherTenantRows, benchOthers, d.buildTime.Round(time.Second))
	}
	ctx := context.Background()
	s, err := store.Open(ctx, d.appURL)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(5, 6))
	queries := make([][]float32, 200)
	for i := range queries {
		queries[i] = near(r, d.centroids[r.IntN(len(d.centroids))], benchNoise)
	}
	recall := func(q store.RecallQuery) []store.Recalled {
		var out []store.Recalled
		if err := s.WithTenant(ctx, d.tenant, func(tx *store.Tx) error {
			var err error
			out, err = tx.RecallMemories(ctx, q)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		return out
	}
	ef := 0
	query := func(user string, v []float32, exact bool) store.RecallQuery {
		return store.RecallQuery{AgentID: d.agent, EndUserRef: user, Model: benchModel, Vector: v, K: 10, Exact: exact, EfSearch: ef}
	}

	// Exact neighbours of the recall queries, once for every ef measured.
	const recallQueries = 100
	exactIDs := make([]map[uuid.UUID]bool, recallQueries)
	for i, v := range queries[:recallQueries] {
		exact := recall(query("U0BIG", v, true))
		if len(exact) != 10 {
			b.Fatalf("exact search found %d results, want 10", len(exact))
		}
		exactIDs[i] = map[uuid.UUID]bool{}
		for _, e := range exact {
			exactIDs[i][e.ID] = true
		}
	}
	for _, efSearch := range []int{40, 64, 100} {
		ef = efSearch
		b.Run(fmt.Sprintf("hnsw/ef=%d/user=%d/tenant=%d/table=%d", ef, d.heavy, d.vectors, d.vectors+d.otherTenantRows), func(b *testing.B) {
			// recall@10 against exact search, same queries, same run.
			hits := 0
			for i, v := range queries[:recallQueries] {
				got := recall(query("U0BIG", v, false))
				if len(got) != 10 {
					b.Fatalf("got %d results, want 10", len(got))
				}
				for _, g := range got {
					if g.TenantID != d.tenant || g.EndUserRef != "U0BIG" {
						b.Fatalf("recalled another tenant's or user's memory: %+v", g.Memory)
					}
					if exactIDs[i][g.ID] {
						hits++
					}
				}
			}
			durs := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				recall(query("U0BIG", queries[i%len(queries)], false))
				durs = append(durs, time.Since(start))
			}
			b.StopTimer()
			report(b, durs)
			b.ReportMetric(float64(hits)/float64(10*recallQueries), "recall@10")
		})
	}
	ef = 0
	b.Run(fmt.Sprintf("exact/user=%d", benchSmallSize), func(b *testing.B) {
		durs := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			start := time.Now()
			got := recall(query(fmt.Sprintf("U0SMALL%03d", i%benchSmallUsers), queries[i%len(queries)], true))
			durs = append(durs, time.Since(start))
			if len(got) != 10 {
				b.Fatalf("got %d results, want 10", len(got))
			}
		}
		report(b, durs)
	})
}

func report(b *testing.B, durs []time.Duration) {
	if len(durs) == 0 {
		return
	}
	slices.Sort(durs)
	pct := func(p float64) float64 {
		return float64(durs[min(len(durs)-1, int(float64(len(durs))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
