package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/knowledge/kbtest"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

type kbDocument struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	Status     string `json:"status"`
	Error      string `json:"error"`
	Chunks     int    `json:"chunks"`
	ChunksDone int    `json:"chunks_done"`
	ChunkList  []struct {
		ID string `json:"id"`
	} `json:"chunk_list"`
}

// uploadFile posts a multipart upload to the knowledge base.
func uploadFile(t *testing.T, p *platform.Platform, tn platform.Tenant, filename string, data []byte) kbDocument {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", filename)
	require.NoError(t, err)
	_, err = fw.Write(data)
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	req, err := http.NewRequest(http.MethodPost, p.URL+"/api/v1/tenants/"+tn.ID+"/knowledge", &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", out)
	var d kbDocument
	require.NoError(t, json.Unmarshal(out, &d))
	return d
}

func getDocument(t *testing.T, p *platform.Platform, tn platform.Tenant, id string) kbDocument {
	t.Helper()
	var d kbDocument
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/knowledge/"+id, p.AdminToken, nil, http.StatusOK, &d)
	return d
}

func waitReady(t *testing.T, p *platform.Platform, tn platform.Tenant, id string, timeout time.Duration) kbDocument {
	t.Helper()
	var d kbDocument
	require.Eventually(t, func() bool {
		d = getDocument(t, p, tn, id)
		require.NotEqual(t, "failed", d.Status, d.Error)
		return d.Status == "ready"
	}, timeout, 100*time.Millisecond)
	return d
}

type kbResult struct {
	ChunkID       string `json:"chunk_id"`
	DocumentTitle string `json:"document_title"`
	Citation      string `json:"citation"`
	Content       string `json:"content"`
}

// citingModel answers like a model given kb_search: it searches with the
// user's question, then answers from the first result, citing it as the
// tool labelled it — or says it does not know when nothing came back.
func citingModel(r fakellm.Request) fakellm.Reply {
	last := r.Messages[len(r.Messages)-1]
	if last.Role == "tool" {
		var results []kbResult
		if err := json.Unmarshal([]byte(last.Content), &results); err != nil || len(results) == 0 {
			return fakellm.Text("I could not find that in the knowledge base.")
		}
		top := results[0]
		return fakellm.Text(fmt.Sprintf("From the docs: %s %s (chunk %s)",
			strings.Join(strings.Fields(top.Content), " "), top.Citation, top.ChunkID))
	}
	if strings.Contains(r.System, "kb_search") && len(r.Tools) > 0 {
		args, _ := json.Marshal(map[string]string{"query": r.LastUserText()})
		return fakellm.CallTools(fakellm.ToolCall{Name: "kb_search", Arguments: args})
	}
	return fakellm.Text("no tools")
}

// A question only an uploaded PDF answers is answered with a citation of
// the chunk that holds the answer; the transcript records the chunk as the
// turn's source; deleting the document removes its chunks and it is no
// longer cited.
func TestKnowledgeAnswerCitesUploadedPDF(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(citingModel)
	tn := p.NewTenant("Acme", platform.AgentSpec{Name: "Ada", Tools: []string{"kb_search"}})

	pdf := kbtest.PDF(t, "DeLorean service notes",
		"Routine checks happen every 3000 miles.\n\nThe flux capacitor requires exactly 1.21 gigawatts of power.")
	doc := uploadFile(t, p, tn, "DeLorean notes.pdf", pdf)
	require.Equal(t, "DeLorean notes", doc.Title)
	doc = waitReady(t, p, tn, doc.ID, 60*time.Second)
	require.NotEmpty(t, doc.ChunkList)
	chunkID := doc.ChunkList[0].ID

	ts := platform.NewTS()
	body, _ := tn.Mention("C0GENERAL", "U0ALICE", "How many gigawatts does the flux capacitor require?", ts, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "C0GENERAL", 1, replyTimeout)
	require.Contains(t, msgs[0].Text, "1.21 gigawatts")
	require.Contains(t, msgs[0].Text, "[DeLorean notes §1]")
	require.Contains(t, msgs[0].Text, chunkID)

	// The model was told to cite, and given the tool.
	first := p.LLM.Requests()[0]
	require.Contains(t, first.System, "[Title §n]")
	require.Equal(t, "kb_search", first.Tools[0].Name)

	// The turn's sources are recorded for the transcript.
	convID := uuid.MustParse(onlyConversation(t, p, tn))
	st, err := store.Open(context.Background(), p.DB.AppURL)
	require.NoError(t, err)
	defer st.Close()
	var sources []store.Source
	require.NoError(t, st.WithTenant(context.Background(), uuid.MustParse(tn.ID), func(tx *store.Tx) error {
		sources, err = tx.ListSources(context.Background(), convID)
		return err
	}))
	require.NotEmpty(t, sources)
	require.Equal(t, 1, sources[0].Turn)
	require.Equal(t, chunkID, sources[0].ChunkID.String())
	require.Equal(t, "DeLorean notes", sources[0].DocumentTitle)

	// Delete the document: its chunks are gone and it is no longer cited.
	p.MustDo(http.MethodDelete, "/api/v1/tenants/"+tn.ID+"/knowledge/"+doc.ID, p.AdminToken, nil, http.StatusNoContent, nil)
	status, _ = p.Do(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/knowledge/"+doc.ID, p.AdminToken, nil)
	require.Equal(t, http.StatusNotFound, status)
	var search struct {
		Hits []kbResult `json:"hits"`
	}
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/knowledge/search", p.AdminToken,
		map[string]any{"query": "flux capacitor gigawatts"}, http.StatusOK, &search)
	require.Empty(t, search.Hits)
	body, _ = tn.Mention("C0GENERAL", "U0ALICE", "How many gigawatts does the flux capacitor require?", platform.NewTS(), ts)
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs = p.Slack.WaitForMessages(t, "C0GENERAL", 2, replyTimeout)
	require.Equal(t, "I could not find that in the knowledge base.", msgs[1].Text)
	require.NotContains(t, msgs[1].Text, "§")
	// The first turn's transcript still says what it cited, by title.
	require.NoError(t, st.WithTenant(context.Background(), uuid.MustParse(tn.ID), func(tx *store.Tx) error {
		sources, err = tx.ListSources(context.Background(), convID)
		return err
	}))
	require.Equal(t, "DeLorean notes", sources[0].DocumentTitle)
	require.Nil(t, sources[0].ChunkID, "the chunk itself is gone")
}

// Killing the worker (SIGKILL) mid-ingestion: the document stays indexing,
// and a new worker resumes the workflow where it stopped — the batches
// already stored are not embedded again — to ready.
func TestKnowledgeIngestionResumesAfterWorkerKill(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	// Slow embeddings, so the kill lands mid-ingestion.
	p.LLM.SetEmbedHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Reply{}.After(300 * time.Millisecond) })
	tn := p.NewTenant("Acme", platform.AgentSpec{Name: "Ada"})
	var md strings.Builder
	for i := 0; i < 8*32; i++ { // eight batches of 32 chunks
		fmt.Fprintf(&md, "## Section %d\n\nFact number %d: the answer to question %d is %d.\n\n", i, i, i, i*7)
	}
	var doc kbDocument
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/knowledge", p.AdminToken,
		map[string]string{"title": "Facts", "content": md.String()}, http.StatusCreated, &doc)
	require.Eventually(t, func() bool {
		doc = getDocument(t, p, tn, doc.ID)
		return doc.ChunksDone >= 64
	}, 60*time.Second, 20*time.Millisecond)
	p.KillWorker()
	killedAt := getDocument(t, p, tn, doc.ID)
	require.Equal(t, "indexing", killedAt.Status)
	require.Equal(t, 256, killedAt.Chunks)
	require.Less(t, killedAt.ChunksDone, killedAt.Chunks, "killed mid-ingestion")

	p.StartWorker()
	doc = waitReady(t, p, tn, doc.ID, 90*time.Second)
	require.Equal(t, 256, doc.ChunksDone)
	// Eight batches, plus at most the one in flight at the kill done again.
	require.LessOrEqual(t, len(p.LLM.EmbedRequests()), 9, "resumed, not restarted")
}
