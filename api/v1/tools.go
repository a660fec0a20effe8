package v1

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools/httptool"
)

// headerMask stands for a header value: values are secrets, sealed at rest,
// and never sent back.
const headerMask = "********"

type httpToolJSON struct {
	ID          string            `json:"id"`
	AgentID     string            `json:"agent_id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Method      string            `json:"method"`
	URLTemplate string            `json:"url_template"`
	Headers     map[string]string `json:"headers"`
	Parameters  json.RawMessage   `json:"parameters"`
	SideEffects bool              `json:"side_effects"`
	TimeoutMS   int64             `json:"timeout_ms"`
	Enabled     bool              `json:"enabled"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
}

func httpToolOut(h store.HTTPTool) httpToolJSON {
	headers := make(map[string]string, len(h.HeaderNames))
	for _, n := range h.HeaderNames {
		headers[n] = headerMask
	}
	return httpToolJSON{ID: h.ID.String(), AgentID: h.AgentID.String(), Name: h.Name, Description: h.Description,
		Method: h.Method, URLTemplate: h.URLTemplate, Headers: headers, Parameters: h.Parameters, SideEffects: h.SideEffects,
		TimeoutMS: h.Timeout.Milliseconds(), Enabled: h.Enabled, CreatedAt: ts(h.CreatedAt), UpdatedAt: ts(h.UpdatedAt)}
}

type agentToolJSON struct {
	Kind        string          `json:"kind"`
	Name        string          `json:"name"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	SideEffects bool            `json:"side_effects"`
	Enabled     bool            `json:"enabled"`
	HTTP        *httpToolJSON   `json:"http,omitempty"`
}

// httpToolRequest is shared by create (name, description, url_template
// required) and patch (only the fields sent change).
type httpToolRequest struct {
	Name        *string            `json:"name"`
	Description *string            `json:"description"`
	Method      *string            `json:"method"`
	URLTemplate *string            `json:"url_template"`
	Headers     *map[string]string `json:"headers"`
	Parameters  json.RawMessage    `json:"parameters"`
	SideEffects *bool              `json:"side_effects"`
	TimeoutMS   *int64             `json:"timeout_ms"`
	Enabled     *bool              `json:"enabled"`
}

func (r httpToolRequest) apply(d *httptool.Declaration) error {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&d.Name, r.Name)
	set(&d.Description, r.Description)
	set(&d.Method, r.Method)
	set(&d.URLTemplate, r.URLTemplate)
	if r.Headers != nil {
		d.Headers = *r.Headers
		if d.Headers == nil {
			d.Headers = map[string]string{}
		}
	}
	if r.Parameters != nil {
		d.Parameters = r.Parameters
	}
	if r.SideEffects != nil {
		d.SideEffects = *r.SideEffects
	}
	if r.TimeoutMS != nil {
		d.Timeout = time.Duration(*r.TimeoutMS) * time.Millisecond
		if *r.TimeoutMS <= 0 {
			d.Timeout = -1 // refused by validation, not taken as "default"
		}
	}
	if r.Enabled != nil {
		d.Enabled = *r.Enabled
	}
	return nil
}

// listAgentTools lists the built-in tools (enabled when named in the agent's
// tools) and the agent's HTTP tools, each with its JSON schema.
func (a *API) listAgentTools(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	agentID, err := pathID(c, "agent_id", "agent")
	if err != nil {
		return err
	}
	list, err := a.Designer.AgentTools(c.Request.Context(), tenantID, agentID)
	if err != nil {
		return err
	}
	out := make([]agentToolJSON, 0, len(list))
	for _, t := range list {
		j := agentToolJSON{Kind: t.Kind, Name: t.Name, Title: t.Title, Description: t.Description, Parameters: t.Parameters,
			SideEffects: t.SideEffects, Enabled: t.Enabled}
		if t.Kind == designer.ToolHTTP && t.HTTP != nil {
			h := httpToolOut(*t.HTTP)
			j.HTTP = &h
		}
		out = append(out, j)
	}
	c.JSON(http.StatusOK, gin.H{"tools": out})
	return nil
}

func (a *API) createHTTPTool(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	agentID, err := pathID(c, "agent_id", "agent")
	if err != nil {
		return err
	}
	var req httpToolRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	d := httptool.Declaration{Enabled: true}
	if err := req.apply(&d); err != nil {
		return err
	}
	h, err := a.Designer.CreateHTTPTool(c.Request.Context(), principal(c), tenantID, agentID, d)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, httpToolOut(h))
	return nil
}

func (a *API) getHTTPTool(c *gin.Context) error {
	tenantID, agentID, toolID, err := toolPath(c)
	if err != nil {
		return err
	}
	h, err := a.Designer.GetHTTPTool(c.Request.Context(), tenantID, agentID, toolID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, httpToolOut(h))
	return nil
}

func (a *API) updateHTTPTool(c *gin.Context) error {
	tenantID, agentID, toolID, err := toolPath(c)
	if err != nil {
		return err
	}
	var req httpToolRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	h, err := a.Designer.PatchHTTPTool(c.Request.Context(), principal(c), tenantID, agentID, toolID, req.apply)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, httpToolOut(h))
	return nil
}

func (a *API) deleteHTTPTool(c *gin.Context) error {
	tenantID, agentID, toolID, err := toolPath(c)
	if err != nil {
		return err
	}
	if err := a.Designer.DeleteHTTPTool(c.Request.Context(), principal(c), tenantID, agentID, toolID); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func toolPath(c *gin.Context) (tenantID, agentID, toolID uuid.UUID, err error) {
	if tenantID, err = pathID(c, "tenant_id", "tenant"); err != nil {
		return
	}
	if agentID, err = pathID(c, "agent_id", "agent"); err != nil {
		return
	}
	toolID, err = pathID(c, "tool_id", "tool")
	return
}
