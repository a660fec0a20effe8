package v1_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/knowledge/kbtest"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

type documentJSON struct {
	ID         uuid.UUID `json:"id"`
	Title      string    `json:"title"`
	Status     string    `json:"status"`
	Error      string    `json:"error"`
	Chunks     int       `json:"chunks"`
	ChunksDone int       `json:"chunks_done"`
	SourceType string    `json:"source_type"`
	Version    int       `json:"version"`
	ChunkList  []struct {
		ID       uuid.UUID `json:"id"`
		Content  string    `json:"content"`
		Embedded bool      `json:"embedded"`
		Citation string    `json:"citation"`
	} `json:"chunk_list"`
}

type searchJSON struct {
	Hits []struct {
		ChunkID       uuid.UUID `json:"chunk_id"`
		DocumentTitle string    `json:"document_title"`
		Content       string    `json:"content"`
		Score         float64   `json:"score"`
		VectorRank    int       `json:"vector_rank"`
		TextRank      int       `json:"text_rank"`
		Citation      string    `json:"citation"`
	} `json:"hits"`
	Model   string `json:"model"`
	Warning string `json:"warning"`
}

func knowledgePath(tenantID uuid.UUID) string { return tenantPath(tenantID) + "/knowledge" }

// kbServer is the API with a worker running ingestion on its own task queue
// and embeddings from the fake LLM.
func kbServer(t *testing.T) *apitest.Server {
	t.Helper()
	testkit.NewTemporal(t)
	fake := fakellm.New(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s := apitest.Start(t, apitest.Options{Env: map[string]string{
		"TEMPORAL_TASK_QUEUE": "kb-api-" + hex.EncodeToString(b),
		"OPENAI_API_KEY":      fake.APIKey(),
		"OPENAI_BASE_URL":     fake.OpenAIBaseURL(),
	}})
	w := s.App.Worker()
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return s
}

func multipartUpload(t *testing.T, s *apitest.Server, path, token, filename string, data []byte, title string) *apitest.Response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if title != "" {
		require.NoError(t, mw.WriteField("title", title))
	}
	if filename != "" {
		fw, err := mw.CreateFormFile("file", filename)
		require.NoError(t, err)
		_, err = fw.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	req := s.NewRequest(t, http.MethodPost, path, token, body.Bytes())
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return s.Send(t, req)
}

func waitDocument(t *testing.T, s *apitest.Server, token string, tenantID, id uuid.UUID) documentJSON {
	t.Helper()
	var d documentJSON
	require.Eventually(t, func() bool {
		s.Do(t, http.MethodGet, knowledgePath(tenantID)+"/"+id.String(), token, nil).Expect(t, http.StatusOK).JSON(t, &d)
		require.NotEqual(t, store.DocFailed, d.Status, d.Error)
		return d.Status == store.DocReady
	}, 60*time.Second, 100*time.Millisecond)
	return d
}

func TestKnowledgeREST(t *testing.T) {
	t.Parallel()
	s := kbServer(t)
	ten := s.CreateTenant(t, "Knowledge")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	operator := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	base := knowledgePath(ten.ID)

	pdf := kbtest.PDF(t, "Depot guide", "Every Zorblax return is shipped to depot Quillon in Vernhout.")
	var created documentJSON
	multipartUpload(t, s, base, admin.Token, "depot-guide.pdf", pdf, "Depot guide").Expect(t, http.StatusCreated).JSON(t, &created)
	require.Equal(t, "Depot guide", created.Title)
	require.Equal(t, "pdf", created.SourceType)
	require.Contains(t, []string{store.DocQueued, store.DocIndexing, store.DocReady}, created.Status)
	doc := waitDocument(t, s, admin.Token, ten.ID, created.ID)
	require.Positive(t, doc.Chunks)
	require.Equal(t, doc.Chunks, doc.ChunksDone)
	require.Len(t, doc.ChunkList, doc.Chunks)
	require.True(t, doc.ChunkList[0].Embedded)
	require.Equal(t, "[Depot guide §1]", doc.ChunkList[0].Citation)
	require.Contains(t, doc.ChunkList[0].Content, "depot Quillon")

	// JSON upload; the same title again replaces it; the same bytes change nothing.
	var md documentJSON
	s.Do(t, http.MethodPost, base, admin.Token, map[string]string{"title": "Hours", "content": "# Hours\n\nOpen 9 to 5."}).
		Expect(t, http.StatusCreated).JSON(t, &md)
	require.Equal(t, "markdown", md.SourceType)
	s.Do(t, http.MethodPost, base, admin.Token, map[string]string{"title": "Hours", "content": "# Hours\n\nOpen 9 to 5."}).
		Expect(t, http.StatusOK)
	var md2 documentJSON
	s.Do(t, http.MethodPost, base, admin.Token, map[string]string{"title": "Hours", "content": "# Hours\n\nOpen 8 to 6.", "source_type": "markdown"}).
		Expect(t, http.StatusCreated).JSON(t, &md2)
	require.Equal(t, md.ID, md2.ID)
	require.Equal(t, 2, md2.Version)
	waitDocument(t, s, admin.Token, ten.ID, md2.ID)

	var list struct{ Documents []documentJSON }
	s.Do(t, http.MethodGet, base, operator.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Documents, 2)

	// Search, as an operator too.
	var res searchJSON
	s.Do(t, http.MethodPost, base+"/search", operator.Token, map[string]any{"query": "Where are Zorblax returns shipped?", "top_k": 3}).
		Expect(t, http.StatusOK).JSON(t, &res)
	require.Equal(t, "openai/text-embedding-3-small", res.Model)
	require.NotEmpty(t, res.Hits)
	require.Equal(t, "Depot guide", res.Hits[0].DocumentTitle)
	require.Equal(t, doc.ChunkList[0].ID, res.Hits[0].ChunkID)
	require.Positive(t, res.Hits[0].VectorRank)
	require.Positive(t, res.Hits[0].TextRank)

	// Bad input is refused with a clear error and stores nothing.
	multipartUpload(t, s, base, admin.Token, "report.docx", []byte("PK\x03\x04...."), "").ExpectError(t, http.StatusUnsupportedMediaType, "unsupported_media_type", "")
	multipartUpload(t, s, base, admin.Token, "", nil, "No file").ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "file")
	multipartUpload(t, s, base, admin.Token, "broken.pdf", []byte("%PDF-1.4 not really"), "").ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "file")
	s.Do(t, http.MethodPost, base, admin.Token, map[string]string{"content": "x"}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "title")
	s.Do(t, http.MethodPost, base, admin.Token, map[string]string{"title": "x", "content": "x", "source_type": "pdf"}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "source_type")
	s.Do(t, http.MethodPost, base+"/search", admin.Token, map[string]any{"query": "  "}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "query")
	s.Do(t, http.MethodPost, base+"/search", admin.Token, map[string]any{"query": "x", "top_k": 99}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "top_k")
	s.Do(t, http.MethodGet, base, admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Documents, 2, "refused uploads stored nothing")

	// Operators read but do not change.
	s.Do(t, http.MethodPost, base, operator.Token, map[string]string{"title": "x", "content": "x"}).Expect(t, http.StatusForbidden)
	s.Do(t, http.MethodDelete, base+"/"+doc.ID.String(), operator.Token, nil).Expect(t, http.StatusForbidden)

	// Another tenant's admin finds nothing.
	other := s.CreateTenant(t, "Other")
	otherAdmin := s.NewUser(t, other.ID, store.RoleCustomerAdmin)
	s.Do(t, http.MethodGet, base+"/"+doc.ID.String(), otherAdmin.Token, nil).Expect(t, http.StatusNotFound)
	s.Do(t, http.MethodGet, knowledgePath(other.ID)+"/"+doc.ID.String(), otherAdmin.Token, nil).Expect(t, http.StatusNotFound)

	// A ready document's retry changes nothing.
	var again documentJSON
	s.Do(t, http.MethodPost, base+"/"+doc.ID.String()+"/retry", admin.Token, nil).Expect(t, http.StatusAccepted).JSON(t, &again)
	require.Equal(t, store.DocReady, again.Status)

	// Delete: gone, and its chunks are no longer found.
	s.Do(t, http.MethodDelete, base+"/"+doc.ID.String(), admin.Token, nil).Expect(t, http.StatusNoContent)
	s.Do(t, http.MethodGet, base+"/"+doc.ID.String(), admin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodDelete, base+"/"+doc.ID.String(), admin.Token, nil).Expect(t, http.StatusNotFound)
	s.Do(t, http.MethodPost, base+"/search", admin.Token, map[string]any{"query": "Where are Zorblax returns shipped?"}).
		Expect(t, http.StatusOK).JSON(t, &res)
	for _, h := range res.Hits {
		require.NotEqual(t, "Depot guide", h.DocumentTitle)
	}
}

// kb_top_k is an agent field: default 5, settable from 1 to 20.
func TestAgentKBTopK(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "TopK")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	var ag struct {
		ID     uuid.UUID `json:"id"`
		KBTopK int       `json:"kb_top_k"`
	}
	s.Do(t, http.MethodPost, tenantPath(ten.ID)+"/agents", u.Token, map[string]any{"name": "Ada", "tools": []string{"kb_search"}}).
		Expect(t, http.StatusCreated).JSON(t, &ag)
	require.Equal(t, 5, ag.KBTopK)
	path := tenantPath(ten.ID) + "/agents/" + ag.ID.String()
	s.Do(t, http.MethodPatch, path, u.Token, map[string]any{"kb_top_k": 8}).Expect(t, http.StatusOK).JSON(t, &ag)
	require.Equal(t, 8, ag.KBTopK)
	for _, bad := range []int{0, 21, -3} {
		s.Do(t, http.MethodPatch, path, u.Token, map[string]any{"kb_top_k": bad}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "kb_top_k")
	}
	s.Do(t, http.MethodPatch, path, u.Token, map[string]any{"name": "Ada Lovelace"}).Expect(t, http.StatusOK).JSON(t, &ag)
	require.Equal(t, 8, ag.KBTopK, "a patch without it keeps it")
}

// A document upload may be larger than KONSTRUCT_MAX_BODY_BYTES, up to
// KONSTRUCT_MAX_UPLOAD_BYTES; every other route keeps the body limit.
func TestKnowledgeUploadHasItsOwnBodyLimit(t *testing.T) {
	t.Parallel()
	testkit.NewTemporal(t)
	s := apitest.Start(t, apitest.Options{Env: map[string]string{
		"MAX_BODY_BYTES":   "65536",
		"MAX_UPLOAD_BYTES": "262144",
	}})
	ten := s.CreateTenant(t, "Uploads")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)

	// 128 KiB: over the body limit, within the upload limit. The upload is
	// accepted (ingestion has no worker here, so it stays queued).
	text := bytes.Repeat([]byte("Quillon depot handles every Zorblax return. "), 128<<10/44)
	var created documentJSON
	multipartUpload(t, s, knowledgePath(ten.ID), admin.Token, "returns.txt", text, "Returns").
		Expect(t, http.StatusCreated).JSON(t, &created)
	require.Equal(t, "Returns", created.Title)

	// 512 KiB: over the upload limit.
	big := bytes.Repeat([]byte("x "), 256<<10)
	multipartUpload(t, s, knowledgePath(ten.ID), admin.Token, "big.txt", big, "Big").
		ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large", "")

	// Another route with a 128 KiB body: the ordinary limit still applies.
	body := []byte(`{"name":"` + string(bytes.Repeat([]byte("a"), 128<<10)) + `"}`)
	s.Do(t, http.MethodPost, tenantPath(ten.ID)+"/agents", admin.Token, body).
		ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large", "")
}
