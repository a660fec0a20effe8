package v1_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

type tenantFixture struct {
	tenant  apitest.Tenant
	admin   apitest.User
	agent   apitest.Agent
	channel apitest.Channel
	conv    store.Conversation
}

func newTenantFixture(t *testing.T, s *apitest.Server, name string) tenantFixture {
	t.Helper()
	f := tenantFixture{tenant: s.CreateTenant(t, name)}
	f.admin = s.NewUser(t, f.tenant.ID, store.RoleCustomerAdmin)
	f.agent = s.CreateAgent(t, f.admin.Token, f.tenant.ID, name+" agent")
	f.channel = s.ConnectSlack(t, f.admin.Token, f.tenant.ID, f.agent.ID)
	f.conv = s.SeedConversation(t, f.tenant.ID, f.agent.ID, 2)
	return f
}

// A customer admin of tenant A can never read or change tenant B's agents,
// channels or conversations — not under B's path, and not with B's IDs
// under A's own path. Every attempt is a 404, and B's data is unchanged.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := newTenantFixture(t, s, "Alpha")
	b := newTenantFixture(t, s, "Bravo")
	token := a.admin.Token

	bID, aID := b.tenant.ID, a.tenant.ID
	for _, base := range []uuid.UUID{bID, aID} { // B's path, then A's path with B's IDs
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodGet, agentPath(base, b.agent.ID), nil},
			{http.MethodPatch, agentPath(base, b.agent.ID), map[string]string{"name": "Pwned"}},
			{http.MethodDelete, agentPath(base, b.agent.ID), nil},
			{http.MethodDelete, channelsPath(base) + "/" + b.channel.ID.String(), nil},
			{http.MethodGet, conversationsPath(base) + "/" + b.conv.ID.String(), nil},
			{http.MethodGet, conversationsPath(base) + "/" + b.conv.ID.String() + "/messages", nil},
		} {
			s.Do(t, c.method, c.path, token, c.body).ExpectError(t, http.StatusNotFound, "not_found", "")
		}
	}
	// Whole collections and the tenant itself under B's path: 404.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, tenantPath(bID), nil},
		{http.MethodPatch, tenantPath(bID), map[string]string{"name": "Pwned"}},
		{http.MethodGet, agentsPath(bID), nil},
		{http.MethodPost, agentsPath(bID), map[string]string{"name": "Plant"}},
		{http.MethodGet, channelsPath(bID), nil},
		{http.MethodPost, slackPath(bID), map[string]string{"team_id": "T0PLANT", "bot_token": "xoxb-1", "agent_id": a.agent.ID.String()}},
		{http.MethodGet, conversationsPath(bID), nil},
	} {
		s.Do(t, c.method, c.path, token, c.body).ExpectError(t, http.StatusNotFound, "not_found", "")
	}
	// Pointing A's own Slack connection at B's agent is refused as an unknown agent.
	team, bot := s.Workspace()
	s.Do(t, http.MethodPost, slackPath(aID), token, map[string]string{"team_id": team, "bot_token": bot, "agent_id": b.agent.ID.String()}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "agent_id")
	// Taking over B's workspace is a conflict, not a re-point.
	bTeam := b.channel.ExternalID
	bBot := ""
	if w := s.Slack.Workspace(bTeam); w != nil {
		bBot = w.BotToken
	}
	s.Do(t, http.MethodPost, slackPath(aID), token, map[string]string{"team_id": bTeam, "bot_token": bBot, "agent_id": a.agent.ID.String()}).
		ExpectError(t, http.StatusConflict, "conflict", "")

	// A's own lists show only A's things.
	var agents struct{ Agents []apitest.Agent }
	s.Do(t, http.MethodGet, agentsPath(aID), token, nil).Expect(t, http.StatusOK).JSON(t, &agents)
	require.Len(t, agents.Agents, 1)
	require.Equal(t, a.agent.ID, agents.Agents[0].ID)
	var channels struct{ Channels []apitest.Channel }
	s.Do(t, http.MethodGet, channelsPath(aID), token, nil).Expect(t, http.StatusOK).JSON(t, &channels)
	require.Len(t, channels.Channels, 1)
	require.Equal(t, a.channel.ID, channels.Channels[0].ID)
	var convs struct{ Conversations []conversationJSON }
	s.Do(t, http.MethodGet, conversationsPath(aID), token, nil).Expect(t, http.StatusOK).JSON(t, &convs)
	require.Len(t, convs.Conversations, 1)
	require.Equal(t, a.conv.ID, convs.Conversations[0].ID)

	// B sees everything of its own, unchanged.
	var agentB agentJSON
	s.Do(t, http.MethodGet, agentPath(bID, b.agent.ID), b.admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &agentB)
	require.Equal(t, "Bravo agent", agentB.Name)
	s.Do(t, http.MethodGet, channelsPath(bID), b.admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &channels)
	require.Len(t, channels.Channels, 1)
	require.Equal(t, b.agent.ID, channels.Channels[0].AgentID)
	var msgs struct{ Messages []map[string]any }
	s.Do(t, http.MethodGet, conversationsPath(bID)+"/"+b.conv.ID.String()+"/messages", b.admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &msgs)
	require.Len(t, msgs.Messages, 4)
	var ten tenantJSON
	s.Do(t, http.MethodGet, tenantPath(bID), b.admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &ten)
	require.Equal(t, "Bravo", ten.Name)
}

// Unknown routes and wrong methods answer with the JSON error envelope.
func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Routes")
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/nope"},
		{http.MethodGet, "/api/v2/tenants"},
		{http.MethodPost, "/api/v1/tenants/" + ten.ID.String() + "/channels/slack/extra"},
		{http.MethodGet, "/api/v1/tenants/" + ten.ID.String() + "/agents/" + uuid.NewString() + "/extra"},
		{http.MethodGet, "/webhooks/nope"},
	} {
		for _, token := range []string{"", s.AdminToken} {
			msg := s.Do(t, c.method, c.path, token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
			require.Contains(t, msg, c.path)
		}
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodPut, "/api/v1/tenants"},
		{http.MethodDelete, "/api/v1/auth/token"},
		{http.MethodGet, "/api/v1/auth/token"},
		{http.MethodPut, "/api/v1/tenants/" + ten.ID.String() + "/agents/" + uuid.NewString()},
		{http.MethodPost, "/api/v1/tenants/" + ten.ID.String() + "/conversations"},
		{http.MethodGet, "/webhooks/slack/events"},
	} {
		msg := s.Do(t, c.method, c.path, s.AdminToken, nil).ExpectError(t, http.StatusMethodNotAllowed, "method_not_allowed", "")
		require.Contains(t, msg, c.method)
	}
	// No token on a protected route: 401 naming how to get one.
	r := s.Do(t, http.MethodGet, agentsPath(ten.ID), "", nil)
	msg := r.ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	require.Contains(t, msg, "/api/v1/auth/token")
	require.Equal(t, `Bearer realm="konstruct"`, r.Header.Get("WWW-Authenticate"))
}
