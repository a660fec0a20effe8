package designer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
	"github.com/konstruct/konstruct/internal/tools/httptool"
)

// Tool kinds of an agent's tool listing.
const (
	ToolBuiltin = "builtin"
	ToolHTTP    = "http"
)

// AgentTool is one tool as the Designer shows it: a built-in tool (enabled
// when named in the agent's tools) or an HTTP tool the operator declared.
type AgentTool struct {
	Kind        string
	Name        string
	Title       string
	Description string
	Parameters  json.RawMessage
	SideEffects bool
	Enabled     bool
	HTTP        *store.HTTPTool // the declaration (its Headers sealed), for ToolHTTP
}

// AgentTools lists what an agent may be given: every built-in tool, then the
// agent's declared HTTP tools, each with its schema.
func (s *Service) AgentTools(ctx context.Context, tenantID, agentID uuid.UUID) ([]AgentTool, error) {
	var ag store.Agent
	var decls []store.HTTPTool
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if ag, err = tx.GetAgent(ctx, agentID); err != nil {
			return err
		}
		decls, err = tx.ListHTTPTools(ctx, agentID)
		return err
	})
	if err != nil {
		return nil, notFound(err, "agent")
	}
	var out []AgentTool
	if s.Tools != nil {
		for _, t := range s.Tools.List() {
			enabled := slices.Contains(ag.Tools, t.Name)
			if t.Name == tools.EscalateToHumanTool {
				enabled = escalation.RulesOf(ag.Escalation).Enabled // offered with the agent's escalation
			}
			out = append(out, AgentTool{Kind: ToolBuiltin, Name: t.Name, Title: t.Title, Description: t.Description,
				Parameters: t.Parameters, SideEffects: t.SideEffects, Enabled: enabled})
		}
	}
	for i := range decls {
		d := decls[i]
		out = append(out, AgentTool{Kind: ToolHTTP, Name: d.Name, Title: d.Name, Description: d.Description,
			Parameters: d.Parameters, SideEffects: d.SideEffects, Enabled: d.Enabled, HTTP: &d})
	}
	return out, nil
}

// GetHTTPTool returns one declared tool.
func (s *Service) GetHTTPTool(ctx context.Context, tenantID, agentID, id uuid.UUID) (store.HTTPTool, error) {
	var h store.HTTPTool
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		h, err = tx.GetHTTPTool(ctx, agentID, id)
		return err
	})
	return h, notFound(err, "tool")
}

func (s *Service) reserved() []string {
	if s.Tools != nil {
		return s.Tools.Names()
	}
	return s.KnownTools
}

// sealHeaders seals the header values, bound to tenant, agent and tool.
func (s *Service) sealHeaders(h *store.HTTPTool, headers map[string]string) error {
	h.HeaderNames = make([]string, 0, len(headers))
	for k := range headers {
		h.HeaderNames = append(h.HeaderNames, k)
	}
	sort.Strings(h.HeaderNames)
	if len(headers) == 0 {
		h.Headers = nil
		return nil
	}
	if s.Secrets == nil {
		return errors.New("designer: no secret box to seal tool headers")
	}
	plain, err := json.Marshal(headers)
	if err != nil {
		return err
	}
	h.Headers, err = s.Secrets.Seal(plain, store.HTTPToolHeadersAAD(h.TenantID, h.AgentID, h.ID))
	return err
}

func applyDecl(h *store.HTTPTool, d httptool.Declaration) {
	h.Name, h.Description, h.Method, h.URLTemplate = d.Name, d.Description, d.Method, d.URLTemplate
	h.Parameters, h.SideEffects, h.Timeout, h.Enabled = d.Parameters, d.SideEffects, d.Timeout, d.Enabled
}

func declOf(h store.HTTPTool) httptool.Declaration {
	return httptool.Declaration{Name: h.Name, Description: h.Description, Method: h.Method, URLTemplate: h.URLTemplate,
		Parameters: h.Parameters, SideEffects: h.SideEffects, Timeout: h.Timeout, Enabled: h.Enabled}
}

func nameTaken(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return apperr.Fields{apperr.Invalid("name", "this agent already has a tool of that name").Wrap(err)}
	}
	return err
}

// CreateHTTPTool validates and declares an HTTP tool for an agent. Header
// values are sealed at rest and never returned.
func (s *Service) CreateHTTPTool(ctx context.Context, p authz.Principal, tenantID, agentID uuid.UUID, d httptool.Declaration) (store.HTTPTool, error) {
	if err := httptool.Validate(&d, s.reserved()); err != nil {
		return store.HTTPTool{}, err
	}
	h := store.HTTPTool{ID: uuid.New(), TenantID: tenantID, AgentID: agentID}
	applyDecl(&h, d)
	if err := s.sealHeaders(&h, d.Headers); err != nil {
		return store.HTTPTool{}, fmt.Errorf("designer: declare tool: %w", err)
	}
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if _, err := tx.GetAgent(ctx, agentID); err != nil {
			return notFound(err, "agent")
		}
		var err error
		if h, err = tx.CreateHTTPTool(ctx, h); err != nil {
			return nameTaken(err)
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "tool.declare", TargetType: "tool",
			TargetID: h.ID.String(), AgentID: &agentID, Data: map[string]any{"name": h.Name, "method": h.Method,
				"url_template": h.URLTemplate, "headers": h.HeaderNames, "side_effects": h.SideEffects}})
	})
	if err != nil {
		return store.HTTPTool{}, err
	}
	return h, nil
}

// PatchHTTPTool changes a declared tool: change gets the current declaration
// (Headers nil) and edits it; Headers left nil keep the stored values.
func (s *Service) PatchHTTPTool(ctx context.Context, p authz.Principal, tenantID, agentID, id uuid.UUID,
	change func(*httptool.Declaration) error) (store.HTTPTool, error) {
	var h store.HTTPTool
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if h, err = tx.GetHTTPTool(ctx, agentID, id); err != nil {
			return notFound(err, "tool")
		}
		d := declOf(h)
		if err := change(&d); err != nil {
			return err
		}
		if err := httptool.Validate(&d, s.reserved()); err != nil {
			return err
		}
		applyDecl(&h, d)
		if d.Headers != nil {
			if err := s.sealHeaders(&h, d.Headers); err != nil {
				return err
			}
		}
		if h, err = tx.UpdateHTTPTool(ctx, h); err != nil {
			return nameTaken(err)
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "tool.update", TargetType: "tool",
			TargetID: h.ID.String(), AgentID: &agentID, Data: map[string]any{"name": h.Name, "method": h.Method,
				"url_template": h.URLTemplate, "headers": h.HeaderNames, "side_effects": h.SideEffects, "enabled": h.Enabled}})
	})
	if err != nil {
		return store.HTTPTool{}, err
	}
	return h, nil
}

// DeleteHTTPTool removes a declared tool.
func (s *Service) DeleteHTTPTool(ctx context.Context, p authz.Principal, tenantID, agentID, id uuid.UUID) error {
	return s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		h, err := tx.GetHTTPTool(ctx, agentID, id)
		if err != nil {
			return notFound(err, "tool")
		}
		if err := tx.DeleteHTTPTool(ctx, agentID, id); err != nil {
			return notFound(err, "tool")
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "tool.delete", TargetType: "tool",
			TargetID: id.String(), AgentID: &agentID, Data: map[string]any{"name": h.Name}})
	})
}
