package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/store"
)

// showcase fills a tenant with what a few weeks of use leaves behind: agents,
// a Slack connection, conversations with transcripts, usage, a colleague and
// a pending invitation. Used by the screenshot tour and the isolation tests.
type showcase struct {
	Agents        []store.Agent
	Channel       store.ChannelConnection
	Conversations []store.Conversation
	Operator      store.User
	Invitation    store.Invitation
	Escalation    store.Handoff // of the escalated conversation, waiting for a person
}

func seedShowcase(t testing.TB, h *harness, tenantID uuid.UUID, label string) showcase {
	t.Helper()
	ctx := context.Background()
	var s showcase
	rng := rand.New(rand.NewPCG(1, 2))
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		for _, a := range []store.Agent{
			{Name: "Sam", Role: "the customer support lead at " + label, Persona: "Calm, precise and friendly.",
				SystemPrompt: "Help customers with orders, shipping and returns. Ask for the order number first.",
				Models:       []string{"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"}, Tools: []string{"current_time"},
				Escalation: store.Escalation{Keywords: []string{"refund", "complaint"}, MaxFailedTurns: 3, HandoffMessage: "A colleague will take it from here."}},
			{Name: "Iris", Role: "IT helpdesk for " + label + " staff", Models: []string{"anthropic/claude-haiku-4-5"},
				Escalation: store.Escalation{NotifyChannel: "C0HELPDESK"}},
			{Name: "Quinn", Role: "sales assistant", Status: store.AgentInactive, Models: []string{"ollama/llama3.2"}},
		} {
			created, err := tx.CreateAgent(ctx, a)
			if err != nil {
				return err
			}
			s.Agents = append(s.Agents, created)
		}
		var err error
		if s.Channel, err = tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: s.Agents[0].ID, Kind: store.ChannelSlack,
			ExternalID: "T" + uuid.NewString()[:8], DisplayName: label + " Slack", BotUserID: "U0BOT", Secret: []byte("sealed")}); err != nil {
			return err
		}
		users := []string{"Grace Hopper", "Alan Turing", "Katherine Johnson", "Linus T.", "Margaret Hamilton", "Tim B-L"}
		statuses := []string{store.ConversationActive, store.ConversationActive, store.ConversationEscalated, store.ConversationClosed,
			store.ConversationActive, store.ConversationClosed}
		for i, who := range users {
			agent := s.Agents[i%2]
			cv, err := tx.EnsureConversation(ctx, store.Conversation{AgentID: agent.ID, Channel: store.ChannelSlack,
				ExternalKey: fmt.Sprintf("T1:C0%d:17000000%02d.000100", i, i), WorkflowID: "conv-" + uuid.NewString(), UserRef: who})
			if err != nil {
				return err
			}
			lines := []string{"Hi! Where is my order #4521? It was due yesterday.",
				"Hello " + who + "! Order #4521 left our warehouse on Monday and is with the courier. It should arrive by tomorrow noon. Would you like the tracking link?",
				"Yes please. And if it doesn't come I want a refund.",
				"Here it is: https://track.example/4521. I've noted your request; a colleague will follow up if it is late."}
			for j, line := range lines[:2+(i%3)] {
				role := "user"
				if j%2 == 1 {
					role = "assistant"
				}
				key := fmt.Sprintf("%s-%d", cv.ID, j)
				if _, err := tx.AddMessage(ctx, store.Message{ConversationID: cv.ID, Turn: j/2 + 1, Role: role, Content: line,
					Author: who, Provider: "openai", Model: "gpt-4o-mini", IdempotencyKey: key}); err != nil {
					return err
				}
				// One transaction stamps every row alike; space them as a real chat would be.
				if _, err := tx.Exec(ctx, `UPDATE messages SET created_at = created_at - make_interval(secs => $2) WHERE idempotency_key = $1`,
					key, (4-j)*40+i*97*60); err != nil {
					return err
				}
			}
			if statuses[i] != store.ConversationActive {
				if err := tx.SetConversationStatus(ctx, cv.ID, statuses[i]); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE conversations SET last_activity_at = now() - make_interval(mins => $2) WHERE id = $1`,
				cv.ID, i*97); err != nil {
				return err
			}
			s.Conversations = append(s.Conversations, cv)
			// The agent's model call of the first turn, as Respond records it.
			if err := tx.AppendAudit(ctx, store.AuditEvent{Actor: "agent:" + agent.ID.String(), Action: store.AuditLLMCall,
				AgentID: &agent.ID, ConversationID: &cv.ID, WorkflowID: cv.WorkflowID, TargetType: "model",
				TargetID: "openai/gpt-4o-mini", IdempotencyKey: store.AuditKeyLLM(cv.WorkflowID, 1, 0),
				Data: map[string]any{"outcome": "ok", "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 900 + 37*i,
					"output_tokens": 60 + 9*i, "cost_micro_usd": 180 + 11*i, "latency_ms": 420 + 35*i, "fallbacks": 0,
					"attempts": []any{map[string]any{"provider": "openai", "model": "gpt-4o-mini", "outcome": "ok", "duration_ms": 420 + 35*i}}}}); err != nil {
				return err
			}
		}
		for d := 0; d < 30; d++ {
			for k := 0; k < 1+rng.IntN(6); k++ {
				agent := s.Agents[rng.IntN(2)]
				model := []string{"gpt-4o-mini", "claude-sonnet-4-5"}[rng.IntN(2)]
				provider := map[string]string{"gpt-4o-mini": "openai", "claude-sonnet-4-5": "anthropic"}[model]
				in, out := 800+rng.IntN(3000), 100+rng.IntN(600)
				if _, err := tx.Exec(ctx, `INSERT INTO llm_usage (tenant_id, agent_id, provider, model, input_tokens, output_tokens,
					cost_micro_usd, idempotency_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() - make_interval(days => $9))`,
					tenantID, agent.ID, provider, model, in, out, int64(in*3+out*12)*(1+int64(d%3)), uuid.NewString(), d); err != nil {
					return err
				}
			}
		}
		// The escalated conversation waits for a person: its handoff, as
		// StartEscalation and NotifyStaff record it.
		esc := s.Conversations[2]
		due, back := time.Now().Add(-3*time.Minute), time.Now().Add(100*time.Minute)
		if s.Escalation, err = tx.CreateHandoff(ctx, store.Handoff{ConversationID: esc.ID, AgentID: esc.AgentID, WorkflowID: esc.WorkflowID,
			IdempotencyKey: esc.WorkflowID + ":escalation:1", Trigger: store.TriggerKeyword,
			Reason: "The user's message contains the keyword “refund”.", Channel: store.ChannelSlack, UserRef: esc.UserRef,
			FirstResponseDueAt: &due, HandBackDueAt: &back}); err != nil {
			return err
		}
		if err = tx.SetHandoffContext(ctx, s.Escalation.ID, esc.UserRef+" is waiting for order #4521 and wants a refund if it is late.",
			"model", store.HandoffContext{Tools: []store.HandoffTool{{Name: "current_time", Calls: 1, Outcomes: "ok"}}}); err != nil {
			return err
		}
		if err = tx.SetHandoffSlack(ctx, s.Escalation.ID, s.Channel.ExternalID, "C0SUPPORT", "1700000000.000200"); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `UPDATE escalations SET created_at = now() - interval '18 minutes' WHERE id = $1`, s.Escalation.ID); err != nil {
			return err
		}
		if s.Escalation, err = tx.GetHandoff(ctx, s.Escalation.ID); err != nil {
			return err
		}
		if s.Operator, err = tx.CreateUser(ctx, store.User{Email: "grace@" + label + ".test", Name: "Grace Hopper",
			PasswordHash: "x", Role: store.RoleCustomerOperator}); err != nil {
			return err
		}
		s.Invitation, err = tx.CreateInvitation(ctx, store.Invitation{Email: "linus@" + label + ".test", Role: store.RoleCustomerAdmin,
			InviterName: "Ada Lovelace", ExpiresAt: time.Now().Add(70 * time.Hour)}, []byte(uuid.NewString()[:32]))
		if err != nil {
			return err
		}
		return tx.MarkInvitationSent(ctx, s.Invitation.ID)
	}))
	return s
}

// setPassword gives a seeded user a real password.
func setPassword(t testing.TB, h *harness, userID uuid.UUID, password string) {
	t.Helper()
	hash, err := auth.HashPassword(password)
	require.NoError(t, err)
	require.NoError(t, h.app.Store.WithPlatform(context.Background(), func(tx *store.Tx) error {
		_, err := tx.UpdateUser(context.Background(), userID, store.UserPatch{PasswordHash: &hash})
		return err
	}))
}

// seedBilling subscribes the showcase tenant to Pro (as Stripe's events
// would) and sets budgets around this month's spending: the organisation's
// at about 85% with a hard stop, Sam's alert-only one well below.
func seedBilling(t testing.TB, h *harness, tenantID uuid.UUID, s showcase) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		end := time.Now().AddDate(0, 0, 18).Truncate(24 * time.Hour)
		if _, err := tx.ApplySubscription(ctx, tenantID, store.SubscriptionState{PlanID: "pro", Status: store.SubActive,
			CustomerID: "cus_showcase" + tenantID.String()[:8], SubscriptionID: "sub_showcase", CurrentPeriodEnd: &end,
			Created: time.Now().Add(-time.Hour)}); err != nil {
			return err
		}
		spent, err := tx.QueryInt(ctx, `SELECT coalesce(sum(cost_micro_usd), 0) FROM llm_usage WHERE created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`)
		if err != nil {
			return err
		}
		if err := tx.PutBudget(ctx, tenantID, nil, max(spent*100/85/10_000*10_000, 10_000), true); err != nil {
			return err
		}
		return tx.PutBudget(ctx, tenantID, &s.Agents[0].ID, 25_000_000, false)
	}))
}

// lapseSubscription cancels the showcase tenant's subscription.
func lapseSubscription(t testing.TB, h *harness, tenantID uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		_, err := tx.ApplySubscription(ctx, tenantID, store.SubscriptionState{Status: store.SubCanceled, Created: time.Now()})
		return err
	}))
}
