package v1_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	slackpkg "github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

func escalationsPath(tenantID uuid.UUID) string { return tenantPath(tenantID) + "/escalations" }

// seedHandoff hands a seeded conversation to people, as the workflow's
// StartEscalation activity would.
func seedHandoff(t *testing.T, s *apitest.Server, tenantID, agentID uuid.UUID) store.Handoff {
	t.Helper()
	ctx := context.Background()
	cv := s.SeedConversation(t, tenantID, agentID, 1)
	var h store.Handoff
	require.NoError(t, s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		due := time.Now().Add(15 * time.Minute)
		var err error
		h, err = tx.CreateHandoff(ctx, store.Handoff{ConversationID: cv.ID, AgentID: agentID, WorkflowID: cv.WorkflowID,
			IdempotencyKey: cv.WorkflowID + ":escalation:1", Trigger: store.TriggerUserRequest, Reason: "The user asked to talk to a person.",
			Channel: store.ChannelSlack, UserRef: "U0ALICE", FirstResponseDueAt: &due})
		return err
	}))
	return h
}

// staffEvents lists the tenant's recorded staff actions (inbox, source escalation).
func staffEvents(t *testing.T, s *apitest.Server, tenantID uuid.UUID) []escalation.StaffEvent {
	t.Helper()
	ctx := context.Background()
	var out []escalation.StaffEvent
	require.NoError(t, s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM inbox WHERE source = 'escalation'`)
		if err != nil || n == 0 {
			return err
		}
		for i := int64(0); i < n; i++ {
			var raw []byte
			if err := tx.QueryRowScan(ctx, `SELECT payload FROM inbox WHERE source = 'escalation' ORDER BY id OFFSET $1 LIMIT 1`,
				[]any{i}, &raw); err != nil {
				return err
			}
			var ev escalation.StaffEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	}))
	return out
}

// Operators list, read, answer and resolve escalations over REST: a reply
// or a resolution is recorded for the conversation's workflow (in its
// order) and answered 202; bad input is refused with what was wrong; an
// escalation that has ended refuses both with 409.
func TestEscalationsOverREST(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Help")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	ag := s.CreateAgent(t, admin.Token, ten.ID, "Ada")
	h := seedHandoff(t, s, ten.ID, ag.ID)

	var list struct {
		Escalations []map[string]any `json:"escalations"`
		Counts      map[string]int   `json:"counts"`
	}
	s.Do(t, http.MethodGet, escalationsPath(ten.ID), op.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Escalations, 1)
	require.Equal(t, map[string]int{"waiting_for_human": 1, "human": 0, "resolved": 0, "handed_back": 0}, list.Counts)
	e := list.Escalations[0]
	require.Equal(t, h.ID.String(), e["id"])
	require.Equal(t, "waiting_for_human", e["state"])
	require.Equal(t, "user_request", e["trigger"])
	require.Equal(t, "waiting", e["sla"])
	require.Nil(t, e["slack"])
	require.Contains(t, e["workflow_url"], "/workflows/")
	s.Do(t, http.MethodGet, escalationsPath(ten.ID)+"?state=open", op.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Escalations, 1)
	s.Do(t, http.MethodGet, escalationsPath(ten.ID)+"?state=resolved,handed_back", op.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Empty(t, list.Escalations)
	require.NotNil(t, list.Escalations, "an empty list, not null")
	msg := s.Do(t, http.MethodGet, escalationsPath(ten.ID)+"?state=closed", op.Token, nil).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "state")
	require.Contains(t, msg, `unknown state "closed"`)

	var one struct {
		ID       string `json:"id"`
		Messages []struct{ Role, Content string }
	}
	s.Do(t, http.MethodGet, escalationsPath(ten.ID)+"/"+h.ID.String(), op.Token, nil).Expect(t, http.StatusOK).JSON(t, &one)
	require.Equal(t, h.ID.String(), one.ID)
	require.Len(t, one.Messages, 2, "the transcript")
	require.Equal(t, "user", one.Messages[0].Role)

	// Replies: bad ones are refused, saying why; nothing is recorded for them.
	replyPath := escalationsPath(ten.ID) + "/" + h.ID.String() + "/messages"
	s.Do(t, http.MethodPost, replyPath, op.Token, map[string]string{"text": "   "}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "text")
	s.Do(t, http.MethodPost, replyPath, op.Token, map[string]string{"text": strings.Repeat("x", escalation.MaxReplyChars+1)}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "text")
	s.Do(t, http.MethodPost, replyPath, op.Token, map[string]string{"txt": "hi"}).ExpectError(t, http.StatusBadRequest, "unknown_field", "txt")
	s.Do(t, http.MethodPost, replyPath, op.Token, map[string]any{"text": 5}).ExpectError(t, http.StatusBadRequest, "wrong_type", "text")
	s.Do(t, http.MethodPost, replyPath, op.Token, nil).ExpectError(t, http.StatusBadRequest, "empty_body", "")
	require.Empty(t, staffEvents(t, s, ten.ID))

	var queued struct{ ID, EscalationID, Kind, Status string }
	s.Do(t, http.MethodPost, replyPath, op.Token, map[string]string{"text": "  Hi, I'm here to help.  "}).Expect(t, http.StatusAccepted).JSON(t, &queued)
	require.Equal(t, "reply", queued.Kind)
	require.Equal(t, "queued", queued.Status)
	s.Do(t, http.MethodPost, escalationsPath(ten.ID)+"/"+h.ID.String()+"/resolve", op.Token, nil).Expect(t, http.StatusAccepted)
	evs := staffEvents(t, s, ten.ID)
	require.Len(t, evs, 2)
	require.Equal(t, h.WorkflowID, evs[0].WorkflowID, "ordered with the conversation's messages")
	require.Equal(t, escalation.StaffAction{EventID: queued.ID, EscalationID: h.ID.String(), Kind: escalation.ActionReply,
		Text: "Hi, I'm here to help.", Author: evs[0].Action.Author, AuthorRef: "user:" + op.ID.String(),
		Source: escalation.SourceAPI, ReceivedAt: evs[0].Action.ReceivedAt}, evs[0].Action)
	require.NotEmpty(t, evs[0].Action.Author, "the user sees who answers: the caller's name")
	require.Equal(t, escalation.ActionResolve, evs[1].Action.Kind)

	// Once it has ended, both are refused.
	require.NoError(t, s.Store.WithTenant(context.Background(), ten.ID, func(tx *store.Tx) error {
		_, err := tx.EndHandoff(context.Background(), h.ID, store.EscalationResolved, "op")
		return err
	}))
	msg = s.Do(t, http.MethodPost, replyPath, op.Token, map[string]string{"text": "late"}).ExpectError(t, http.StatusConflict, "conflict", "")
	require.Contains(t, msg, "already resolved")
	s.Do(t, http.MethodPost, escalationsPath(ten.ID)+"/"+h.ID.String()+"/resolve", op.Token, nil).ExpectError(t, http.StatusConflict, "conflict", "")
	s.Do(t, http.MethodGet, escalationsPath(ten.ID)+"/"+h.ID.String(), op.Token, nil).Expect(t, http.StatusOK).JSON(t, &e)
	require.Equal(t, "resolved", e["state"])
	require.Equal(t, "met", e["sla"])
	require.Len(t, staffEvents(t, s, ten.ID), 2)
}

// Another tenant's escalations are not found, whichever way they are named.
func TestEscalationsOfAnotherTenantAreNotFound(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := s.CreateTenant(t, "A")
	b := s.CreateTenant(t, "B")
	adminA := s.NewUser(t, a.ID, store.RoleCustomerAdmin)
	adminB := s.NewUser(t, b.ID, store.RoleCustomerAdmin)
	hA := seedHandoff(t, s, a.ID, s.CreateAgent(t, adminA.Token, a.ID, "Ada").ID)
	seedHandoff(t, s, b.ID, s.CreateAgent(t, adminB.Token, b.ID, "Bea").ID)

	var list struct {
		Escalations []struct{ ID string } `json:"escalations"`
	}
	s.Do(t, http.MethodGet, escalationsPath(b.ID), adminB.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Escalations, 1)
	require.NotEqual(t, hA.ID.String(), list.Escalations[0].ID)
	for _, path := range []string{escalationsPath(a.ID), escalationsPath(a.ID) + "/" + hA.ID.String()} {
		s.Do(t, http.MethodGet, path, adminB.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	}
	// A's escalation named under B's own tenant: not found either.
	s.Do(t, http.MethodGet, escalationsPath(b.ID)+"/"+hA.ID.String(), adminB.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPost, escalationsPath(b.ID)+"/"+hA.ID.String()+"/messages", adminB.Token, map[string]string{"text": "hi"}).
		ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPost, escalationsPath(b.ID)+"/"+hA.ID.String()+"/resolve", adminB.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPost, escalationsPath(a.ID)+"/"+hA.ID.String()+"/resolve", adminB.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	require.Empty(t, staffEvents(t, s, a.ID))
	require.Empty(t, staffEvents(t, s, b.ID))
}

// Support settings are the admins': operators may neither read nor change
// them. The workspace must be connected; the SLA is checked.
func TestSupportSettings(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Support")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	ag := s.CreateAgent(t, admin.Token, ten.ID, "Ada")
	path := tenantPath(ten.ID) + "/support-settings"

	var got map[string]any
	s.Do(t, http.MethodGet, path, admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &got)
	require.Equal(t, map[string]any{"slack_team_id": "", "slack_channel_id": "", "first_response_seconds": 900.0,
		"hand_back_seconds": 7200.0, "updated_at": nil}, got, "the defaults")
	s.Do(t, http.MethodGet, path, op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodPut, path, op.Token, map[string]any{"first_response_seconds": 60, "hand_back_seconds": 600}).
		ExpectError(t, http.StatusForbidden, "forbidden", "")

	ch := s.ConnectSlack(t, admin.Token, ten.ID, ag.ID)
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"slack_channel_id": "general", "first_response_seconds": 60, "hand_back_seconds": 600}, "slack_channel_id"},
		{map[string]any{"slack_team_id": "T0NOTOURS", "first_response_seconds": 60, "hand_back_seconds": 600}, "slack_team_id"},
		{map[string]any{"first_response_seconds": 600, "hand_back_seconds": 600}, "hand_back_seconds"},
		{map[string]any{"first_response_seconds": 1, "hand_back_seconds": 600}, "first_response_seconds"},
		{map[string]any{"hand_back_seconds": 600}, "first_response_seconds"},
		{map[string]any{"first_response_seconds": 60}, "hand_back_seconds"},
	} {
		s.Do(t, http.MethodPut, path, admin.Token, c.body).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", c.field)
	}
	s.Do(t, http.MethodPut, path, admin.Token, map[string]any{"slack_team_id": ch.ExternalID, "slack_channel_id": "C0SUPPORT",
		"first_response_seconds": 60, "hand_back_seconds": 600}).Expect(t, http.StatusOK).JSON(t, &got)
	require.Equal(t, ch.ExternalID, got["slack_team_id"])
	require.Equal(t, "C0SUPPORT", got["slack_channel_id"])
	require.Equal(t, 60.0, got["first_response_seconds"])
	require.NotNil(t, got["updated_at"])
	s.Do(t, http.MethodGet, path, admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &got)
	require.Equal(t, 600.0, got["hand_back_seconds"])

	var audit struct {
		Events []struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		} `json:"events"`
	}
	s.Do(t, http.MethodGet, tenantPath(ten.ID)+"/audit?type=support.update", admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &audit)
	require.Len(t, audit.Events, 1, "refused changes are not recorded")
	require.Equal(t, "C0SUPPORT", audit.Events[0].Data["slack_channel_id"])
}

// The interactivity webhook verifies Slack's signature before it looks at
// the body; a signed click on a handoff's button is recorded once for the
// escalation's conversation, whatever Slack repeats.
func TestSlackButtonClicks(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"MAX_BODY_BYTES": "8192"}})
	ten := s.CreateTenant(t, "Buttons")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, admin.Token, ten.ID, "Ada")
	ch := s.ConnectSlack(t, admin.Token, ten.ID, ag.ID)
	h := seedHandoff(t, s, ten.ID, ag.ID)
	secret := s.App.Config.SlackSigningSecret

	post := func(body []byte, signWith string, at time.Time) *apitest.Response {
		req := fakeslack.NewInteractionRequest(signWith, body, at)
		real := s.NewRequest(t, http.MethodPost, fakeslack.InteractionsPath, "", body)
		for k, v := range req.Header {
			real.Header[k] = v
		}
		return s.Send(t, real)
	}
	click := fakeslack.ButtonClick(ch.ExternalID, "U0STAFF", "jane", "C0SUPPORT", "1700000000.000100",
		slackpkg.ActionResolve, h.ID.String(), "1700000099.000001")
	post(click, "wrong-secret", time.Now()).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	post(click, secret, time.Now().Add(-10*time.Minute)).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	unsigned := s.NewRequest(t, http.MethodPost, fakeslack.InteractionsPath, "", click)
	unsigned.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.Send(t, unsigned).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	require.Empty(t, staffEvents(t, s, ten.ID), "nothing from an unsigned click")

	post([]byte("payload=%7Bnot-json"), secret, time.Now()).ExpectError(t, http.StatusBadRequest, "malformed_interaction", "")
	post([]byte("payload="+strings.Repeat("x", 9000)), secret, time.Now()).ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large", "")
	bad := fakeslack.ButtonClick(ch.ExternalID, "U0STAFF", "jane", "C0SUPPORT", "1", slackpkg.ActionResolve, "not-a-uuid", "2")
	post(bad, secret, time.Now()).ExpectError(t, http.StatusBadRequest, "malformed_action", "")
	other := fakeslack.ButtonClick("T0NOBODY", "U0STAFF", "jane", "C0SUPPORT", "1", slackpkg.ActionResolve, h.ID.String(), "3")
	post(other, secret, time.Now()).Expect(t, http.StatusOK)

	post(click, secret, time.Now()).Expect(t, http.StatusOK)
	post(click, secret, time.Now()).Expect(t, http.StatusOK) // Slack's retry of the same click
	evs := staffEvents(t, s, ten.ID)
	require.Len(t, evs, 1)
	require.Equal(t, escalation.StaffAction{EventID: evs[0].Action.EventID, EscalationID: h.ID.String(), Kind: escalation.ActionResolve,
		Author: "jane", AuthorRef: "slack:" + ch.ExternalID + ":U0STAFF", Source: escalation.SourceSlack,
		ReceivedAt: evs[0].Action.ReceivedAt}, evs[0].Action)
	require.Equal(t, h.WorkflowID, evs[0].WorkflowID)
}
