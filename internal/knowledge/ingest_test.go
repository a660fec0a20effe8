package knowledge_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/knowledge/kbtest"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/workers"
	"github.com/konstruct/konstruct/workflows"
)

// countingEmbedder counts the texts it is asked to embed.
type countingEmbedder struct {
	knowledge.Embedder
	mu     sync.Mutex
	inputs []string
}

func (c *countingEmbedder) Embed(ctx context.Context, in []string) (knowledge.Embeddings, error) {
	c.mu.Lock()
	c.inputs = append(c.inputs, in...)
	c.mu.Unlock()
	return c.Embedder.Embed(ctx, in)
}

func (c *countingEmbedder) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inputs)
}

// rig is the knowledge service over the real Postgres, the Temporal dev
// server (a worker on its own task queue) and the fake LLM's embeddings.
type rig struct {
	svc      *knowledge.Service
	store    *store.Store
	tc       client.Client
	fake     *fakellm.Server
	embedder *countingEmbedder
	tenant   uuid.UUID
	admin    authz.Principal
}

func newRig(t testing.TB) *rig {
	t.Helper()
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	st, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	tc := testkit.NewTemporal(t)
	fake := fakellm.New(t)
	pool := llm.NewPool([]llm.Provider{llm.NewOpenAI(llm.OpenAIConfig{APIKey: fake.APIKey(), BaseURL: fake.OpenAIBaseURL()})},
		llm.PoolConfig{Metrics: llm.NewMetrics(prometheus.NewRegistry())})
	emb := &countingEmbedder{Embedder: knowledge.PoolEmbedder{Pool: pool, Chain: []string{"openai/text-embedding-3-small"}}}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	queue := "kb-" + hex.EncodeToString(b)
	w := worker.New(tc, queue, worker.Options{})
	workers.RegisterKnowledge(w, &activities.Knowledge{Store: st, Embedder: emb})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	r := &rig{store: st, tc: tc, fake: fake, embedder: emb, tenant: uuid.New()}
	r.svc = &knowledge.Service{Store: st, Ingester: workflows.IngestStarter{Client: tc, TaskQueue: queue}, Embedder: emb}
	require.NoError(t, st.WithTenant(ctx, r.tenant, func(tx *store.Tx) error {
		if _, err := tx.CreateTenant(ctx, r.tenant, "KB tenant"); err != nil {
			return err
		}
		u, err := tx.CreateUser(ctx, store.User{Email: "kb-" + r.tenant.String()[:8] + "@example.com", PasswordHash: "x", Role: store.RoleCustomerAdmin})
		r.admin = authz.Principal{UserID: u.ID, Role: store.RoleCustomerAdmin, TenantID: r.tenant}
		return err
	}))
	return r
}

func (r *rig) waitReady(t *testing.T, id uuid.UUID) store.Document {
	t.Helper()
	var doc store.Document
	require.Eventually(t, func() bool {
		var err error
		doc, _, err = r.svc.Get(context.Background(), r.tenant, id)
		require.NoError(t, err)
		require.NotEqual(t, store.DocFailed, doc.Status, "ingestion failed: %s", doc.Error)
		return doc.Status == store.DocReady
	}, 3*time.Minute, 100*time.Millisecond) // generous: a loaded dev server dispatches slowly
	return doc
}

// manual is a document long enough for several chunks and batches.
func manual(extra string) string {
	var b strings.Builder
	b.WriteString("# Zorblax 3000 manual\n\nThe Zorblax 3000 is a kitchen robot.\n\n")
	topics := []string{"Cleaning", "Charging", "Safety", "Recipes", "Storage", "Travel"}
	for _, topic := range topics {
		b.WriteString("## " + topic + "\n\n")
		for i := 0; i < 6; i++ {
			b.WriteString(strings.Repeat("general "+strings.ToLower(topic)+" guidance sentence number filler words ", 8) + "\n\n")
		}
	}
	b.WriteString("## Warranty\n\nThe Zorblax warranty lasts 37 months from delivery. Returns go to depot Quillon." + extra + "\n")
	return b.String()
}

func TestIngestSearchReplaceDelete(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()

	// A PDF only it can answer from.
	pdf := kbtest.PDF(t, "Flux guide", "The flux capacitor of the DeLorean needs exactly 1.21 gigawatts to travel in time.")
	pdfDoc, outcome, err := r.svc.Add(ctx, r.admin, r.tenant, knowledge.Upload{Filename: "flux.pdf", Data: pdf})
	require.NoError(t, err)
	require.Equal(t, store.DocCreated, outcome)
	require.Equal(t, "flux", pdfDoc.Title, "the title defaults to the file name")
	require.Equal(t, knowledge.TypePDF, pdfDoc.SourceType)

	doc, _, err := r.svc.Add(ctx, r.admin, r.tenant, knowledge.Upload{Title: "Zorblax manual", Filename: "manual.md", Data: []byte(manual(""))})
	require.NoError(t, err)
	require.Contains(t, []string{store.DocQueued, store.DocIndexing, store.DocReady}, doc.Status)
	r.waitReady(t, pdfDoc.ID)
	doc = r.waitReady(t, doc.ID)
	require.Greater(t, doc.ChunksTotal, activities.DefaultEmbedBatch/4, "several chunks")
	require.Equal(t, doc.ChunksTotal, doc.ChunksDone)

	res, err := r.svc.Search(ctx, r.tenant, "How many gigawatts does the flux capacitor need?", 3)
	require.NoError(t, err)
	require.Empty(t, res.Warning)
	require.Equal(t, "openai/text-embedding-3-small", res.Model)
	require.NotEmpty(t, res.Hits)
	top := res.Hits[0]
	require.Equal(t, "flux", top.DocumentTitle)
	require.Contains(t, top.Content, "1.21 gigawatts")
	require.Positive(t, top.VectorRank, "found by vector search")
	require.Positive(t, top.TextRank, "found by full-text search")
	require.InDelta(t, 2.0/61, top.Score, 1e-9, "RRF of rank 1 in both lists")
	require.Equal(t, "[flux §1]", top.Citation)

	res, err = r.svc.Search(ctx, r.tenant, "warranty months", 3)
	require.NoError(t, err)
	require.Equal(t, "Zorblax manual", res.Hits[0].DocumentTitle)
	require.Equal(t, "Zorblax 3000 manual › Warranty", res.Hits[0].Heading)

	// Re-uploading the same bytes changes nothing; changed bytes replace the
	// document, and only the changed chunk is embedded again.
	same, outcome, err := r.svc.Add(ctx, r.admin, r.tenant, knowledge.Upload{Title: "Zorblax manual", Filename: "manual.md", Data: []byte(manual(""))})
	require.NoError(t, err)
	require.Equal(t, store.DocUnchanged, outcome)
	require.Equal(t, doc.Version, same.Version)
	before := r.embedder.count()
	repl, outcome, err := r.svc.Add(ctx, r.admin, r.tenant, knowledge.Upload{Title: "Zorblax manual", Filename: "manual.md",
		Data: []byte(manual(" Extended warranty costs 12 credits."))})
	require.NoError(t, err)
	require.Equal(t, store.DocReplaced, outcome)
	require.Equal(t, doc.Version+1, repl.Version)
	repl = r.waitReady(t, repl.ID)
	require.Equal(t, doc.ID, repl.ID)
	require.Equal(t, doc.ChunksTotal, repl.ChunksTotal)
	require.Equal(t, before+1, r.embedder.count(), "only the changed chunk was embedded again")
	_, chunks, err := r.svc.Get(ctx, r.tenant, repl.ID)
	require.NoError(t, err)
	require.Len(t, chunks, repl.ChunksTotal, "the previous version's chunks are gone")
	res, err = r.svc.Search(ctx, r.tenant, "extended warranty credits", 1)
	require.NoError(t, err)
	require.Contains(t, res.Hits[0].Content, "12 credits")

	// Another tenant's search sees none of it.
	other := uuid.New()
	require.NoError(t, r.store.WithTenant(ctx, other, func(tx *store.Tx) error {
		_, err := tx.CreateTenant(ctx, other, "Other")
		return err
	}))
	res, err = r.svc.Search(ctx, other, "flux capacitor gigawatts", 5)
	require.NoError(t, err)
	require.Empty(t, res.Hits)

	// Deleting a document removes its chunks: they are no longer found.
	require.NoError(t, r.svc.Delete(ctx, r.admin, r.tenant, pdfDoc.ID))
	res, err = r.svc.Search(ctx, r.tenant, "How many gigawatts does the flux capacitor need?", 5)
	require.NoError(t, err)
	for _, h := range res.Hits {
		require.NotEqual(t, "flux", h.DocumentTitle)
	}
	require.NoError(t, r.store.WithTenant(ctx, r.tenant, func(tx *store.Tx) error {
		n, err := tx.CountChunks(ctx, pdfDoc.ID)
		require.Zero(t, n)
		return err
	}))
	_, _, err = r.svc.Get(ctx, r.tenant, pdfDoc.ID)
	require.Error(t, err)
	require.ErrorIs(t, err, store.ErrNotFound)

	// The audit trail has the changes.
	require.NoError(t, r.store.WithTenant(ctx, r.tenant, func(tx *store.Tx) error {
		events, err := tx.ListAudit(ctx, 100)
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		require.Contains(t, actions, store.AuditKnowledgeCreate)
		require.Contains(t, actions, store.AuditKnowledgeReplace)
		require.Contains(t, actions, store.AuditKnowledgeDelete)
		require.Contains(t, actions, store.AuditEmbeddingCall)
		return err
	}))

	// The ingestion of the first version is the committed replay history.
	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		h, err := workflows.FetchHistory(ctx, r.tc, workflows.IngestID(r.tenant.String(), doc.ID.String(), doc.Version), "")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join("..", "..", "workflows", "testdata", "knowledge_v1.json"), h, 0o644))
	}
}

func TestFailedIngestionSaysWhyAndRetryResumes(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// The embedding model refuses (a 400 is not retried): the document fails
	// with the reason, instead of sitting in "queued".
	r.fake.SetEmbedHandler(func(fakellm.Request) fakellm.Reply {
		return fakellm.Reply{Status: 400, ErrorMessage: "input too long for this model"}
	})
	doc, _, err := r.svc.Add(ctx, r.admin, r.tenant, knowledge.Upload{Title: "Manual", Filename: "m.md", Data: []byte(manual(""))})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		doc, _, err = r.svc.Get(ctx, r.tenant, doc.ID)
		require.NoError(t, err)
		return doc.Status == store.DocFailed
	}, 3*time.Minute, 100*time.Millisecond) // generous: a loaded dev server dispatches slowly
	require.Contains(t, doc.Error, "input too long for this model")
	require.Equal(t, 0, doc.ChunksDone)
	require.Positive(t, doc.ChunksTotal)

	// Fixed, a retry resumes and completes; a second retry of a ready document does nothing.
	r.fake.SetEmbedHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Reply{} })
	doc, err = r.svc.Retry(ctx, r.admin, r.tenant, doc.ID)
	require.NoError(t, err)
	require.NotEqual(t, store.DocFailed, doc.Status)
	require.Empty(t, doc.Error)
	doc = r.waitReady(t, doc.ID)
	require.Equal(t, doc.ChunksTotal, doc.ChunksDone)
	again, err := r.svc.Retry(ctx, r.admin, r.tenant, doc.ID)
	require.NoError(t, err)
	require.Equal(t, store.DocReady, again.Status)
}

func TestUploadRefusesBadInput(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		in   knowledge.Upload
		code string
	}{
		{"docx", knowledge.Upload{Filename: "a.docx", Data: []byte("PK\x03\x04zz")}, "unsupported_media_type"},
		{"empty", knowledge.Upload{Filename: "a.md", Data: nil}, "validation_failed"},
		{"broken pdf", knowledge.Upload{Filename: "a.pdf", Data: []byte("%PDF-1.7 garbage")}, "validation_failed"},
		{"no title", knowledge.Upload{Data: []byte("hello")}, "validation_failed"},
		{"unknown type", knowledge.Upload{Title: "x", Filename: "x.bin", Data: []byte("hello")}, "unsupported_media_type"},
		{"too large", knowledge.Upload{Filename: "a.txt", Data: make([]byte, knowledge.DefaultMaxBytes+1)}, "document_too_large"},
	} {
		_, _, err := r.svc.Add(ctx, r.admin, r.tenant, tc.in)
		require.Error(t, err, tc.name)
		require.Contains(t, err.Error(), tc.code, tc.name)
	}
	docs, err := r.svc.List(ctx, r.tenant)
	require.NoError(t, err)
	require.Empty(t, docs, "nothing half-stored")
}

// downIngester is a workflow service that cannot be reached.
type downIngester struct{}

func (downIngester) StartIngest(context.Context, uuid.UUID, uuid.UUID, int) (string, error) {
	return "", errors.New("dial tcp 127.0.0.1:7233: connect: connection refused")
}

// When ingestion cannot even start, the document is kept, failed with a
// reason, and a retry (once the service is back) ingests it: nothing sits in
// "queued" with nobody working on it.
func TestUploadWhileTemporalIsDownFailsVisiblyAndRetries(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	working := r.svc.Ingester
	r.svc.Ingester = downIngester{}
	doc, outcome, err := r.svc.Add(ctx, r.admin, r.tenant, knowledge.Upload{Title: "Hours", Filename: "h.md", Data: []byte("# Hours\n\nOpen 9 to 5.")})
	require.NoError(t, err)
	require.Equal(t, store.DocCreated, outcome)
	require.Equal(t, store.DocFailed, doc.Status)
	require.Contains(t, doc.Error, "could not be started")
	r.svc.Ingester = working
	doc, err = r.svc.Retry(ctx, r.admin, r.tenant, doc.ID)
	require.NoError(t, err)
	require.Equal(t, store.DocQueued, doc.Status)
	r.waitReady(t, doc.ID)
}

// Full-text search ORs a question's words (a chunk holding some of them is
// found), keeps quoted phrases, and honours an excluded word.
func TestTextSearchSyntax(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for title, text := range map[string]string{
		"Returns":  "# Returns\n\nReturns go to depot Quillon within 30 days.",
		"Shipping": "# Shipping\n\nShipping to depot Quillon takes two days.",
	} {
		doc, _, err := r.svc.Add(ctx, r.admin, r.tenant, knowledge.Upload{Title: title, Filename: "x.md", Data: []byte(text)})
		require.NoError(t, err)
		r.waitReady(t, doc.ID)
	}
	titles := func(q string) []string {
		var out []string
		require.NoError(t, r.store.WithTenant(ctx, r.tenant, func(tx *store.Tx) error {
			hits, err := tx.SearchChunksByText(ctx, q, 10)
			for _, h := range hits {
				out = append(out, h.DocumentTitle)
			}
			return err
		}))
		return out
	}
	require.Equal(t, []string{"Returns"}, titles("what is the return window for my parcel?"), "some words suffice")
	require.ElementsMatch(t, []string{"Returns", "Shipping"}, titles("depot Quillon"))
	require.Equal(t, []string{"Shipping"}, titles("depot -returns"))
	require.Equal(t, []string{"Shipping"}, titles(`"takes two days"`))
	require.Empty(t, titles("the of and"), "stop words only")
}
