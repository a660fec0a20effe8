package v1

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/audit"
	"github.com/konstruct/konstruct/internal/store"
)

type auditEventJSON struct {
	ID             int64          `json:"id"`
	CreatedAt      string         `json:"created_at"`
	Type           string         `json:"type"`
	Actor          string         `json:"actor"`
	AgentID        *string        `json:"agent_id"`
	ConversationID *string        `json:"conversation_id"`
	WorkflowID     string         `json:"workflow_id"`
	WorkflowURL    string         `json:"workflow_url,omitempty"`
	TargetType     string         `json:"target_type"`
	TargetID       string         `json:"target_id"`
	Data           map[string]any `json:"data"`
}

func (a *API) auditEventOut(e store.AuditEvent) auditEventJSON {
	out := auditEventJSON{ID: e.ID, CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano), Type: e.Action, Actor: e.Actor,
		WorkflowID: e.WorkflowID, TargetType: e.TargetType, TargetID: e.TargetID, Data: e.Data}
	if e.AgentID != nil {
		s := e.AgentID.String()
		out.AgentID = &s
	}
	if e.ConversationID != nil {
		s := e.ConversationID.String()
		out.ConversationID = &s
	}
	if e.WorkflowID != "" {
		out.WorkflowURL = WorkflowURL(a.TemporalUIURL, a.Namespace, e.WorkflowID)
	}
	if out.Data == nil {
		out.Data = map[string]any{}
	}
	return out
}

// listAudit answers a page of the tenant's audit trail as JSON, or with
// ?format=csv the whole selection as a CSV download streamed from the
// database cursor.
func (a *API) listAudit(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	q, err := audit.ParseQuery(c.Request.URL.Query())
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	if q.Format == audit.FormatCSV {
		begun := false
		err := audit.ExportCSV(ctx, a.Store, tenantID, q.Filter, c.Writer, func() {
			begun = true
			c.Header("Content-Type", "text/csv; charset=utf-8")
			c.Header("Content-Disposition", `attachment; filename="audit-`+tenantID.String()+`.csv"`)
			c.Header("Cache-Control", "no-store")
			c.Status(http.StatusOK)
		})
		if err != nil && begun {
			// The answer has begun: the client gets a cut-short file; the log
			// gets why. Aborting the connection tells the client it is incomplete.
			a.Logger.ErrorContext(ctx, "audit export cut short", "tenant_id", tenantID, "err", err)
			panic(http.ErrAbortHandler)
		}
		return err
	}
	events, next, err := audit.List(ctx, a.Store, tenantID, q.Filter)
	if err != nil {
		return err
	}
	out := make([]auditEventJSON, 0, len(events))
	for _, e := range events {
		out = append(out, a.auditEventOut(e))
	}
	var cursor *string
	if next != "" {
		cursor = &next
	}
	c.JSON(http.StatusOK, gin.H{"events": out, "next_cursor": cursor})
	return nil
}
