package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
	"github.com/konstruct/konstruct/internal/testkit/platform"
	"github.com/konstruct/konstruct/workflows"
)

// whatsAppHistoryFile is a WhatsApp conversation taking every path of the
// "whatsapp" change (workflow.GetVersion): a reply Meta reported failed with
// 131047 (the template goes instead), a sticker (a notice), a reaction
// (recorded only), then an ordinary turn.
const whatsAppHistoryFile = "conversation_v4_whatsapp.json"

// The conversation replays deterministically on the current code; with
// KONSTRUCT_UPDATE_HISTORY=1 its history is written to workflows/testdata,
// where TestReplayCommittedHistories keeps replaying it.
func TestRecordWhatsAppHistory(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	echo(p)
	tn := p.NewWhatsAppTenant("History", platform.AgentSpec{Name: "Hal"})
	const user = "447700900301"
	post := func(m fakewhatsapp.Msg) {
		t.Helper()
		status, _ := p.PostWhatsApp(tn.Messages(m))
		require.Equal(t, http.StatusOK, status)
	}

	p.WhatsApp.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131047, Async: true})
	post(fakewhatsapp.Text(user, "hello"))
	sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 2, replyTimeout)
	require.Equal(t, "template", sent[1].Type)
	post(fakewhatsapp.Of(user, "sticker", map[string]any{"id": "1", "mime_type": "image/webp"}))
	sent = p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 3, replyTimeout)
	require.Contains(t, sent[2].Text, "stickers")
	post(fakewhatsapp.Of(user, "reaction", map[string]any{"message_id": sent[2].WAMID, "emoji": "👍"}))
	// The barrier is the user's first message since the template: the reply
	// it stood in for is shown first.
	sent = whatsAppBarrier(t, p, tn, user, "", 5)
	require.Equal(t, "echo: hello", sent[3].Text)

	c := testkit.NewTemporal(t)
	id := workflows.ConversationID(tn.ID, "whatsapp", workflows.WhatsAppKey(tn.PhoneNumberID, user))
	hist, err := workflows.FetchHistory(context.Background(), c, id, "")
	require.NoError(t, err)
	require.NoError(t, workflows.Replay(hist))

	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", whatsAppHistoryFile)
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(hist))
	}
}
