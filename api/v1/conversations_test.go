package v1_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

type conversationJSON struct {
	ID             uuid.UUID `json:"id"`
	TenantID       uuid.UUID `json:"tenant_id"`
	AgentID        uuid.UUID `json:"agent_id"`
	Channel        string    `json:"channel"`
	ExternalKey    string    `json:"external_key"`
	WorkflowID     string    `json:"workflow_id"`
	WorkflowURL    string    `json:"workflow_url"`
	UserRef        string    `json:"user_ref"`
	Status         string    `json:"status"`
	Turns          int       `json:"turns"`
	CreatedAt      time.Time `json:"created_at"`
	LastActivityAt time.Time `json:"last_activity_at"`
}

func conversationsPath(tenantID uuid.UUID) string { return tenantPath(tenantID) + "/conversations" }

func TestConversationsAndMessages(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Talk")
	u := s.NewUser(t, ten.ID, store.RoleCustomerOperator) // reading needs no more than an operator
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, admin.Token, ten.ID, "Ada")

	var list struct{ Conversations []conversationJSON }
	s.Do(t, http.MethodGet, conversationsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.NotNil(t, list.Conversations)
	require.Empty(t, list.Conversations, "an empty list, not null")

	first := s.SeedConversation(t, ten.ID, ag.ID, 2)
	second := s.SeedConversation(t, ten.ID, ag.ID, 1)

	s.Do(t, http.MethodGet, conversationsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Conversations, 2)
	require.Equal(t, second.ID, list.Conversations[0].ID, "most recently active first")
	c := list.Conversations[1]
	require.Equal(t, first.ID, c.ID)
	require.Equal(t, ten.ID, c.TenantID)
	require.Equal(t, ag.ID, c.AgentID)
	require.Equal(t, "slack", c.Channel)
	require.Equal(t, first.ExternalKey, c.ExternalKey)
	require.Equal(t, first.WorkflowID, c.WorkflowID)
	require.Equal(t, "http://127.0.0.1:8233/namespaces/default/workflows/"+url.PathEscape(first.WorkflowID), c.WorkflowURL)
	require.Equal(t, "U0ALICE", c.UserRef)
	require.Equal(t, "active", c.Status)
	require.Equal(t, 2, c.Turns)

	// limit
	s.Do(t, http.MethodGet, conversationsPath(ten.ID)+"?limit=1", u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Conversations, 1)
	s.Do(t, http.MethodGet, conversationsPath(ten.ID)+"?limit=500", u.Token, nil).Expect(t, http.StatusOK)
	for _, bad := range []string{"0", "501", "-1", "abc", "1.5", "1e2", "%20", "99999999999999999999"} {
		msg := s.Do(t, http.MethodGet, conversationsPath(ten.ID)+"?limit="+bad, u.Token, nil).
			ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "limit")
		require.Contains(t, msg, "between 1 and 500", bad)
	}

	var one conversationJSON
	s.Do(t, http.MethodGet, conversationsPath(ten.ID)+"/"+first.ID.String(), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &one)
	require.Equal(t, c, one)

	var msgs struct {
		Messages []struct {
			ID             uuid.UUID `json:"id"`
			ConversationID uuid.UUID `json:"conversation_id"`
			Turn           int       `json:"turn"`
			Role           string    `json:"role"`
			Content        string    `json:"content"`
			Author         string    `json:"author"`
			Provider       *string   `json:"provider"`
			Model          *string   `json:"model"`
			CreatedAt      time.Time `json:"created_at"`
		}
	}
	r := s.Do(t, http.MethodGet, conversationsPath(ten.ID)+"/"+first.ID.String()+"/messages", u.Token, nil).Expect(t, http.StatusOK)
	r.JSON(t, &msgs)
	require.Len(t, msgs.Messages, 4)
	var got []string
	for _, m := range msgs.Messages {
		require.Equal(t, first.ID, m.ConversationID)
		got = append(got, m.Role+":"+m.Content)
		if m.Role == "assistant" {
			require.Equal(t, "openai", *m.Provider)
			require.Equal(t, "gpt-4o-mini", *m.Model)
		} else {
			require.Nil(t, m.Provider, "provider is absent on a user message")
			require.Equal(t, "U0ALICE", m.Author)
		}
	}
	require.Equal(t, []string{"user:question 1", "assistant:answer 1", "user:question 2", "assistant:answer 2"}, got)
	require.Equal(t, 1, msgs.Messages[0].Turn)
	require.Equal(t, 2, msgs.Messages[3].Turn)

	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		s.Do(t, http.MethodGet, conversationsPath(ten.ID)+"/"+id, u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodGet, conversationsPath(ten.ID)+"/"+id+"/messages", u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	}
	// Conversations are read-only over REST.
	s.Do(t, http.MethodDelete, conversationsPath(ten.ID)+"/"+first.ID.String(), admin.Token, nil).
		ExpectError(t, http.StatusMethodNotAllowed, "method_not_allowed", "")
	require.False(t, strings.Contains(s.Logs(), `"level":"ERROR"`), "no server errors were logged")
}
