package v1

import (
	"encoding/json"
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
	CreatedAt    string           `json:"created_at"`
	UpdatedAt    string           `json:"updated_at"`
}

func agentOut(a store.Agent) agentJSON {
	return agentJSON{ID: a.ID.String(), TenantID: a.TenantID.String(), Name: a.Name, Role: a.Role, Persona: a.Persona,
		SystemPrompt: a.SystemPrompt, Models: nonNilSlice(a.Models), Tools: nonNilSlice(a.Tools), Escalation: a.Escalation,
		Status: a.Status, CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt)}
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
	if r.Models != nil {
		in.Models = *r.Models
	}
	if r.Tools != nil {
		in.Tools = *r.Tools
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
	var out []agentJSON
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		if err := requireTenant(c.Request.Context(), tx, tenantID); err != nil {
			return err
		}
		list, err := tx.ListAgents(c.Request.Context())
		for _, ag := range list {
			out = append(out, agentOut(ag))
		}
		return err
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"agents": nonNilSlice(out)})
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
	if err := agents.Validate(&in, a.KnownTools); err != nil {
		return err
	}
	var ag store.Agent
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		if err := requireTenant(c.Request.Context(), tx, tenantID); err != nil {
			return err
		}
		if ag, err = tx.CreateAgent(c.Request.Context(), store.Agent{Name: in.Name, Role: in.Role, Persona: in.Persona,
			SystemPrompt: in.SystemPrompt, Models: in.Models, Tools: in.Tools, Escalation: in.Escalation, Status: in.Status}); err != nil {
			return err
		}
		return tx.AppendAudit(c.Request.Context(), store.AuditEvent{Actor: actor(c), Action: "agent.create",
			TargetType: "agent", TargetID: ag.ID.String(), Data: map[string]any{"name": ag.Name}})
	})
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
	var ag store.Agent
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		ag, err = tx.GetAgent(c.Request.Context(), agentID)
		return err
	})
	if err != nil {
		return notFoundAs(err, "agent")
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
	var ag store.Agent
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		cur, err := tx.GetAgent(c.Request.Context(), agentID)
		if err != nil {
			return notFoundAs(err, "agent")
		}
		in := agents.Input{Name: cur.Name, Role: cur.Role, Persona: cur.Persona, SystemPrompt: cur.SystemPrompt,
			Models: cur.Models, Tools: cur.Tools, Escalation: cur.Escalation, Status: cur.Status}
		if err := req.apply(&in); err != nil {
			return err
		}
		if err := agents.Validate(&in, a.KnownTools); err != nil {
			return err
		}
		cur.Name, cur.Role, cur.Persona, cur.SystemPrompt = in.Name, in.Role, in.Persona, in.SystemPrompt
		cur.Models, cur.Tools, cur.Escalation, cur.Status = in.Models, in.Tools, in.Escalation, in.Status
		if ag, err = tx.UpdateAgent(c.Request.Context(), cur); err != nil {
			return err
		}
		return tx.AppendAudit(c.Request.Context(), store.AuditEvent{Actor: actor(c), Action: "agent.update",
			TargetType: "agent", TargetID: ag.ID.String()})
	})
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
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		if err := tx.DeleteAgent(c.Request.Context(), agentID); err != nil {
			if apperr.From(err).Status == http.StatusConflict {
				return apperr.Conflict("a channel still routes to this agent; connect the channel to another agent or disconnect it first").Wrap(err)
			}
			return notFoundAs(err, "agent")
		}
		return tx.AppendAudit(c.Request.Context(), store.AuditEvent{Actor: actor(c), Action: "agent.delete",
			TargetType: "agent", TargetID: agentID.String()})
	})
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
