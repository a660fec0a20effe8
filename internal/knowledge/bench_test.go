package knowledge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

// benchDoc is a Markdown document of n sections of about 60 words, one chunk each.
func benchDoc(n, salt int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "## Section %d.%d\n\n", salt, i)
		for j := 0; j < 6; j++ {
			fmt.Fprintf(&b, "Topic %d item %d covers returns, warranty, shipping and care of product %d. ", i, j, salt*n+i)
		}
		b.WriteString("\n\n")
	}
	return b.String()
}

// BenchmarkIngest measures ingestion throughput in chunks/s with the fake
// embedder over HTTP (OpenAI wire format, 1536 dimensions) and the real
// Postgres: "activities" runs the pipeline's steps back to back (extract,
// chunk, store; embed in batches of 32; finish) — the cost of the work
// itself; "workflow" runs the same through the ingestion workflow on the
// Temporal dev server — what an upload costs end to end, the hops between
// regular activities included. Each iteration ingests a fresh 256-chunk document.
func BenchmarkIngest(b *testing.B) {
	const chunks = 256
	for _, mode := range []string{"activities", "workflow"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			var r *rig
			if mode == "workflow" {
				r = newRig(b)
			} else {
				r = newStoreRig(b)
			}
			acts := &activities.Knowledge{Store: r.store, Embedder: r.embedder}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				up := knowledge.Upload{Title: fmt.Sprintf("Doc %d", i), Filename: "doc.md", Data: []byte(benchDoc(chunks, i))}
				b.StartTimer()
				if mode == "workflow" {
					doc, _, err := r.svc.Add(ctx, r.admin, r.tenant, up)
					if err != nil {
						b.Fatal(err)
					}
					waitStatus(b, r, doc.ID, store.DocReady)
					continue
				}
				ingestDirect(b, r, acts, up)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*chunks)/time.Since(start).Seconds(), "chunks/s")
		})
	}
}

// ingestDirect stores a document and runs the workflow's activities in order.
func ingestDirect(b *testing.B, r *rig, acts *activities.Knowledge, up knowledge.Upload) {
	ctx := context.Background()
	var doc store.Document
	err := r.store.WithTenant(ctx, r.tenant, func(tx *store.Tx) error {
		var err error
		doc, _, err = tx.UpsertDocument(ctx, store.Document{Title: up.Title, SourceType: knowledge.TypeMarkdown,
			Content: up.Data, ContentHash: make([]byte, 32)})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	in := activities.IngestInput{TenantID: r.tenant.String(), DocumentID: doc.ID.String(), Version: doc.Version}
	prep, err := acts.Prepare(ctx, in)
	if err != nil {
		b.Fatal(err)
	}
	for batch := 0; batch*activities.DefaultEmbedBatch < prep.Total; batch++ {
		if _, err := acts.EmbedBatch(ctx, activities.EmbedBatchInput{IngestInput: in, WorkflowID: "bench-" + doc.ID.String(), Batch: batch}); err != nil {
			b.Fatal(err)
		}
	}
	if err := acts.Finish(ctx, activities.FinishInput{IngestInput: in}); err != nil {
		b.Fatal(err)
	}
}

func waitStatus(b *testing.B, r *rig, id uuid.UUID, want string) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		doc, _, err := r.svc.Get(context.Background(), r.tenant, id)
		if err != nil {
			b.Fatal(err)
		}
		if doc.Status == store.DocFailed {
			b.Fatalf("ingestion failed: %s", doc.Error)
		}
		if doc.Status == want {
			return
		}
	}
	b.Fatalf("document %s not %s in time", id, want)
}

// newStoreRig is a rig without Temporal: Postgres and the fake embedder.
func newStoreRig(b *testing.B) *rig {
	ctx := context.Background()
	db := testkit.NewDatabase(b)
	st, err := store.Open(ctx, db.AppURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	fake := fakellm.New(b)
	pool := llm.NewPool([]llm.Provider{llm.NewOpenAI(llm.OpenAIConfig{APIKey: fake.APIKey(), BaseURL: fake.OpenAIBaseURL()})},
		llm.PoolConfig{Metrics: llm.NewMetrics(prometheus.NewRegistry())})
	emb := &countingEmbedder{Embedder: knowledge.PoolEmbedder{Pool: pool, Chain: []string{"openai/text-embedding-3-small"}}}
	r := &rig{store: st, fake: fake, embedder: emb, tenant: uuid.New()}
	r.svc = &knowledge.Service{Store: st, Embedder: emb}
	if err := st.WithTenant(ctx, r.tenant, func(tx *store.Tx) error {
		_, err := tx.CreateTenant(ctx, r.tenant, "Bench")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return r
}
