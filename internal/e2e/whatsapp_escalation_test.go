package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
	"github.com/konstruct/konstruct/internal/testkit/platform"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
	"github.com/konstruct/konstruct/workflows"
)

// supportWorkspace connects a new fake Slack workspace to a WhatsApp
// tenant, for its support channel, and returns the tenant as the Slack
// helpers take it.
func supportWorkspace(t *testing.T, p *platform.Platform, tn platform.WhatsAppTenant) platform.Tenant {
	t.Helper()
	s := platform.Tenant{ID: tn.ID, AgentID: tn.AgentID, TeamID: "T" + strings.ToUpper(uuid.NewString()[:8]),
		BotToken: "xoxb-" + uuid.NewString(), BotUserID: "U" + strings.ToUpper(uuid.NewString()[:6])}
	p.Slack.AddWorkspace(s.TeamID, s.BotToken, s.BotUserID)
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/channels/slack", p.AdminToken,
		map[string]string{"team_id": s.TeamID, "bot_token": s.BotToken, "agent_id": tn.AgentID}, http.StatusCreated, nil)
	return s
}

// execOwner runs sql in platform scope as the owner role: tests use it to
// move time on for what Konstruct keeps in the database.
func execOwner(t *testing.T, p *platform.Platform, sql string, args ...any) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT set_config('app.platform', 'on', false)`); err != nil {
		return err
	}
	tag, err := conn.Exec(ctx, sql, args...)
	if err == nil && tag.RowsAffected() == 0 {
		return fmt.Errorf("no row changed by %s", sql)
	}
	return err
}

// inThread reports whether a message containing text was posted in the
// handoff thread ts.
func inThread(ts, text string) func([]fakeslack.Posted) bool {
	return func(all []fakeslack.Posted) bool {
		for _, m := range all {
			if m.ThreadTS == ts && strings.Contains(m.Text, text) {
				return true
			}
		}
		return false
	}
}

// An escalation from WhatsApp, end to end through the real binary: the
// user's keyword hands the conversation to people, the user is told on
// WhatsApp and staff get the handoff in the tenant's support Slack channel.
// Staff reply in the Slack thread and over REST, and the WhatsApp user
// receives both through the Graph API with the tenant's token; the user's
// messages are relayed to the thread; the model is asked nothing meanwhile —
// not even with the worker SIGKILLed and restarted in the middle, which
// loses nothing. With the user's 24-hour window closed, a staff reply goes
// out as the tenant's approved template (as Konstruct knows the window
// closed, and as Meta reports it after accepting the message), and the reply
// it stood in for is shown when the user writes again. Resolve over REST
// hands back, and the agent speaks first on WhatsApp.
func TestWhatsAppEscalation(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		switch {
		case strings.Contains(r.System, "human support colleague"):
			return fakellm.Text("The user wants a refund for order 42.")
		case strings.Contains(r.LastUserText(), "handed the conversation back to you"):
			return fakellm.Text("Glad that was sorted! Anything else I can do?")
		}
		return fakellm.Text("echo: " + r.LastUserText())
	})
	tn := p.NewWhatsAppTenant("WA Escalate", platform.AgentSpec{Name: "Wes",
		Escalation: map[string]any{"keywords": []string{"refund"}, "handoff_message": "A colleague will take it from here."}})
	support := supportWorkspace(t, p, tn)
	setSupport(t, p, support, "C0WASUP", 600, 3600)
	p.Slack.AddUser(support.TeamID, "U0STAFF", "Jane Doe")
	const user = "447700900401"
	say := func(text string) fakewhatsapp.Msg {
		t.Helper()
		m := fakewhatsapp.Text(user, text)
		m.Name = "Sam Sender"
		status, body := p.PostWhatsApp(tn.Messages(m))
		require.Equal(t, http.StatusOK, status, body)
		return m
	}
	wa := func(n int) []fakewhatsapp.Sent {
		t.Helper()
		return p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, n, replyTimeout)
	}

	say("hello")
	require.Equal(t, "echo: hello", wa(1)[0].Text)
	say("I want a refund for order 42")
	handoffMsg := wa(2)[1]
	require.Equal(t, "A colleague will take it from here.", handoffMsg.Text, "the user is told a person takes over")
	require.Equal(t, "Bearer "+tn.Token, handoffMsg.Authorization)

	// The handoff in the support channel: buttons, summary, links, and the
	// WhatsApp transcript in its thread.
	posted := p.Slack.WaitForMessages(t, "C0WASUP", 2, replyTimeout)
	handoff := posted[0]
	require.True(t, handoff.HasButton("escalation_resolve"))
	require.Contains(t, string(handoff.Blocks), "The user wants a refund for order 42.")
	require.Contains(t, string(handoff.Blocks), "whatsapp")
	require.Contains(t, string(handoff.Blocks), "/escalations/")
	require.Equal(t, handoff.TS, posted[1].ThreadTS)
	require.Contains(t, posted[1].Text, "I want a refund for order 42")
	list := escalations(t, p, support)
	require.Len(t, list, 1)
	esc := list[0]
	require.Equal(t, "waiting_for_human", esc.State)
	require.Equal(t, "keyword", esc.Trigger)
	llmBefore := p.LLM.Count()

	// The user writes: relayed to the thread, not answered.
	say("are you there?")
	p.Slack.WaitFor(t, "the user's WhatsApp message relayed", replyTimeout, inThread(handoff.TS, "are you there?"))

	// A staff reply in the Slack thread, delivered twice by Slack.
	reply, _ := support.ThreadReply("C0WASUP", "U0STAFF", "Hi, I'm Jane. Your refund is on its way.", platform.NewTS(), handoff.TS)
	postOK(t, p, reply)
	status, _ := p.PostEvent(reply, 1)
	require.Equal(t, http.StatusOK, status)
	got := wa(3)[2]
	require.Equal(t, "Jane Doe: Hi, I'm Jane. Your refund is on its way.", got.Text)
	require.Equal(t, "text", got.Type)
	require.Equal(t, "Bearer "+tn.Token, got.Authorization, "sent with the tenant's token")

	// A staff reply over REST.
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/messages", p.AdminToken,
		map[string]string{"text": "Anything else on your mind?"}, http.StatusAccepted, nil)
	got = wa(4)[3]
	require.True(t, strings.HasSuffix(got.Text, ": Anything else on your mind?"), got.Text)
	require.Equal(t, "Bearer "+tn.Token, got.Authorization)
	p.Slack.WaitFor(t, "the REST reply copied into the thread", replyTimeout, inThread(handoff.TS, "(in the portal): Anything else on your mind?"))

	// The worker dies (SIGKILL) while people own the conversation; a user
	// message and a staff reply arrive before it is back.
	p.KillWorker()
	say("one more thing: the box was damaged")
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/messages", p.AdminToken,
		map[string]string{"text": "Noted, I'll add that."}, http.StatusAccepted, nil)
	p.StartWorker()
	got = p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 5, 60*time.Second)[4]
	require.True(t, strings.HasSuffix(got.Text, ": Noted, I'll add that."), got.Text)
	p.Slack.WaitFor(t, "the message written while the worker was down relayed", replyTimeout, inThread(handoff.TS, "the box was damaged"))

	// The user's window closes (they last wrote over 24 hours ago, as far as
	// Konstruct knows): a staff reply goes out as the approved template.
	require.NoError(t, execOwner(t, p, `UPDATE whatsapp_contacts SET last_inbound_at = now() - interval '25 hours'
		WHERE tenant_id = $1 AND user_key = $2`, tn.ID, user))
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/messages", p.AdminToken,
		map[string]string{"text": "Your refund was paid out today."}, http.StatusAccepted, nil)
	got = wa(6)[5]
	require.Equal(t, "template", got.Type, "outside the window only the template may go")
	require.Equal(t, tn.Template, got.Template)
	require.Equal(t, tn.Language, got.Language)
	require.Equal(t, "Bearer "+tn.Token, got.Authorization)

	// The user answers the template ("answer this message to see it"),
	// which opens the window again: the staff reply it stood in for is
	// shown, quoting their answer, which is relayed to the thread.
	answer := say("ok, what was it?")
	got = wa(7)[6]
	require.True(t, strings.HasSuffix(got.Text, ": Your refund was paid out today."), got.Text)
	require.Equal(t, "text", got.Type)
	require.Equal(t, answer.ID, got.ReplyTo)
	p.Slack.WaitFor(t, "the answer to the template relayed", replyTimeout, inThread(handoff.TS, "ok, what was it?"))

	// Meta accepts a staff reply and reports afterwards that the window was
	// closed (131047 in a failed status): the template goes instead.
	p.WhatsApp.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131047, Async: true})
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/messages", p.AdminToken,
		map[string]string{"text": "Is there anything else?"}, http.StatusAccepted, nil)
	sent := wa(9)
	require.True(t, strings.HasSuffix(sent[7].Text, ": Is there anything else?"), sent[7].Text)
	require.Equal(t, "template", sent[8].Type, "the template after Meta's failed status")
	require.Len(t, p.LLM.Requests(), llmBefore, "no model call while people own the conversation")

	// The user writes again: the refused reply is shown, then relayed.
	say("hello? anything new?")
	got = wa(10)[9]
	require.True(t, strings.HasSuffix(got.Text, ": Is there anything else?"), got.Text)
	p.Slack.WaitFor(t, "the user's message relayed", replyTimeout, inThread(handoff.TS, "hello? anything new?"))

	// Resolve over REST: the agent has the conversation again and speaks first.
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/resolve", p.AdminToken, nil, http.StatusAccepted, nil)
	got = wa(11)[10]
	require.Equal(t, "Glad that was sorted! Anything else I can do?", got.Text, "the agent speaks first")
	reqs := p.LLM.Requests()
	var window []string
	for _, m := range reqs[len(reqs)-1].Messages {
		window = append(window, m.Content)
	}
	joined := strings.Join(window, "\n")
	require.Contains(t, joined, "Hi, I'm Jane. Your refund is on its way.", "the human part is in the agent's context")
	require.Contains(t, joined, "the box was damaged")

	// The agent answers again (the cooldown keeps the keyword quiet).
	say("thanks! a refund question for later")
	require.Equal(t, "echo: thanks! a refund question for later", wa(12)[11].Text)

	// Every message reached the user once, in order.
	sent = whatsAppBarrier(t, p, tn, user, "", 13)
	require.Len(t, sent, 13)
	final := getEscalation(t, p, support, esc.ID)
	require.Equal(t, "resolved", final.State)
	require.NotNil(t, final.FirstResponseAt)
	var staff []string
	for _, m := range final.Messages {
		if m.Role == "staff" {
			staff = append(staff, m.Content)
		}
	}
	require.Equal(t, []string{"Hi, I'm Jane. Your refund is on its way.", "Anything else on your mind?", "Noted, I'll add that.",
		"Your refund was paid out today.", "Is there anything else?"}, staff)
	require.Equal(t, []string{"escalation.started", "escalation.notified", "escalation.user_message", "escalation.staff_message",
		"escalation.staff_message", "escalation.user_message", "escalation.staff_message", "escalation.staff_message",
		"escalation.user_message", "escalation.staff_message", "escalation.user_message", "escalation.resolved", "escalation.handed_back"},
		escalationAudit(t, p, support))

	// The history replays (the held-messages change among others); with
	// KONSTRUCT_UPDATE_HISTORY=1 it is written to workflows/testdata.
	c := testkit.NewTemporal(t)
	hist := settledHistory(t, c, workflows.ConversationID(tn.ID, "whatsapp", workflows.WhatsAppKey(tn.PhoneNumberID, user)))
	require.Contains(t, string(hist), base64.StdEncoding.EncodeToString([]byte(`"held-messages"`)), "the change's version marker")
	require.NoError(t, workflows.Replay(hist))
	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", whatsAppEscalationHistoryFile)
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(hist))
	}
}

// whatsAppEscalationHistoryFile is TestWhatsAppEscalation's conversation:
// a handoff from WhatsApp, staff replies (one outside the window, one Meta
// refused afterwards), a worker killed in human mode, the held replies shown
// when the user wrote again (the "held-messages" change), resolve.
const whatsAppEscalationHistoryFile = "conversation_v4_whatsapp_escalation.json"

// escalationMediaHistoryFile is a WhatsApp conversation handed to people in
// which the user sends an image and a file too big to read: the
// "relay-media" change (workflow.GetVersion).
const escalationMediaHistoryFile = "conversation_v4_escalation_media.json"

// Images a WhatsApp user sends while people own the conversation reach
// staff: the image is downloaded and stored as for the model, the relayed
// message in the handoff thread marks it ("[image: caption]") and links to
// the portal's conversation, which shows it; a file too big to read is
// marked for staff and told to the user; no model is asked. The history
// replays; with KONSTRUCT_UPDATE_HISTORY=1 it is written to workflows/testdata.
func TestWhatsAppImagesWhilePeopleOwnTheConversation(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_MEDIA_MAX_BYTES": "65536"}})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		switch {
		case strings.Contains(r.System, "human support colleague"):
			return fakellm.Text("The user's parcel arrived damaged.")
		case strings.Contains(r.LastUserText(), "handed the conversation back to you"):
			return fakellm.Text("Glad that was sorted!")
		}
		return fakellm.Text("echo: " + r.LastUserText())
	})
	tn := p.NewWhatsAppTenant("WA Photos", platform.AgentSpec{Name: "Pia", Escalation: map[string]any{"keywords": []string{"damaged"}}})
	support := supportWorkspace(t, p, tn)
	setSupport(t, p, support, "C0PHOTOS", 600, 3600)
	const user = "447700900501"

	status, _ := p.PostWhatsApp(tn.Messages(fakewhatsapp.Text(user, "my parcel arrived damaged")))
	require.Equal(t, http.StatusOK, status)
	p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 1, replyTimeout)
	handoff := p.Slack.WaitForMessages(t, "C0PHOTOS", 2, replyTimeout)[0]
	esc := escalations(t, p, support)[0]
	llmBefore := p.LLM.Count()

	// A photo with a caption: downloaded, stored, relayed with its marker
	// and a link to the portal.
	jpeg := testimage.JPEG(32, 24, 21)
	photo := p.WhatsApp.AddMedia(tn.PhoneNumberID, "image/jpeg", jpeg)
	postWhatsAppImage(t, p, tn, photo, user, "the dented box")
	convID := onlyConversation(t, p, support)
	link := p.URL + "/t/" + tn.ID + "/conversations/" + convID
	p.Slack.WaitFor(t, "the photo relayed with its marker and a link to the portal", replyTimeout,
		inThread(handoff.TS, "the dented box\n[image: the dented box]\n<"+link+"|See what they sent in the portal>"))
	require.Equal(t, 1, p.WhatsApp.MediaCalls(fakewhatsapp.OpMediaDownload, photo.ID))
	var turn, size int
	require.NoError(t, queryRow(t, p, `SELECT turn, size_bytes FROM media WHERE tenant_id = $1 AND source_id = $2`,
		[]any{tn.ID, photo.ID}, &turn, &size))
	require.Equal(t, len(jpeg), size)
	require.Equal(t, 2, turn, "the turn it came with: the portal shows it under that message")

	// A file too big to read: staff see why, and the user is told.
	big := p.WhatsApp.AddMedia(tn.PhoneNumberID, "image/png", testimage.Sized(100<<10))
	postWhatsAppImage(t, p, tn, big, user, "")
	sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 2, replyTimeout)
	require.True(t, strings.HasPrefix(sent[1].Text, "I couldn't read the image you sent: it is larger than 64 KB (it is 10"), sent[1].Text)
	p.Slack.WaitFor(t, "the unread file marked for staff", replyTimeout,
		inThread(handoff.TS, "[file the image you sent not read: it is larger than 64 KB (it is 10"))
	require.Equal(t, llmBefore, p.LLM.Count(), "no model while people own the conversation")

	// The messages as staff and the portal read them.
	got := getEscalation(t, p, support, esc.ID)
	var users []string
	for _, m := range got.Messages {
		if m.Role == "user" {
			users = append(users, m.Content)
		}
	}
	require.Len(t, users, 3)
	require.Equal(t, []string{"my parcel arrived damaged", "the dented box\n[image: the dented box]"}, users[:2])
	require.True(t, strings.HasPrefix(users[2], "[file the image you sent not read: it is larger than 64 KB"), users[2])

	// Staff resolve; the agent follows up, with the marker in its window.
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/resolve", p.AdminToken, nil, http.StatusAccepted, nil)
	sent = p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 3, replyTimeout)
	require.Equal(t, "Glad that was sorted!", sent[2].Text)
	reqs := p.LLM.Requests()
	var window []string
	for _, m := range reqs[len(reqs)-1].Messages {
		window = append(window, m.Content)
	}
	require.Contains(t, strings.Join(window, "\n"), "[image: the dented box]")

	c := testkit.NewTemporal(t)
	id := workflows.ConversationID(tn.ID, "whatsapp", workflows.WhatsAppKey(tn.PhoneNumberID, user))
	hist := settledHistory(t, c, id)
	require.Contains(t, string(hist), "FetchMedia")
	require.Contains(t, string(hist), base64.StdEncoding.EncodeToString([]byte(`"relay-media"`)), "the change's version marker")
	require.NoError(t, workflows.Replay(hist))
	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", escalationMediaHistoryFile)
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes)", path, len(hist))
	}
}

// settledHistory fetches a workflow's history once its last workflow task
// has completed (a reply is sent from inside a task: the test may see it
// before the task is recorded).
func settledHistory(t *testing.T, c client.Client, id string) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hist, err := workflows.FetchHistory(context.Background(), c, id, "")
		require.NoError(t, err)
		s := string(hist)
		if strings.LastIndex(s, "EVENT_TYPE_WORKFLOW_TASK_COMPLETED") > strings.LastIndex(s, "EVENT_TYPE_WORKFLOW_TASK_STARTED") {
			return hist
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workflow's last task did not complete: %s", s[max(0, len(s)-3000):])
		}
		time.Sleep(200 * time.Millisecond)
	}
}
