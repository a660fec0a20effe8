// Package designer carries out the Agent Designer's changes: create, edit,
// activate or deactivate, and delete an agent, each validated by the agents
// package and recorded in the audit trail in the same transaction. The
// conversation engine reads the agent at every turn, so a saved change
// applies from the next turn of each running conversation.
package designer

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
)

// Service changes a tenant's agents.
type Service struct {
	Store      *store.Store
	KnownTools []string
}

func actor(p authz.Principal) string { return "user:" + p.UserID.String() }

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("agent").Wrap(err)
	}
	return err
}

// InputOf is the designer's view of a stored agent.
func InputOf(a store.Agent) agents.Input {
	return agents.Input{Name: a.Name, Role: a.Role, Persona: a.Persona, SystemPrompt: a.SystemPrompt,
		Models: a.Models, Tools: a.Tools, Escalation: a.Escalation, Status: a.Status}
}

func apply(a *store.Agent, in agents.Input) {
	a.Name, a.Role, a.Persona, a.SystemPrompt = in.Name, in.Role, in.Persona, in.SystemPrompt
	a.Models, a.Tools, a.Escalation, a.Status = in.Models, in.Tools, in.Escalation, in.Status
}

// List returns a tenant's agents, oldest first.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID) ([]store.Agent, error) {
	var out []store.Agent
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
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
	return a, notFound(err)
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
	if err := agents.Validate(&in, s.KnownTools); err != nil {
		return store.Agent{}, err
	}
	var a store.Agent
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		cur, err := tx.GetAgent(ctx, id)
		if err != nil {
			return notFound(err)
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
			return notFound(err)
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
			return notFound(err)
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

// DisconnectChannel removes a channel connection: its workspace or number no
// longer reaches the tenant's agents. The stored token goes with it.
func (s *Service) DisconnectChannel(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID) (store.ChannelConnection, error) {
	var ch store.ChannelConnection
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if ch, err = tx.GetChannel(ctx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return apperr.NotFound("channel").Wrap(err)
			}
			return err
		}
		if err := tx.DeleteChannel(ctx, id); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "channel.disconnect", TargetType: "channel",
			TargetID: id.String(), Data: map[string]any{"kind": ch.Kind, "external_id": ch.ExternalID}})
	})
	ch.Secret = nil
	return ch, err
}
