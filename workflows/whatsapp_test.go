package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/escalation"
)

// Messages that reached the user only as WhatsApp's approved template (a
// staff reply outside the 24-hour window; a reply Meta reported failed with
// 131047, whose template Deliver says stands in for it) are shown, together
// and in order, when the user writes again — before their message is
// relayed to people or answered — and once.
func TestHeldMessagesAreShownWhenTheUserWritesAgain(t *testing.T) {
	env, f, e := escEnv(t)
	f.held = func(in activities.DeliverInput) string {
		switch {
		case in.Kind == activities.KindStaff && in.Text == "Your refund was paid.":
			return "Jane: " + in.Text // the window was closed: the template went
		case in.Kind == activities.KindTemplate && in.HeldKey != "":
			return "Jane: Anything else?" // the failed part's message
		}
		return ""
	}
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "human please")) }, time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, staffMsg("s1", "esc-1", escalation.ActionReply, "Your refund was paid."))
		env.SignalWorkflow(SignalMessage, staffMsg("s2", "esc-1", escalation.ActionReply, "Anything else?"))
		env.SignalWorkflow(SignalMessage, Inbound{EventID: "status:1", DeliveryFailure: &activities.DeliveryFailure{WAMID: "wamid.2",
			Key: "wf:3:staff:0", Turn: 3, Code: reengagementCode}})
	}, time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e2", "ok, what was it?")) }, 2*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e3", "thanks")) }, 3*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, staffMsg("s3", "esc-1", escalation.ActionResolve, "")) }, 4*time.Minute)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())

	texts := f.texts()
	require.Equal(t, []string{
		"handoff: A person will take over.",
		"staff: Your refund was paid.",
		"staff: Anything else?",
		"template: [The reply could not be delivered: more than 24 hours had passed since the user's last message, so the approved template was sent instead.]",
		"held: Jane: Your refund was paid.\n\nJane: Anything else?",
	}, texts[:5], "shown once, when the user wrote again")
	for _, d := range f.delivered {
		if d.Kind == activities.KindHeld {
			require.Equal(t, 4, d.Turn, "in the turn of the user's message")
		}
	}
	require.Len(t, e.relays, 2)
	require.Equal(t, "ok, what was it?", e.relays[0].User.Text)
	require.Equal(t, "thanks", e.relays[1].User.Text)
	for _, d := range f.delivered[5:] {
		require.NotEqual(t, activities.KindHeld, d.Kind, "nothing held twice")
	}
}
