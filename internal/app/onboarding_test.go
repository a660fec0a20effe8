package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/store"
)

// The stepper's progress is the organisation's: each step is recorded as it
// is done, the dashboard resumes at the next step until the setup is done,
// a bad agent form changes nothing, and finishing needs the agent's reply.
func TestOnboardingProgressIsSavedAndResumes(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	admin := h.browser()
	home := admin.signUp("ada@acme.test", "Ada Lovelace", "Acme Robotics")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	progress := func() store.Onboarding {
		var o store.Onboarding
		require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
			var err error
			o, err = tx.GetOnboarding(ctx, tenant)
			return err
		}))
		return o
	}

	// The stepper starts at the channel; the dashboard says what is left.
	p := admin.get(home + "/onboarding")
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, `data-testid="step-channel"`)
	dash := admin.get(home)
	require.Contains(t, dash.Body, "0 of 3 steps done")
	require.Contains(t, dash.Body, home+"/onboarding?step=1")

	// Trying the portal first does the channel step without a channel.
	p = admin.post(home+"/onboarding/portal", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, home+"/onboarding?step=2", p.Location)
	require.Equal(t, store.ChannelPortal, progress().Channel)
	require.Contains(t, admin.get(home).Body, "1 of 3 steps done")
	require.Contains(t, admin.get(home+"/onboarding").Body, `data-testid="step-agent"`, "the stepper resumes at the agent")

	// A form without a name changes nothing — not even a default agent.
	p = admin.post(home+"/onboarding/agent", url.Values{"name": {" "}, "system_prompt": {"Help."}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "Some fields need attention")
	require.Equal(t, 0, countAgents(t, h, tenant))
	require.Nil(t, progress().AgentDoneAt)

	// The form saved: the agent exists with what was typed.
	p = admin.post(home+"/onboarding/agent", url.Values{"name": {"Nova"}, "role": {"the support assistant at Acme"},
		"persona": {"Warm."}, "system_prompt": {"Help with orders."}, "model": {"anthropic/claude-haiku-4-5"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, home+"/onboarding?step=3", p.Location)
	o := progress()
	require.NotNil(t, o.AgentDoneAt)
	require.NotNil(t, o.AgentID)
	var nova store.Agent
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		var err error
		nova, err = tx.GetAgent(ctx, *o.AgentID)
		return err
	}))
	require.Equal(t, "Nova", nova.Name)
	require.Equal(t, "the support assistant at Acme", nova.Role)
	require.Equal(t, "Help with orders.", nova.SystemPrompt)
	require.Equal(t, []string{"anthropic/claude-haiku-4-5"}, nova.Models)
	step3 := admin.get(home + "/onboarding")
	require.Contains(t, step3.Body, `data-testid="chat"`, "the stepper resumes at the test message")
	require.Contains(t, step3.Body, "/agents/"+nova.ID.String()+"/chat")

	// Finishing before the agent answered is refused.
	p = admin.post(home+"/onboarding/finish", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, admin.get(p.Location).Body, "Send a test message and wait for the reply first")
	require.Nil(t, progress().CompletedAt)

	// Once it has answered in the portal chat, the setup can finish.
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		cv, err := tx.EnsureConversation(ctx, store.Conversation{AgentID: nova.ID, Channel: store.ChannelPortal,
			ExternalKey: "portal-test", WorkflowID: "wf-portal-test", UserRef: "ada@acme.test"})
		if err != nil {
			return err
		}
		_, err = tx.AddMessage(ctx, store.Message{ConversationID: cv.ID, Turn: 1, Role: "assistant", Content: "Hi!", IdempotencyKey: "r1"})
		return err
	}))
	p = admin.post(home+"/onboarding/finish", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, home, p.Location)
	require.Contains(t, admin.get(home).Body, "Acme Robotics is set up")
	require.NotNil(t, progress().CompletedAt)
	require.NotContains(t, admin.get(home).Body, `data-testid="setup-progress"`)

	// Operators do not run the setup.
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		hash, err := auth.HashPassword("Operator-Pass-Word-9")
		if err != nil {
			return err
		}
		_, err = tx.CreateUser(ctx, store.User{Email: "otto@acme.test", PasswordHash: hash, Role: store.RoleCustomerOperator})
		return err
	}))
	op := h.browser()
	op.signIn("otto@acme.test", "Operator-Pass-Word-9")
	require.Equal(t, http.StatusForbidden, op.get(home+"/onboarding").Status)
	require.NotContains(t, op.get(home).Body, `data-testid="setup-progress"`)
}
