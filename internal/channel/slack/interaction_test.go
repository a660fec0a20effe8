package slack_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

func TestParseInteractionButtonClick(t *testing.T) {
	body := fakeslack.ButtonClick("T1", "U0STAFF", "jane", "C0SUPPORT", "1700000000.000100", slack.ActionResolve,
		"0b3c8a52-8a4b-4f6e-9a55-3d7c9b0d1e2f", "1700000099.123456")
	in, err := slack.ParseInteraction(body)
	require.NoError(t, err)
	require.Equal(t, slack.InteractionBlockActions, in.Type)
	require.Equal(t, []slack.ButtonClick{{TeamID: "T1", UserID: "U0STAFF", UserName: "jane", ChannelID: "C0SUPPORT",
		MessageTS: "1700000000.000100", ActionID: slack.ActionResolve, Value: "0b3c8a52-8a4b-4f6e-9a55-3d7c9b0d1e2f",
		ActionTS: "1700000099.123456"}}, in.Clicks)

	in, err = slack.ParseInteraction([]byte("payload=" + `{"type":"view_submission"}`))
	require.NoError(t, err)
	require.Equal(t, "view_submission", in.Type)
	require.Empty(t, in.Clicks)

	for name, bad := range map[string]string{
		"no payload":   "foo=bar",
		"not JSON":     "payload=%7Bnope",
		"bad encoding": "payload=%zz",
	} {
		_, err := slack.ParseInteraction([]byte(bad))
		require.Error(t, err, name)
	}
}

// The handoff message escapes what users and models wrote, and drops its
// buttons once the escalation is over.
func TestHandoffBlocks(t *testing.T) {
	h := slack.Handoff{EscalationID: "e1", Agent: "Ada", Reason: "wants <!channel> & a refund", Summary: "Summary <@U1>",
		ByModel: true, Tools: []string{"kb_search (1 call: ok)"}, PortalURL: "https://k.example/t/1/escalations/e1"}
	text, blocks := slack.HandoffBlocks(h)
	require.Contains(t, text, "Ada handed a conversation to a person")
	raw := blocksJSON(t, blocks)
	require.Contains(t, raw, "wants &lt;!channel&gt; &amp; a refund")
	require.NotContains(t, raw, "<!channel>")
	require.Contains(t, raw, `"action_id":"escalation_resolve"`)
	require.Contains(t, raw, `"action_id":"escalation_claim"`)
	require.Contains(t, raw, "https://k.example/t/1/escalations/e1|Open in the portal")

	h.Ended = "Resolved by Jane"
	_, blocks = slack.HandoffBlocks(h)
	raw = blocksJSON(t, blocks)
	require.NotContains(t, raw, "escalation_resolve")
	require.True(t, strings.Contains(raw, "Resolved by Jane"))
}

func blocksJSON(t *testing.T, blocks slack.Blocks) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(blocks))
	return b.String()
}
