// Package designer carries out the Agent Designer's changes, for the portal
// and the REST API alike: create, edit, activate or deactivate, and delete an
// agent, each validated by the agents package and recorded in the audit trail
// in the same transaction; and connect or disconnect the channels that route
// to the agents (channels.go). The conversation engine reads the agent at
// every turn, so a saved change applies from the next turn of each running
// conversation.
package designer

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/secrets"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
)

// Service changes a tenant's agents and channels.
type Service struct {
	Store      *store.Store
	KnownTools []string
	// Secrets seals channel tokens; Slack checks a bot token before a
	// workspace is connected. Only ConnectSlack needs them.
	Secrets *secrets.Box
	Slack   SlackVerifier
	// WhatsApp checks an access token against the Graph API before a number
	// is connected (*whatsapp.Client does). Only ConnectWhatsApp needs it.
	WhatsApp WhatsAppVerifier
	// Tools are the built-in tools, listed with their schemas (tools.go).
	Tools *tools.Registry
	// Plans refuses agents and channels over the tenant's plan
	// (*billing.Service); nil: no plan limits.
	Plans PlanChecker
}

// PlanChecker refuses, inside the creating transaction, one more agent or
// channel than the tenant's plan allows (402 plan_limit with an upgrade link).
type PlanChecker interface {
	CheckCreate(ctx context.Context, tx *store.Tx, tenantID uuid.UUID, resource string) error
}

// Resources PlanChecker counts.
const (
	PlanAgents   = "agents"
	PlanChannels = "channels"
)

// checkPlan asks Plans (when set) whether one more resource fits the plan;
// every path that creates an agent or a channel calls it in its transaction.
func (s *Service) checkPlan(ctx context.Context, tx *store.Tx, tenantID uuid.UUID, resource string) error {
	if s.Plans == nil {
		return nil
	}
	return s.Plans.CheckCreate(ctx, tx, tenantID, resource)
}

func actor(p authz.Principal) string { return "user:" + p.UserID.String() }

// notFound names a missing row for the client; other errors pass through.
func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound(what).Wrap(err)
	}
	return err
}

// InputOf is the designer's view of a stored agent.
func InputOf(a store.Agent) agents.Input {
	return agents.Input{Name: a.Name, Role: a.Role, Persona: a.Persona, SystemPrompt: a.SystemPrompt,
		Models: a.Models, Tools: a.Tools, Escalation: a.Escalation, Status: a.Status, KBTopK: a.KBTopK,
		BusinessFunction: a.BusinessFunction}
}

func apply(a *store.Agent, in agents.Input) {
	a.Name, a.Role, a.Persona, a.SystemPrompt = in.Name, in.Role, in.Persona, in.SystemPrompt
	a.Models, a.Tools, a.Escalation, a.Status = in.Models, in.Tools, in.Escalation, in.Status
	a.KBTopK = in.KBTopK
	a.BusinessFunction = in.BusinessFunction
}

// List returns a tenant's agents, oldest first; a tenant that does not exist
// is not found.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID) ([]store.Agent, error) {
	var out []store.Agent
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		out, err = tx.ListAgents(ctx)
		return err
	})
	return out, err
}

// Get returns one agent of a tenant.
func (s *Service) Get(ctx context.Context, tenantID, id uuid.UUID) (store.Agent, error) {
	var a store.Agent
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		a, err = tx.GetAgent(ctx, id)
		return err
	})
	return a, notFound(err, "agent")
}

// Create validates in and creates the agent. Invalid input comes back as
// apperr.Fields naming every bad field.
func (s *Service) Create(ctx context.Context, p authz.Principal, tenantID uuid.UUID, in agents.Input) (store.Agent, error) {
	if err := agents.Validate(&in, s.KnownTools); err != nil {
		return store.Agent{}, err
	}
	var a store.Agent
	apply(&a, in)
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		if err := s.checkPlan(ctx, tx, tenantID, PlanAgents); err != nil {
			return err
		}
		var err error
		if a, err = tx.CreateAgent(ctx, a); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "agent.create", TargetType: "agent",
			TargetID: a.ID.String(), Data: map[string]any{"name": a.Name}})
	})
	if err != nil {
		return store.Agent{}, fmt.Errorf("designer: create agent: %w", err)
	}
	return a, nil
}

// Update replaces the agent's design with in.
func (s *Service) Update(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID, in agents.Input) (store.Agent, error) {
	return s.Patch(ctx, p, tenantID, id, func(cur *agents.Input) error {
		*cur = in
		return nil
	})
}

// Patch changes part of the agent's design in one transaction: change edits
// the current design (an API PATCH overlays the fields it was sent; its error
// is returned as is), which is then validated and saved.
func (s *Service) Patch(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID, change func(*agents.Input) error) (store.Agent, error) {
	var a store.Agent
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		cur, err := tx.GetAgent(ctx, id)
		if err != nil {
			return notFound(err, "agent")
		}
		in := InputOf(cur)
		if err := change(&in); err != nil {
			return err
		}
		if err := agents.Validate(&in, s.KnownTools); err != nil {
			return err
		}
		if in.BusinessFunction == "" && cur.BusinessFunction != "" {
			if err := requireNoWhatsApp(ctx, tx, id); err != nil {
				return err
			}
		}
		apply(&cur, in)
		if a, err = tx.UpdateAgent(ctx, cur); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "agent.update", TargetType: "agent",
			TargetID: id.String(), Data: map[string]any{"name": a.Name}})
	})
	return a, err
}

// SetStatus activates or deactivates an agent. An inactive agent answers no
// new messages; its design is kept.
func (s *Service) SetStatus(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID, status string) (store.Agent, error) {
	if status != store.AgentActive && status != store.AgentInactive {
		return store.Agent{}, apperr.Fields{apperr.Invalid("status", "must be active or inactive")}
	}
	var a store.Agent
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		cur, err := tx.GetAgent(ctx, id)
		if err != nil {
			return notFound(err, "agent")
		}
		if cur.Status == status {
			a = cur
			return nil
		}
		cur.Status = status
		if a, err = tx.UpdateAgent(ctx, cur); err != nil {
			return err
		}
		action := "agent.activate"
		if status == store.AgentInactive {
			action = "agent.deactivate"
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: action, TargetType: "agent",
			TargetID: id.String(), Data: map[string]any{"name": a.Name}})
	})
	return a, err
}

// Delete removes an agent and its conversations. It refuses while a channel
// still routes to the agent.
func (s *Service) Delete(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID) error {
	return s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		cur, err := tx.GetAgent(ctx, id)
		if err != nil {
			return notFound(err, "agent")
		}
		if err := tx.DeleteAgent(ctx, id); err != nil {
			if errors.Is(err, store.ErrReferenced) {
				return apperr.Conflict("a channel still routes to this agent; disconnect the channel or connect it to another agent first").Wrap(err)
			}
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "agent.delete", TargetType: "agent",
			TargetID: id.String(), Data: map[string]any{"name": cur.Name}})
	})
}
