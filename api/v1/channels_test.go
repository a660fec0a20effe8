package v1_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

type channelJSON struct {
	ID          uuid.UUID `json:"id"`
	TenantID    uuid.UUID `json:"tenant_id"`
	AgentID     uuid.UUID `json:"agent_id"`
	Kind        string    `json:"kind"`
	ExternalID  string    `json:"external_id"`
	DisplayName string    `json:"display_name"`
	BotUserID   string    `json:"bot_user_id"`
	Status      string    `json:"status"`
}

func channelsPath(tenantID uuid.UUID) string { return tenantPath(tenantID) + "/channels" }
func slackPath(tenantID uuid.UUID) string    { return channelsPath(tenantID) + "/slack" }

// storedSecret reads a connection's secret column as the owner role, which
// owns the tables (and is still subject to forced RLS, hence the platform scope).
func storedSecret(t *testing.T, s *apitest.Server, id uuid.UUID) []byte {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT set_config('app.platform', 'on', true)`)
	require.NoError(t, err)
	var secret []byte
	require.NoError(t, tx.QueryRow(ctx, `SELECT secret FROM channel_connections WHERE id = $1`, id).Scan(&secret))
	return secret
}

func TestConnectSlack(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Slack")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, u.Token, ten.ID, "Ada")
	team, bot := s.Workspace()

	r := s.Do(t, http.MethodPost, slackPath(ten.ID), u.Token,
		map[string]string{"team_id": " " + team + " ", "bot_token": bot, "agent_id": ag.ID.String()}).Expect(t, http.StatusCreated)
	require.NotContains(t, string(r.Body), bot, "the token never leaves the server")
	require.NotContains(t, string(r.Body), "xoxb-")
	var ch channelJSON
	r.JSON(t, &ch)
	require.Equal(t, ten.ID, ch.TenantID)
	require.Equal(t, ag.ID, ch.AgentID)
	require.Equal(t, "slack", ch.Kind)
	require.Equal(t, team, ch.ExternalID)
	require.Equal(t, team+" workspace", ch.DisplayName, "the name Slack reports")
	require.Equal(t, s.Slack.Workspace(team).BotUserID, ch.BotUserID)
	require.Equal(t, "active", ch.Status)
	require.Equal(t, 1, s.Slack.Calls("auth.test"), "the token was checked with Slack")

	// Stored encrypted: the token's bytes are not in the column, and the
	// ciphertext opens to the token only with this tenant and team.
	secret := storedSecret(t, s, ch.ID)
	require.False(t, bytes.Contains(secret, []byte(bot)))
	require.False(t, bytes.Contains(secret, []byte(strings.TrimPrefix(bot, "xoxb-"))))
	plain, err := s.App.Secrets.Open(secret, store.SecretAAD(ten.ID, store.ChannelSlack, team))
	require.NoError(t, err)
	require.Equal(t, bot, string(plain))
	_, err = s.App.Secrets.Open(secret, store.SecretAAD(uuid.New(), store.ChannelSlack, team))
	require.Error(t, err, "bound to its tenant")

	var list struct{ Channels []map[string]any }
	r = s.Do(t, http.MethodGet, channelsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK)
	require.NotContains(t, string(r.Body), bot)
	r.JSON(t, &list)
	require.Len(t, list.Channels, 1)
	require.Equal(t, ch.ID.String(), list.Channels[0]["id"])

	// Connecting the same team again re-points it (and re-keys it) in place.
	ag2 := s.CreateAgent(t, u.Token, ten.ID, "Bob")
	var again channelJSON
	s.Do(t, http.MethodPost, slackPath(ten.ID), u.Token,
		map[string]string{"team_id": team, "bot_token": bot, "agent_id": ag2.ID.String()}).Expect(t, http.StatusCreated).JSON(t, &again)
	require.Equal(t, ch.ID, again.ID)
	require.Equal(t, ag2.ID, again.AgentID)
	s.Do(t, http.MethodGet, channelsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Channels, 1)

	// Disconnect.
	r = s.Do(t, http.MethodDelete, channelsPath(ten.ID)+"/"+ch.ID.String(), u.Token, nil).Expect(t, http.StatusNoContent)
	require.Empty(t, r.Body)
	s.Do(t, http.MethodGet, channelsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Empty(t, list.Channels)
	s.Do(t, http.MethodDelete, channelsPath(ten.ID)+"/"+ch.ID.String(), u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodDelete, channelsPath(ten.ID)+"/nope", u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")

	// An operator sees nothing of channels.
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	s.Do(t, http.MethodGet, channelsPath(ten.ID), op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodPost, slackPath(ten.ID), op.Token, map[string]string{"team_id": team, "bot_token": bot, "agent_id": ag.ID.String()}).
		ExpectError(t, http.StatusForbidden, "forbidden", "")
}

func TestConnectSlackRefusals(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Refusals")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, u.Token, ten.ID, "Ada")
	other := s.CreateTenant(t, "Other")
	uo := s.NewUser(t, other.ID, store.RoleCustomerAdmin)
	otherAgent := s.CreateAgent(t, uo.Token, other.ID, "Otto")
	team, bot := s.Workspace()
	team2, bot2 := s.Workspace()

	connect := func(teamID, token, agentID string) *apitest.Response {
		return s.Do(t, http.MethodPost, slackPath(ten.ID), u.Token, map[string]string{"team_id": teamID, "bot_token": token, "agent_id": agentID})
	}
	for _, c := range []struct {
		name, team, token, agent, field, msg string
	}{
		{"missing team", "", bot, ag.ID.String(), "team_id", "Slack team ID"},
		{"malformed team", "acme", bot, ag.ID.String(), "team_id", "Slack team ID"},
		{"not a bot token", team, "xoxp-user-token", ag.ID.String(), "bot_token", "xoxb-"},
		{"long bot token", team, "xoxb-" + strings.Repeat("a", 300), ag.ID.String(), "bot_token", "xoxb-"},
		{"missing agent", team, bot, "", "agent_id", "agent"},
		{"malformed agent", team, bot, "ada", "agent_id", "agent"},
		{"unknown agent", team, bot, uuid.NewString(), "agent_id", "no such agent"},
		{"another tenant's agent", team, bot, otherAgent.ID.String(), "agent_id", "no such agent"},
		{"token Slack refuses", team, "xoxb-unknown-token", ag.ID.String(), "bot_token", "invalid_auth"},
		{"token of another team", team, bot2, ag.ID.String(), "team_id", "belongs to team " + team2},
	} {
		msg := connect(c.team, c.token, c.agent).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", c.field)
		require.Contains(t, msg, c.msg, c.name)
		require.NotContains(t, msg, bot, c.name)
	}
	s.Do(t, http.MethodPost, slackPath(ten.ID), u.Token, `{"team_id":"`+team+`","bot_token":"`+bot+`"}`).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "agent_id")
	s.Do(t, http.MethodPost, slackPath(ten.ID), u.Token, `{"team_id":"`+team+`","bot_token":"`+bot+`","agent_id":"`+ag.ID.String()+`","secret":"x"}`).
		ExpectError(t, http.StatusBadRequest, "unknown_field", "secret")

	// Slack unreachable or failing: 503, retry later; nothing stored.
	s.Slack.FailNextWithStatus("auth.test", 1, http.StatusInternalServerError)
	r := connect(team, bot, ag.ID.String())
	r.ExpectError(t, http.StatusServiceUnavailable, "unavailable", "")
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	var list struct{ Channels []map[string]any }
	s.Do(t, http.MethodGet, channelsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Empty(t, list.Channels)

	// A workspace another tenant connected first: 409, and theirs is untouched.
	s.Do(t, http.MethodPost, slackPath(other.ID), uo.Token, map[string]string{"team_id": team, "bot_token": bot, "agent_id": otherAgent.ID.String()}).
		Expect(t, http.StatusCreated)
	msg := connect(team, bot, ag.ID.String()).ExpectError(t, http.StatusConflict, "conflict", "")
	require.Contains(t, msg, "already connected")
	s.Do(t, http.MethodGet, channelsPath(other.ID), uo.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Channels, 1)
	require.Equal(t, otherAgent.ID.String(), list.Channels[0]["agent_id"])
	s.Do(t, http.MethodGet, channelsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Empty(t, list.Channels)
}
