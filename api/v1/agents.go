package v1

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

type agentJSON struct {
	ID           string           `json:"id"`
	TenantID     string           `json:"tenant_id"`
	Name         string           `json:"name"`
	Role         string           `json:"role"`
	Persona      string           `json:"persona"`
	SystemPrompt string           `json:"system_prompt"`
	Models       []string         `json:"models"`
	Tools        []string         `json:"tools"`
	Escalation   store.Escalation `json:"escalation"`
	Status       string           `json:"status"`
	KBTopK       int              `json:"kb_top_k"`
	// BusinessFunction scopes the agent on WhatsApp (required to connect a number).
	BusinessFunction string `json:"business_function"`
	CreatedAt        string `json:"created_at"`
	UpdatedAt        string `json:"updated_at"`
}

func agentOut(a store.Agent) agentJSON {
	return agentJSON{ID: a.ID.String(), TenantID: a.TenantID.String(), Name: a.Name, Role: a.Role, Persona: a.Persona,
		SystemPrompt: a.SystemPrompt, Models: nonNilSlice(a.Models), Tools: nonNilSlice(a.Tools), Escalation: a.Escalation,
		Status: a.Status, KBTopK: a.KBTopK, BusinessFunction: a.BusinessFunction, CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt)}
}

// agentRequest is shared by create (all fields) and patch (only the ones sent).
type agentRequest struct {
	Name         *string         `json:"name"`
	Role         *string         `json:"role"`
	Persona      *string         `json:"persona"`
	SystemPrompt *string         `json:"system_prompt"`
	Models       *[]string       `json:"models"`
	Tools        *[]string       `json:"tools"`
	Escalation   json.RawMessage `json:"escalation"`
	Status       *string         `json:"status"`
	KBTopK       *int            `json:"kb_top_k"`
	// BusinessFunction: "" clears it (refused while the agent answers on WhatsApp).
	BusinessFunction *string `json:"business_function"`
}

// apply overlays the request on in; escalation is schema-checked here so the
// error names the exact property.
func (r agentRequest) apply(in *agents.Input) error {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&in.Name, r.Name)
	set(&in.Role, r.Role)
	set(&in.Persona, r.Persona)
	set(&in.SystemPrompt, r.SystemPrompt)
	set(&in.Status, r.Status)
	set(&in.BusinessFunction, r.BusinessFunction)
	if r.Models != nil {
		in.Models = *r.Models
	}
	if r.Tools != nil {
		in.Tools = *r.Tools
	}
	if r.KBTopK != nil {
		if *r.KBTopK == 0 {
			return apperr.Invalid("kb_top_k", fmt.Sprintf("must be a whole number from 1 to %d", agents.MaxKBTopK))
		}
		in.KBTopK = *r.KBTopK
	}
	if r.Escalation != nil {
		e, err := agents.ParseEscalation(r.Escalation)
		if err != nil {
			return err
		}
		in.Escalation = e
	}
	return nil
}

func (a *API) listAgents(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	list, err := a.Designer.List(c.Request.Context(), tenantID)
	if err != nil {
		return err
	}
	out := make([]agentJSON, 0, len(list))
	for _, ag := range list {
		out = append(out, agentOut(ag))
	}
	c.JSON(http.StatusOK, gin.H{"agents": out})
	return nil
}

func (a *API) createAgent(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req agentRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	var in agents.Input
	if err := req.apply(&in); err != nil {
		return err
	}
	ag, err := a.Designer.Create(c.Request.Context(), principal(c), tenantID, in)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, agentOut(ag))
	return nil
}

func (a *API) getAgent(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	agentID, err := pathID(c, "agent_id", "agent")
	if err != nil {
		return err
	}
	ag, err := a.Designer.Get(c.Request.Context(), tenantID, agentID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, agentOut(ag))
	return nil
}

// updateAgent applies a partial update. Running conversations read the agent
// at each turn, so the change applies from their next turn.
func (a *API) updateAgent(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	agentID, err := pathID(c, "agent_id", "agent")
	if err != nil {
		return err
	}
	var req agentRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	ag, err := a.Designer.Patch(c.Request.Context(), principal(c), tenantID, agentID, req.apply)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, agentOut(ag))
	return nil
}

func (a *API) deleteAgent(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	agentID, err := pathID(c, "agent_id", "agent")
	if err != nil {
		return err
	}
	if err := a.Designer.Delete(c.Request.Context(), principal(c), tenantID, agentID); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
