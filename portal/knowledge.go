package portal

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/store"
)

type knowledgeListData struct {
	Documents []docRow
	MaxBytes  int64
	Pending   bool // some document is queued or indexing: the page polls
}

// docRow is a document with its progress in percent, for the page.
type docRow struct {
	store.Document
	Pct int
}

// docPct is a document's progress in percent.
func docPct(d store.Document) int {
	if d.ChunksTotal == 0 {
		return 0
	}
	return d.ChunksDone * 100 / d.ChunksTotal
}

func (p *Portal) knowledgePage(c *gin.Context, tenant *store.Tenant, status int, form *Form) {
	docs, err := p.d.Knowledge.List(c.Request.Context(), tenant.ID)
	if err != nil {
		p.fail(c, err)
		return
	}
	d := knowledgeListData{MaxBytes: p.d.Knowledge.MaxBytes}
	for _, doc := range docs {
		d.Documents = append(d.Documents, docRow{Document: doc, Pct: docPct(doc)})
		if doc.Status == store.DocQueued || doc.Status == store.DocIndexing {
			d.Pending = true
		}
	}
	p.render(c, status, "knowledge/list", &Page{Title: "Knowledge", Section: "knowledge", Tenant: tenant, Form: form, Data: &d})
}

func (p *Portal) knowledgeList(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	p.knowledgePage(c, tenant, http.StatusOK, nil)
}

// knowledgeUpload takes the upload form (a plain file input, or the same
// form submitted by the drop zone's script) through the same service as
// the REST API; a refused file is explained next to the field.
func (p *Portal) knowledgeUpload(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	form := &Form{Values: map[string]string{"title": c.PostForm("title")}}
	up := knowledge.Upload{Title: c.PostForm("title")}
	fh, err := c.FormFile("file")
	if err == nil {
		up.Filename, up.ContentType = fh.Filename, fh.Header.Get("Content-Type")
		if f, oerr := fh.Open(); oerr != nil {
			err = oerr
		} else {
			up.Data, err = p.d.Knowledge.ReadUpload(f)
			_ = f.Close()
		}
	} else {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = apperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "the file is larger than the server accepts")
		} else {
			err = apperr.Invalid("file", "choose a file to upload") // no file, or not a multipart form
		}
	}
	var doc store.Document
	var outcome string
	if err == nil {
		doc, outcome, err = p.d.Knowledge.Add(c.Request.Context(), viewerOf(c).Principal, tenant.ID, up)
	}
	if err != nil {
		e := apperr.From(err)
		if e.Status >= 500 && e.Status != http.StatusServiceUnavailable {
			p.fail(c, err)
			return
		}
		if e.Field == "" {
			e = apperr.Invalid("file", e.Message)
		}
		form.Errors = apperr.Fields{e}
		form.Message = capitalise(e.Message) + ". Nothing was saved."
		p.knowledgePage(c, tenant, e.Status, form)
		return
	}
	msg := "Uploaded " + doc.Title + ". It is being indexed; it becomes searchable when ready."
	switch outcome {
	case store.DocReplaced:
		msg = "Replaced " + doc.Title + " (version " + strconv.Itoa(doc.Version) + "). Unchanged passages keep their index."
	case store.DocUnchanged:
		msg = doc.Title + " is already in the knowledge base with exactly this content; nothing changed."
	}
	if doc.Status == store.DocFailed {
		p.back(c, "/t/"+tenant.ID.String()+"/knowledge", "error", doc.Title+" was saved but could not be indexed: "+doc.Error)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/knowledge", "success", msg)
}

type docStatusJSON struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Chunks     int    `json:"chunks"`
	ChunksDone int    `json:"chunks_done"`
	Pct        int    `json:"pct"`
	Error      string `json:"error"`
}

// knowledgeStatus is the small JSON the Knowledge page polls every second
// while a document is being ingested, to move its progress bar.
func (p *Portal) knowledgeStatus(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	docs, err := p.d.Knowledge.List(c.Request.Context(), tenant.ID)
	if err != nil {
		c.JSON(apperr.From(err).Status, gin.H{"error": "unavailable"})
		return
	}
	out := make([]docStatusJSON, 0, len(docs))
	for _, d := range docs {
		out = append(out, docStatusJSON{ID: d.ID.String(), Status: d.Status, Chunks: d.ChunksTotal, ChunksDone: d.ChunksDone,
			Pct: docPct(d), Error: d.Error})
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"documents": out})
}

type knowledgeShowData struct {
	Document docRow
	Chunks   []store.Chunk
}

func (p *Portal) knowledgeShow(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "document_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	doc, chunks, err := p.d.Knowledge.Get(c.Request.Context(), tenant.ID, id)
	if err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, http.StatusOK, "knowledge/show", &Page{Title: doc.Title, Section: "knowledge", Tenant: tenant,
		Crumbs: []Crumb{{"Knowledge", "/t/" + tenant.ID.String() + "/knowledge"}, {doc.Title, ""}},
		Data:   &knowledgeShowData{Document: docRow{Document: doc, Pct: docPct(doc)}, Chunks: chunks}})
}

func (p *Portal) knowledgeRetry(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "document_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	doc, err := p.d.Knowledge.Retry(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id)
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/knowledge", "success", "Indexing "+doc.Title+" again; passages already indexed are kept.")
}

func (p *Portal) knowledgeDelete(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "document_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	if err := p.d.Knowledge.Delete(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id); err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/knowledge", "success", "The document and its passages were deleted; agents no longer find them.")
}

type knowledgeSearchData struct {
	Query   string
	TopK    int
	Result  *knowledge.SearchResult
	MaxTopK int
}

// knowledgeSearch is the "Try a query" page: the hybrid search kb_search
// runs, with each chunk's fused score and its rank in both searches, so an
// operator can see why a passage is (or is not) recalled.
func (p *Portal) knowledgeSearch(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	d := knowledgeSearchData{Query: c.Query("q"), TopK: store.DefaultKBTopK, MaxTopK: knowledge.MaxTopK}
	form := &Form{Values: map[string]string{"q": d.Query}}
	if k, err := strconv.Atoi(c.Query("k")); err == nil && k >= 1 && k <= knowledge.MaxTopK {
		d.TopK = k
	}
	status := http.StatusOK
	if d.Query != "" {
		res, err := p.d.Knowledge.Search(c.Request.Context(), tenant.ID, d.Query, d.TopK)
		if err != nil {
			e := apperr.From(err)
			if e.Status >= 500 {
				p.fail(c, err)
				return
			}
			form.Errors = apperr.Fields{apperr.Invalid("q", e.Message)}
			status = e.Status
		} else {
			d.Result = &res
		}
	}
	p.render(c, status, "knowledge/search", &Page{Title: "Try a query", Section: "knowledge", Tenant: tenant, Form: form,
		Crumbs: []Crumb{{"Knowledge", "/t/" + tenant.ID.String() + "/knowledge"}, {"Try a query", ""}}, Data: &d})
}

// turnSources groups a conversation's knowledge sources by turn.
func turnSources(ctx context.Context, tx *store.Tx, conversationID uuid.UUID) (map[int][]store.Source, error) {
	list, err := tx.ListSources(ctx, conversationID)
	if err != nil {
		return nil, err
	}
	out := map[int][]store.Source{}
	for _, s := range list {
		out[s.Turn] = append(out[s.Turn], s)
	}
	return out, nil
}

// Size is the document's size, readable.
func (d docRow) Size() string { return humanSize(int64(d.SizeBytes)) }

// MaxSize is the upload limit, readable.
func (d *knowledgeListData) MaxSize() string {
	if d.MaxBytes <= 0 {
		return ""
	}
	return humanSize(d.MaxBytes)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
