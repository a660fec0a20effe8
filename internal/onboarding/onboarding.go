// Package onboarding runs a new organisation's setup stepper: connect a
// channel, configure the agent, send a test message. Progress is saved per
// tenant (store.Onboarding) so the stepper resumes where it was left and the
// dashboard shows it until it is complete; whether the agent has replied is
// read from the portal chat's conversations themselves. The agent is created
// and changed through the Agent Designer's service, so the stepper follows
// the designer's rules and audit trail.
package onboarding

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/store"
)

// Steps of the stepper, in order.
const (
	StepChannel = 1
	StepAgent   = 2
	StepTest    = 3
)

// Service reads and records a tenant's setup.
type Service struct {
	Store    *store.Store
	Designer *designer.Service
}

// Progress is where a tenant's setup stands.
type Progress struct {
	Agent       *store.Agent              // the agent the stepper configures; nil before one exists
	Channels    []store.ChannelConnection // the tenant's connections (tokens removed)
	Channel     string                    // how the channel step was done ("" not yet)
	ChannelDone bool                      // a channel is connected, or the operator chose the portal chat first
	AgentDone   bool                      // the agent form was saved
	TestDone    bool                      // the agent has answered in the portal chat
	Live        bool                      // an agent has answered people on a real channel
	Completed   bool                      // the operator finished, every step is done, or the organisation is live
	CompletedAt *time.Time
}

// Done counts the steps done.
func (p Progress) Done() int {
	n := 0
	for _, d := range []bool{p.ChannelDone, p.AgentDone, p.TestDone} {
		if d {
			n++
		}
	}
	return n
}

// Next is the first step not done (StepTest when all are).
func (p Progress) Next() int {
	switch {
	case !p.ChannelDone:
		return StepChannel
	case !p.AgentDone:
		return StepAgent
	}
	return StepTest
}

// Get reads the tenant's progress.
func (s *Service) Get(ctx context.Context, tenantID uuid.UUID) (Progress, error) {
	var p Progress
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		o, err := tx.GetOnboarding(ctx, tenantID)
		if err != nil {
			return err
		}
		if p.Channels, err = tx.ListChannels(ctx); err != nil {
			return err
		}
		for i := range p.Channels {
			p.Channels[i].Secret = nil
		}
		if o.AgentID != nil {
			a, err := tx.GetAgent(ctx, *o.AgentID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err == nil {
				p.Agent = &a
			}
		}
		p.Channel = o.Channel
		p.ChannelDone = o.ChannelDoneAt != nil || len(p.Channels) > 0
		if p.Channel == "" && len(p.Channels) > 0 {
			p.Channel = p.Channels[0].Kind
		}
		p.AgentDone = o.AgentDoneAt != nil && p.Agent != nil
		var agentID *uuid.UUID
		if p.Agent != nil {
			agentID = &p.Agent.ID
		}
		if p.TestDone, err = tx.HasReply(ctx, store.ChannelPortal, agentID); err != nil {
			return err
		}
		if p.Live, err = tx.HasReply(ctx, "", nil); err != nil {
			return err
		}
		p.CompletedAt = o.CompletedAt
		return nil
	})
	if err != nil {
		return Progress{}, fmt.Errorf("onboarding: progress: %w", err)
	}
	// An organisation whose agents already answer people needs no setup
	// reminders, however it got there (the Agent Designer, the REST API).
	p.Completed = p.CompletedAt != nil || p.Done() == 3 || p.Live
	return p, nil
}

// EnsureAgent returns the agent the stepper works on, choosing one first:
// the tenant's first agent, or — for a new organisation — a new agent with
// sensible defaults (named after the organisation), which the agent step
// then lets the operator change. A channel connected in the stepper routes
// to it.
func (s *Service) EnsureAgent(ctx context.Context, p authz.Principal, tenant store.Tenant) (store.Agent, error) {
	var found *store.Agent
	err := s.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		o, err := tx.GetOnboarding(ctx, tenant.ID)
		if err != nil {
			return err
		}
		if o.AgentID != nil {
			if a, err := tx.GetAgent(ctx, *o.AgentID); err == nil {
				found = &a
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		list, err := tx.ListAgents(ctx)
		if err != nil || len(list) == 0 {
			return err
		}
		found = &list[0]
		return tx.UpdateOnboarding(ctx, tenant.ID, store.OnboardingChange{AgentID: &found.ID})
	})
	if err != nil {
		return store.Agent{}, fmt.Errorf("onboarding: agent: %w", err)
	}
	if found != nil {
		return *found, nil
	}
	a, err := s.Designer.Create(ctx, p, tenant.ID, DefaultAgent(tenant.Name))
	if err != nil {
		return store.Agent{}, fmt.Errorf("onboarding: default agent: %w", err)
	}
	err = s.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		return tx.UpdateOnboarding(ctx, tenant.ID, store.OnboardingChange{AgentID: &a.ID})
	})
	return a, err
}

// DefaultAgent is the design a new organisation starts from: an assistant
// named after it, friendly and honest about what it does not know, on the
// platform's default models.
func DefaultAgent(org string) agents.Input {
	org = strings.TrimSpace(org)
	name := org + " Assistant"
	if utf8.RuneCountInString(name) > agents.MaxName {
		name = "Assistant"
	}
	role := "the assistant at " + org
	if utf8.RuneCountInString(role) > agents.MaxRole {
		role = "the assistant of this organisation"
	}
	return agents.Input{
		Name:    name,
		Role:    role,
		Persona: "Friendly, clear and concise. Admits it when it does not know something.",
		SystemPrompt: "Help people with their questions about " + org + ". Keep answers short and practical. " +
			"If you are not sure of an answer, say so and offer to put them in touch with a colleague.",
		Status: store.AgentActive,
	}
}

// ChannelConnected records the channel step done with a connection of kind.
func (s *Service) ChannelConnected(ctx context.Context, tenantID uuid.UUID, kind string) error {
	return s.update(ctx, tenantID, store.OnboardingChange{Channel: kind})
}

// ChannelConnectedTo records the channel step done with a connection of kind
// that routes to agentID, which becomes the agent the stepper configures
// next (the setup wizard connected a WhatsApp number to it).
func (s *Service) ChannelConnectedTo(ctx context.Context, tenantID uuid.UUID, kind string, agentID uuid.UUID) error {
	return s.update(ctx, tenantID, store.OnboardingChange{Channel: kind, AgentID: &agentID})
}

// TryPortalFirst records the channel step done without a connection: the
// operator tries the agent in the portal chat first and connects later.
func (s *Service) TryPortalFirst(ctx context.Context, tenantID uuid.UUID) error {
	return s.update(ctx, tenantID, store.OnboardingChange{Channel: store.ChannelPortal})
}

// AgentForm is the stepper's short agent form.
type AgentForm struct {
	Name, Role, Persona, Instructions string
	Model                             string // "" for the platform's default chain
}

// FormOf fills the form from an agent.
func FormOf(a store.Agent) AgentForm {
	f := AgentForm{Name: a.Name, Role: a.Role, Persona: a.Persona, Instructions: a.SystemPrompt}
	if len(a.Models) > 0 {
		f.Model = a.Models[0]
	}
	return f
}

// SaveAgent applies the form to the stepper's agent through the Agent
// Designer (its validation, its audit trail) and records the step done. A
// model chosen here becomes the first of the agent's chain; its fallbacks
// stay. Invalid input comes back as apperr.Fields.
func (s *Service) SaveAgent(ctx context.Context, p authz.Principal, tenant store.Tenant, f AgentForm) (store.Agent, error) {
	// Check the form before an agent is chosen (or created) for it.
	check := agents.Input{Name: f.Name, Role: f.Role, Persona: f.Persona, SystemPrompt: f.Instructions, Status: store.AgentActive}
	if m := strings.TrimSpace(f.Model); m != "" {
		check.Models = []string{m}
	}
	if err := agents.Validate(&check, s.Designer.KnownTools); err != nil {
		return store.Agent{}, renameFields(err)
	}
	cur, err := s.EnsureAgent(ctx, p, tenant)
	if err != nil {
		return store.Agent{}, err
	}
	a, err := s.Designer.Patch(ctx, p, tenant.ID, cur.ID, func(in *agents.Input) error {
		in.Name, in.Role, in.Persona, in.SystemPrompt = f.Name, f.Role, f.Persona, f.Instructions
		model := strings.TrimSpace(f.Model)
		switch {
		case model == "":
			in.Models = nil
		case len(in.Models) == 0 || in.Models[0] != model:
			rest := make([]string, 0, len(in.Models))
			for _, m := range in.Models {
				if m != model {
					rest = append(rest, m)
				}
			}
			in.Models = append([]string{model}, rest...)
		}
		return nil
	})
	if err != nil {
		return store.Agent{}, renameFields(err)
	}
	return a, s.update(ctx, tenant.ID, store.OnboardingChange{AgentID: &a.ID, AgentDone: true})
}

// renameFields names the designer's fields as the stepper's form does.
func renameFields(err error) error {
	var fields apperr.Fields
	if !errors.As(err, &fields) {
		return err
	}
	out := make(apperr.Fields, 0, len(fields))
	for _, f := range fields {
		c := *f
		switch c.Field {
		case "system_prompt":
			c.Field = "instructions"
		case "models":
			c.Field = "model"
		}
		out = append(out, &c)
	}
	return out
}

// Finish completes the setup once the agent has answered a test message.
func (s *Service) Finish(ctx context.Context, p authz.Principal, tenantID uuid.UUID) error {
	prog, err := s.Get(ctx, tenantID)
	if err != nil {
		return err
	}
	if !prog.TestDone {
		return apperr.Conflict("send a test message and wait for the reply first")
	}
	return s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := tx.UpdateOnboarding(ctx, tenantID, store.OnboardingChange{Completed: true}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "user:" + p.UserID.String(), Action: "onboarding.complete",
			TargetType: "tenant", TargetID: tenantID.String(), Data: map[string]any{"channel": prog.Channel}})
	})
}

func (s *Service) update(ctx context.Context, tenantID uuid.UUID, c store.OnboardingChange) error {
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.UpdateOnboarding(ctx, tenantID, c) })
	if err != nil {
		return fmt.Errorf("onboarding: record: %w", err)
	}
	return nil
}
