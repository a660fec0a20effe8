package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/platform"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
	"github.com/konstruct/konstruct/workflows"
)

// sha8 names bytes by the start of their SHA-256, so a reply can prove which
// bytes the model received.
func sha8(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4])
}

// describePrefix starts the system prompt of an image-description call.
const describePrefix = "You describe images"

// seeingModel answers like a model with eyes: a description call with
// "DESC-<sha8>", a message with images with what it received, anything else
// with an echo of the user's text.
func seeingModel(r fakellm.Request) fakellm.Reply {
	imgs := r.Images()
	switch {
	case strings.HasPrefix(r.System, describePrefix) && len(imgs) == 1:
		return fakellm.Text("DESC-" + sha8(imgs[0].Data))
	case len(imgs) > 0:
		var seen []string
		for _, img := range imgs {
			seen = append(seen, img.MimeType+" "+sha8(img.Data))
		}
		return fakellm.Text(fmt.Sprintf("I see %d: %s (you said %q)", len(imgs), strings.Join(seen, ", "), r.LastUserText()))
	}
	return fakellm.Text("echo: " + r.LastUserText())
}

// shareFiles sends a DM in which user shares files with text, signed as
// Slack sends it, and returns the message's ts (its thread).
func shareFiles(t *testing.T, p *platform.Platform, tn platform.Tenant, channel, text, thread string, files ...fakeslack.File) string {
	t.Helper()
	ts := platform.NewTS()
	body := fakeslack.FileShare(tn.TeamID, channel, "U0ALICE", text, ts, thread, evID(), files, fakeslack.WithBotUserID(tn.BotUserID))
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	return ts
}

// imageRequests returns the chat requests (not description calls) that
// carried images, and the description calls, since index from.
func imageRequests(p *platform.Platform, from int) (chats, describes []fakellm.Request) {
	for _, r := range p.LLM.Requests()[from:] {
		switch {
		case strings.HasPrefix(r.System, describePrefix):
			describes = append(describes, r)
		case len(r.Images()) > 0:
			chats = append(chats, r)
		}
	}
	return chats, describes
}

// mediaRows counts a tenant's stored images, reading as the owner.
func mediaRows(t *testing.T, p *platform.Platform, tn platform.Tenant) (n int, sizes []int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT set_config('app.platform', 'on', false)`) // RLS is forced, for the owner too
	require.NoError(t, err)
	rows, err := conn.Query(ctx, `SELECT size_bytes FROM media WHERE tenant_id = $1 ORDER BY created_at`, tn.ID)
	require.NoError(t, err)
	sizes, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return len(sizes), sizes
}

// Images sent on Slack reach the agent's model as image content: a vision
// model sees the bytes (even when Slack's first download answers 503: the
// activity is retried); a chain whose first model cannot see gets the image
// described by its first model that can; a chain that cannot see at all
// tells the user and still answers the text; files that are too big, not
// images, or not downloadable are told to the user, never dropped.
func TestSlackImagesReachTheModel(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_MEDIA_MAX_BYTES": "65536"}})
	p.LLM.SetHandler(seeingModel)
	// A model that cannot see refuses images as the vendor does: were one
	// sent to it, the turn would fail instead of being answered.
	p.LLM.SetBlind("gpt-3.5-turbo")

	t.Run("a vision model receives the image, after a 503 from Slack", func(t *testing.T) {
		tn := p.NewTenant("Media vision", platform.AgentSpec{Name: "Iris"}) // openai/gpt-4o-mini sees
		png := testimage.PNG(24, 24, 1)
		f := p.Slack.AddFile(tn.TeamID, "U0ALICE", "photo.png", "image/png", png)
		p.Slack.FailNextWithStatus(fakeslack.FilesDownload, 1, http.StatusServiceUnavailable)
		before := p.LLM.Count()
		thread := shareFiles(t, p, tn, "D0VISION", "what is on this?", "", f)

		msgs := p.Slack.WaitForMessages(t, "D0VISION", 1, replyTimeout)
		require.Equal(t, `I see 1: image/png `+sha8(png)+` (you said "what is on this?")`, msgs[0].Text)
		require.Equal(t, thread, msgs[0].ThreadTS)
		require.Equal(t, 2, p.Slack.Calls(fakeslack.FilesDownload), "the 503 was retried")
		chats, describes := imageRequests(p, before)
		require.Len(t, chats, 1)
		require.Empty(t, describes, "a model that can see needs no description")
		require.Equal(t, png, chats[0].Images()[0].Data, "the very bytes the user sent")
		n, sizes := mediaRows(t, p, tn)
		require.Equal(t, 1, n)
		require.Equal(t, []int{len(png)}, sizes)
		calls := llmCalls(t, p, tn)
		require.Len(t, calls, 1)
		require.Equal(t, float64(1), calls[0].Data["images"], "the audit says the model was given an image")

		// The next turn gets the text only, the image as a marker in the
		// window; the transcript shows the marker too.
		before = p.LLM.Count()
		body := fakeslack.DirectMessage(tn.TeamID, "D0VISION", "U0ALICE", "thanks", platform.NewTS(), thread, evID(),
			fakeslack.WithBotUserID(tn.BotUserID))
		status, _ := p.PostEvent(body, 0)
		require.Equal(t, http.StatusOK, status)
		msgs = p.Slack.WaitForMessages(t, "D0VISION", 2, replyTimeout)
		require.Equal(t, "echo: thanks", msgs[1].Text)
		reqs := p.LLM.Requests()[before:]
		require.Len(t, reqs, 1)
		require.Empty(t, reqs[0].Images(), "only the current turn's images go to the model")
		require.Equal(t, "what is on this?\n[image: photo.png]", reqs[0].Messages[0].Content)
		require.Equal(t, 2, p.Slack.Calls(fakeslack.FilesDownload), "nothing downloaded again")
		require.Eventually(t, func() bool {
			recorded := messages(t, p, tn, onlyConversation(t, p, tn))
			return len(recorded) == 4 && recorded[0].Content == "what is on this?\n[image: photo.png]"
		}, 10*time.Second, 100*time.Millisecond)
	})

	t.Run("a mention in a channel with an attachment", func(t *testing.T) {
		tn := p.NewTenant("Media mention", platform.AgentSpec{Name: "Iris"})
		webp := testimage.WebP(7)
		f := p.Slack.AddFile(tn.TeamID, "U0ALICE", "sticker.webp", "image/webp", webp)
		ts := platform.NewTS()
		body := fakeslack.AppMention(tn.TeamID, "C0MENTION", "U0ALICE", "<@"+tn.BotUserID+"> is this ours?", ts, "", evID(),
			fakeslack.WithBotUserID(tn.BotUserID), fakeslack.WithFiles(f))
		status, _ := p.PostEvent(body, 0)
		require.Equal(t, http.StatusOK, status)
		msgs := p.Slack.WaitForMessages(t, "C0MENTION", 1, replyTimeout)
		require.Equal(t, `I see 1: image/webp `+sha8(webp)+` (you said "is this ours?")`, msgs[0].Text)
		require.Equal(t, ts, msgs[0].ThreadTS)
	})

	t.Run("a chain whose first model cannot see gets a description", func(t *testing.T) {
		tn := p.NewTenant("Media describe", platform.AgentSpec{Name: "Dora",
			Models: []string{"openai/gpt-3.5-turbo", "openai/gpt-4o"}})
		jpeg := testimage.JPEG(16, 16, 2)
		f := p.Slack.AddFile(tn.TeamID, "U0ALICE", "sign.jpg", "image/jpeg", jpeg)
		before := p.LLM.Count()
		shareFiles(t, p, tn, "D0DESC", "what does the sign say?", "", f)

		msgs := p.Slack.WaitForMessages(t, "D0DESC", 1, replyTimeout)
		require.Contains(t, msgs[0].Text, "echo: ")
		require.Contains(t, msgs[0].Text, "another model describes it: DESC-"+sha8(jpeg))
		require.Contains(t, msgs[0].Text, "what does the sign say?")
		chats, describes := imageRequests(p, before)
		require.Empty(t, chats, "the answering model got no image")
		require.Len(t, describes, 1)
		require.Equal(t, "gpt-4o", describes[0].Model, "described by the first model of the chain that can see")
		require.Equal(t, jpeg, describes[0].Images()[0].Data)
		var answered bool
		for _, r := range p.LLM.Requests()[before:] {
			answered = answered || r.Model == "gpt-3.5-turbo"
		}
		require.True(t, answered, "the chain's first model answered")

		// The description call is in the audit trail like any model call.
		var found bool
		for _, ev := range llmCalls(t, p, tn) {
			if ev.Data["purpose"] == "describe_image" {
				found = true
				require.Equal(t, "ok", ev.Data["outcome"])
				require.Equal(t, "gpt-4o", ev.Data["model"])
			}
		}
		require.True(t, found, "an llm.call event for the description")
	})

	t.Run("a chain that cannot see tells the user and still answers the text", func(t *testing.T) {
		tn := p.NewTenant("Media blind", platform.AgentSpec{Name: "Homer", Models: []string{"openai/gpt-3.5-turbo"}})
		f := p.Slack.AddFile(tn.TeamID, "U0ALICE", "cat.gif", "image/gif", testimage.GIF(8, 8, 3))
		thread := shareFiles(t, p, tn, "D0BLIND", "hello there", "", f)
		msgs := p.Slack.WaitForMessages(t, "D0BLIND", 2, replyTimeout)
		require.Equal(t, activities.NoVisionNotice, msgs[0].Text)
		require.Contains(t, msgs[1].Text, "echo: ")
		require.Contains(t, msgs[1].Text, "hello there")
		require.Contains(t, msgs[1].Text, "you cannot see images")

		// An image alone: the notice is the whole answer; no model is asked.
		before := p.LLM.Count()
		shareFiles(t, p, tn, "D0BLIND", "", thread, f)
		msgs = p.Slack.WaitForMessages(t, "D0BLIND", 3, replyTimeout)
		require.Equal(t, activities.NoVisionNotice, msgs[2].Text)
		require.Equal(t, thread, msgs[2].ThreadTS)
		require.Equal(t, before, p.LLM.Count())
	})

	t.Run("files too big, not images or not downloadable are told to the user", func(t *testing.T) {
		tn := p.NewTenant("Media refused", platform.AgentSpec{Name: "Rita"})
		other := p.NewTenant("Media other", platform.AgentSpec{Name: "Otto"})
		good := testimage.PNG(8, 8, 4)
		files := []fakeslack.File{
			p.Slack.AddFile(tn.TeamID, "U0ALICE", "huge.png", "image/png", testimage.Sized(100<<10)),
			p.Slack.AddFile(tn.TeamID, "U0ALICE", "invoice.pdf", "application/pdf", []byte("%PDF-1.7\n%âãÏÓ\n")),
			// Announced as a PNG; its bytes are a PDF: checked on the bytes.
			p.Slack.AddFile(tn.TeamID, "U0ALICE", "fake.png", "image/png", []byte("%PDF-1.7\n%âãÏÓ\n1 0 obj")),
			// In another workspace: this bot's token gets Slack's sign-in page.
			p.Slack.AddFile(other.TeamID, "U0ALICE", "theirs.png", "image/png", testimage.PNG(4, 4, 5)),
			p.Slack.AddFile(tn.TeamID, "U0ALICE", "ok.png", "image/png", good),
		}
		before := p.LLM.Count()
		thread := shareFiles(t, p, tn, "D0REFUSE", "here are my files", "", files...)
		msgs := p.Slack.WaitForMessages(t, "D0REFUSE", 2, replyTimeout)
		notice := msgs[0].Text
		require.Contains(t, notice, "I couldn't read huge.png: it is larger than 64 KB")
		require.Contains(t, notice, "I couldn't read invoice.pdf: it is not an image I can read (JPEG, PNG, WebP or GIF).")
		require.Contains(t, notice, "I couldn't read fake.png: it is not an image I can read")
		require.Contains(t, notice, "I couldn't read theirs.png: the channel did not let me download it")
		require.NotContains(t, notice, "ok.png")
		require.True(t, strings.HasPrefix(msgs[1].Text, `I see 1: image/png `+sha8(good)+` (you said "here are my files`), "the good one is read: %s", msgs[1].Text)
		chats, _ := imageRequests(p, before)
		require.Len(t, chats, 1)
		n, _ := mediaRows(t, p, tn)
		require.Equal(t, 1, n, "only the image that passed is stored")

		// The model's window says which files were not read.
		require.Contains(t, chats[0].LastUserText(), "[file invoice.pdf not read: it is not an image I can read")

		// A file alone that cannot be read: only the note, no model call.
		before = p.LLM.Count()
		shareFiles(t, p, tn, "D0REFUSE", "", thread, files[1])
		msgs = p.Slack.WaitForMessages(t, "D0REFUSE", 3, replyTimeout)
		require.Equal(t, "I couldn't read invoice.pdf: it is not an image I can read (JPEG, PNG, WebP or GIF).", msgs[2].Text)
		require.Equal(t, before, p.LLM.Count())
	})
}

// mediaHistoryFile is a conversation with an image (its first download
// failing with 503) and a text turn after it: the media change replays.
const mediaHistoryFile = "conversation_v4_media.json"

func TestRecordMediaConversationHistory(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(seeingModel)
	tn := p.NewTenant("History media", platform.AgentSpec{Name: "Hal"})
	png := testimage.PNG(8, 8, 6)
	f := p.Slack.AddFile(tn.TeamID, "U0ALICE", "photo.png", "image/png", png)
	p.Slack.FailNextWithStatus(fakeslack.FilesDownload, 1, http.StatusServiceUnavailable)
	thread := shareFiles(t, p, tn, "D0HIST", "what is this?", "", f)
	p.Slack.WaitForMessages(t, "D0HIST", 1, replyTimeout)
	body := fakeslack.DirectMessage(tn.TeamID, "D0HIST", "U0ALICE", "thanks", platform.NewTS(), thread, evID(),
		fakeslack.WithBotUserID(tn.BotUserID))
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "D0HIST", 2, replyTimeout)
	require.Contains(t, msgs[0].Text, "I see 1: image/png "+sha8(png))
	require.Equal(t, "echo: thanks", msgs[1].Text)

	c := testkit.NewTemporal(t)
	id := workflows.ConversationID(tn.ID, "slack", workflows.SlackKey(tn.TeamID, "D0HIST", thread))
	// The reply is posted from inside the turn's workflow task: wait until
	// that task has completed, so the history holds the whole second turn.
	var hist []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		hist, err = workflows.FetchHistory(context.Background(), c, id, "")
		require.NoError(t, err)
		s := string(hist)
		if strings.Count(s, "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED") == 2 &&
			strings.LastIndex(s, "EVENT_TYPE_WORKFLOW_TASK_COMPLETED") > strings.LastIndex(s, "EVENT_TYPE_WORKFLOW_TASK_STARTED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second turn's workflow task did not complete: %s", s[max(0, len(s)-3000):])
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Contains(t, string(hist), "FetchMedia")
	require.NoError(t, workflows.Replay(hist))
	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", mediaHistoryFile)
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(hist))
	}
}
