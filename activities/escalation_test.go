package activities

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
)

// The triggers Respond checks on the user's message: keywords only outside
// the cooldown, the user asking for a person in it too, nothing in the
// follow-up to a hand-back or in histories from before escalation.
func TestHandoffForModes(t *testing.T) {
	agent := store.Agent{Escalation: store.Escalation{Keywords: []string{"refund"}}}
	user := func(text string) RespondInput { return RespondInput{User: &UserMessage{Text: text}} }
	check := func(mode, text string) *Handoff {
		in := user(text)
		in.Escalation = mode
		return handoffFor(in, escalationRules(in, agent))
	}
	require.Equal(t, &Handoff{Trigger: store.TriggerKeyword, Reason: "The user's message contains the keyword “refund”."}, check(EscalationOn, "A REFUND please"))
	require.Nil(t, check(EscalationCooldown, "a refund please"), "keywords wait out the cooldown")
	require.Equal(t, store.TriggerUserRequest, check(EscalationCooldown, "can I talk to a human?").Trigger)
	require.Nil(t, check(EscalationOff, "can I talk to a human?"))
	require.Nil(t, check("", "can I talk to a human?"), "a history from before escalation")
	require.Nil(t, check(EscalationOn, "where is my parcel?"))
	in := RespondInput{Escalation: EscalationOn} // a later call of the turn: no user message
	require.Nil(t, handoffFor(in, escalationRules(in, agent)))

	off := false
	agent.Escalation.UserRequest = &off
	require.Nil(t, check(EscalationOn, "can I talk to a human?"), "the agent's rules say no")
	agent.Escalation = store.Escalation{}
	require.Nil(t, check(EscalationOn, "refund, human please"), "escalation is off")
	require.Zero(t, escalationRules(user("x"), store.Agent{Escalation: store.Escalation{MaxFailedTurns: 3}}).MaxFailedTurns,
		"no failed-turn rule without escalation applying")
}

func TestStaffRepliesSayWhoWrote(t *testing.T) {
	require.Equal(t, "Jane: on it", outboundText(DeliverInput{Kind: KindStaff, Author: "Jane", Text: "on it"}))
	require.Equal(t, "on it", outboundText(DeliverInput{Kind: KindReply, Author: "Jane", Text: "on it"}))
}

// Where a handoff goes: the tenant's workspace (else the conversation's),
// the agent's channel (else the tenant's); without a channel or workspace
// the escalation says what to set.
func TestSupportTarget(t *testing.T) {
	rules := escalation.Rules{}
	s := store.SupportSettings{SlackTeamID: "T0SUPPORT", SlackChannelID: "C0SUPPORT"}
	team, ch, problem := supportTarget(store.Handoff{}, rules, s, Address{TeamID: "T0CHAT"})
	require.Equal(t, []string{"T0SUPPORT", "C0SUPPORT", ""}, []string{team, ch, problem})
	team, ch, _ = supportTarget(store.Handoff{}, escalation.Rules{NotifyChannel: "C0AGENT"}, store.SupportSettings{}, Address{TeamID: "T0CHAT"})
	require.Equal(t, []string{"T0CHAT", "C0AGENT"}, []string{team, ch})
	_, _, problem = supportTarget(store.Handoff{}, rules, store.SupportSettings{}, Address{TeamID: "T0CHAT"})
	require.Contains(t, problem, "No support Slack channel is set")
	_, _, problem = supportTarget(store.Handoff{}, rules, store.SupportSettings{SlackChannelID: "C0SUPPORT"}, Address{PhoneNumberID: "123"})
	require.Contains(t, problem, "No Slack workspace is set")
	team, ch, _ = supportTarget(store.Handoff{SlackTS: "1.0", SlackTeamID: "T0OLD", SlackChannelID: "C0OLD"}, rules, s, Address{})
	require.Equal(t, []string{"T0OLD", "C0OLD"}, []string{team, ch}, "a posted handoff stays where it is")
}

func TestSlackProblemExplainsRefusals(t *testing.T) {
	refused := func(code string) error { return &slack.Error{Method: "chat.postMessage", Code: code, Permanent: true} }
	require.Contains(t, slackProblem(refused("not_in_channel"), "T1", "C1"), "not a member of the support channel C1")
	require.Contains(t, slackProblem(refused("not_in_channel"), "T1", "C1"), "/invite")
	require.Contains(t, slackProblem(refused("channel_not_found"), "T1", "C1"), "channel_not_found")
	require.Contains(t, slackProblem(refused("token_revoked"), "T1", "C1"), "reconnect")
	require.Contains(t, slackProblem(store.ErrNotFound, "T1", "C1"), "not connected")
	require.Empty(t, slackProblem(&slack.Error{Method: "chat.postMessage", StatusCode: 503}, "T1", "C1"), "a retry may help")
	require.Empty(t, slackProblem(errors.New("connection reset"), "T1", "C1"))
}

func TestContextPack(t *testing.T) {
	doc := store.Source{DocumentTitle: "Returns", Ordinal: 1, Turn: 2}
	evs := []store.AuditEvent{ // newest first, as the audit trail lists them
		{TargetID: "kb_search", Data: map[string]any{"tool": "kb_search", "outcome": "ok"}},
		{TargetID: "escalate_to_human", Data: map[string]any{"tool": "escalate_to_human", "outcome": "ok"}},
		{TargetID: "refund_order", Data: map[string]any{"tool": "refund_order", "outcome": "error"}},
		{TargetID: "kb_search", Data: map[string]any{"tool": "kb_search", "outcome": "invalid_arguments"}},
	}
	c := contextPack(evs, []store.Source{doc, doc})
	require.Equal(t, []store.HandoffTool{{Name: "kb_search", Calls: 2, Outcomes: "invalid_arguments, ok"},
		{Name: "refund_order", Calls: 1, Outcomes: "error"}}, c.Tools, "the handoff itself is not a tool tried")
	require.Equal(t, []store.HandoffSource{{Citation: "[Returns §2]", Turn: 2}}, c.Sources)
}
