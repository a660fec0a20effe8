package portal

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/store"
)

// transcriptImage is an image an end user sent, as a transcript shows it
// under the message it came with.
type transcriptImage struct {
	URL string `json:"url"`
	Alt string `json:"alt"`
}

// turnImages loads a conversation's images, by the turn whose message
// brought them. Images stored before turns were recorded (turn 0) are not
// placed.
func turnImages(ctx context.Context, tx *store.Tx, tenantID, conversationID uuid.UUID) (map[int][]transcriptImage, error) {
	list, err := tx.ListConversationMedia(ctx, conversationID)
	if err != nil {
		return nil, err
	}
	out := map[int][]transcriptImage{}
	for _, m := range list {
		if m.Turn == 0 {
			continue
		}
		alt := m.Caption
		if alt == "" {
			alt = m.Name
		}
		if alt == "" {
			alt = "An image the user sent"
		}
		out[m.Turn] = append(out[m.Turn], transcriptImage{URL: mediaURL(tenantID, m.ID), Alt: alt})
	}
	return out, nil
}

// conversationImages is turnImages in its own transaction.
func (p *Portal) conversationImages(c *gin.Context, tenantID, conversationID uuid.UUID) (map[int][]transcriptImage, error) {
	var out map[int][]transcriptImage
	err := p.d.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		var err error
		out, err = turnImages(c.Request.Context(), tx, tenantID, conversationID)
		return err
	})
	return out, err
}

func mediaURL(tenantID, id uuid.UUID) string {
	return "/t/" + tenantID.String() + "/media/" + id.String()
}

// mediaShow serves an image an end user sent (to anyone who may read the
// tenant's conversations), with the type sniffed from its bytes when it was
// stored — never a type the channel claimed, and only image types.
func (p *Portal) mediaShow(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "media_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	var m store.Media
	err := p.d.Store.WithTenant(c.Request.Context(), tenant.ID, func(tx *store.Tx) error {
		list, err := tx.LoadMedia(c.Request.Context(), []uuid.UUID{id})
		if err == nil {
			m = list[0]
		}
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	h := c.Writer.Header()
	// An image is never a document: nothing in it may run or load.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Disposition", "inline")
	h.Set("Content-Length", strconv.Itoa(len(m.Data)))
	c.Data(http.StatusOK, m.MimeType, m.Data)
}
