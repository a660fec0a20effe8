package v1

import (
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/store"
)

type documentJSON struct {
	ID         string  `json:"id"`
	TenantID   string  `json:"tenant_id"`
	Title      string  `json:"title"`
	Status     string  `json:"status"`
	Error      string  `json:"error,omitempty"`
	Chunks     int     `json:"chunks"`      // chunks of the current version
	ChunksDone int     `json:"chunks_done"` // of which embedded and indexed
	SourceType string  `json:"source_type"`
	Filename   string  `json:"filename"`
	SizeBytes  int     `json:"size_bytes"`
	Version    int     `json:"version"`
	WorkflowID string  `json:"workflow_id,omitempty"`
	CreatedAt  string  `json:"created_at"`
	UpdatedAt  string  `json:"updated_at"`
	IndexedAt  *string `json:"indexed_at"`
}

func documentOut(d store.Document) documentJSON {
	return documentJSON{ID: d.ID.String(), TenantID: d.TenantID.String(), Title: d.Title, Status: d.Status, Error: d.Error,
		Chunks: d.ChunksTotal, ChunksDone: d.ChunksDone, SourceType: d.SourceType, Filename: d.Filename,
		SizeBytes: d.SizeBytes, Version: d.Version, WorkflowID: d.WorkflowID, CreatedAt: ts(d.CreatedAt),
		UpdatedAt: ts(d.UpdatedAt), IndexedAt: tsPtr(d.IndexedAt)}
}

type chunkJSON struct {
	ID       string `json:"id"`
	Ordinal  int    `json:"ordinal"`
	Heading  string `json:"heading"`
	Content  string `json:"content"`
	Embedded bool   `json:"embedded"`
	Model    string `json:"embedding_model,omitempty"`
	Citation string `json:"citation"`
}

// documentRequest is the JSON form of an upload.
type documentRequest struct {
	Title      string `json:"title"`
	Content    string `json:"content"`
	SourceType string `json:"source_type"` // markdown (default) | text | html
}

// uploadFromRequest reads a multipart upload (field "file", optional
// "title") or a JSON document.
func (a *API) uploadFromRequest(c *gin.Context) (knowledge.Upload, error) {
	if strings.HasPrefix(c.ContentType(), "multipart/") {
		fh, err := c.FormFile("file")
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return knowledge.Upload{}, apperr.New(http.StatusRequestEntityTooLarge, "body_too_large",
					fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit))
			}
			if errors.Is(err, http.ErrMissingFile) {
				return knowledge.Upload{}, apperr.Invalid("file", "attach the document as the multipart field \"file\"")
			}
			return knowledge.Upload{}, apperr.BadRequest("malformed_multipart", "the multipart body could not be read").Wrap(err)
		}
		data, err := readFile(a.Knowledge, fh)
		if err != nil {
			return knowledge.Upload{}, err
		}
		return knowledge.Upload{Title: c.PostForm("title"), Filename: fh.Filename,
			ContentType: fh.Header.Get("Content-Type"), Data: data}, nil
	}
	var req documentRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return knowledge.Upload{}, err
	}
	if strings.TrimSpace(req.Title) == "" {
		return knowledge.Upload{}, apperr.Invalid("title", "give the document a title")
	}
	if strings.TrimSpace(req.Content) == "" {
		return knowledge.Upload{}, apperr.Invalid("content", "the document is empty")
	}
	ext := map[string]string{"": ".md", knowledge.TypeMarkdown: ".md", knowledge.TypeText: ".txt", knowledge.TypeHTML: ".html"}[req.SourceType]
	if ext == "" {
		return knowledge.Upload{}, apperr.Invalid("source_type", "must be markdown, text or html (upload a PDF as multipart)")
	}
	return knowledge.Upload{Title: req.Title, Filename: "document" + ext, Data: []byte(req.Content)}, nil
}

func readFile(svc *knowledge.Service, fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, apperr.BadRequest("malformed_multipart", "the uploaded file could not be read").Wrap(err)
	}
	defer f.Close()
	return svc.ReadUpload(f)
}

func (a *API) createDocument(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	up, err := a.uploadFromRequest(c)
	if err != nil {
		return err
	}
	doc, outcome, err := a.Knowledge.Add(c.Request.Context(), principal(c), tenantID, up)
	if err != nil {
		return notFoundAs(err, "tenant")
	}
	status := http.StatusCreated
	if outcome == store.DocUnchanged {
		status = http.StatusOK // nothing new was created
	}
	c.JSON(status, documentOut(doc))
	return nil
}

func (a *API) listDocuments(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	list, err := a.Knowledge.List(c.Request.Context(), tenantID)
	if err != nil {
		return err
	}
	out := make([]documentJSON, 0, len(list))
	for _, d := range list {
		out = append(out, documentOut(d))
	}
	c.JSON(http.StatusOK, gin.H{"documents": out})
	return nil
}

func (a *API) getDocument(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	id, err := pathID(c, "document_id", "document")
	if err != nil {
		return err
	}
	doc, chunks, err := a.Knowledge.Get(c.Request.Context(), tenantID, id)
	if err != nil {
		return err
	}
	items := make([]chunkJSON, 0, len(chunks))
	for _, ch := range chunks {
		items = append(items, chunkJSON{ID: ch.ID.String(), Ordinal: ch.Ordinal, Heading: ch.Heading, Content: ch.Content,
			Embedded: ch.Embedded, Model: ch.EmbeddingModel, Citation: knowledge.Cite(doc.Title, ch.Ordinal)})
	}
	c.JSON(http.StatusOK, struct {
		documentJSON
		ChunkList []chunkJSON `json:"chunk_list"`
	}{documentOut(doc), items})
	return nil
}

func (a *API) deleteDocument(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	id, err := pathID(c, "document_id", "document")
	if err != nil {
		return err
	}
	if err := a.Knowledge.Delete(c.Request.Context(), principal(c), tenantID, id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (a *API) retryDocument(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	id, err := pathID(c, "document_id", "document")
	if err != nil {
		return err
	}
	doc, err := a.Knowledge.Retry(c.Request.Context(), principal(c), tenantID, id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, documentOut(doc))
	return nil
}

type searchRequest struct {
	Query string `json:"query"`
	TopK  int    `json:"top_k"`
}

func (a *API) searchKnowledge(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req searchRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	if req.TopK < 0 || req.TopK > knowledge.MaxTopK {
		return apperr.Invalid("top_k", fmt.Sprintf("must be from 1 to %d (0: the default, %d)", knowledge.MaxTopK, store.DefaultKBTopK))
	}
	res, err := a.Knowledge.Search(c.Request.Context(), tenantID, req.Query, req.TopK)
	if err != nil {
		return err
	}
	hits := res.Hits
	if hits == nil {
		hits = []knowledge.Hit{}
	}
	c.JSON(http.StatusOK, gin.H{"hits": hits, "model": res.Model, "warning": res.Warning})
	return nil
}
