package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// escalationJSON is an escalation as the REST API answers it.
type escalationJSON struct {
	ID              string  `json:"id"`
	State           string  `json:"state"`
	Trigger         string  `json:"trigger"`
	Reason          string  `json:"reason"`
	Summary         string  `json:"summary"`
	SummarySource   string  `json:"summary_source"`
	NotifyError     string  `json:"notify_error"`
	ResolvedBy      string  `json:"resolved_by"`
	FirstResponseAt *string `json:"first_response_at"`
	EndedAt         *string `json:"ended_at"`
	PageCount       int     `json:"page_count"`
	SLA             string  `json:"sla"`
	Slack           *struct {
		ChannelID string `json:"channel_id"`
		TS        string `json:"ts"`
	} `json:"slack"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
		Author  string `json:"author"`
	} `json:"messages"`
}

func escalations(t *testing.T, p *platform.Platform, tn platform.Tenant) []escalationJSON {
	t.Helper()
	var out struct {
		Escalations []escalationJSON `json:"escalations"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/escalations", p.AdminToken, nil, http.StatusOK, &out)
	return out.Escalations
}

func getEscalation(t *testing.T, p *platform.Platform, tn platform.Tenant, id string) escalationJSON {
	t.Helper()
	var out escalationJSON
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/escalations/"+id, p.AdminToken, nil, http.StatusOK, &out)
	return out
}

// escalationAudit lists the tenant's escalation.* audit event types, oldest first.
func escalationAudit(t *testing.T, p *platform.Platform, tn platform.Tenant) []string {
	t.Helper()
	var out struct {
		Events []auditEvent `json:"events"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/audit?type=escalation.&limit=500", p.AdminToken, nil, http.StatusOK, &out)
	var types []string
	for i := len(out.Events) - 1; i >= 0; i-- {
		types = append(types, out.Events[i].Type)
	}
	return types
}

func setSupport(t *testing.T, p *platform.Platform, tn platform.Tenant, channel string, first, back int) {
	t.Helper()
	p.MustDo(http.MethodPut, "/api/v1/tenants/"+tn.ID+"/support-settings", p.AdminToken, map[string]any{
		"slack_team_id": tn.TeamID, "slack_channel_id": channel, "first_response_seconds": first, "hand_back_seconds": back,
	}, http.StatusOK, nil)
}

func postOK(t *testing.T, p *platform.Platform, body []byte) {
	t.Helper()
	status, resp := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status, resp)
}

func texts(msgs []fakeslack.Posted) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Text
	}
	return out
}

// The user's keyword hands the conversation to people: the user is told,
// staff get the handoff with its context pack and buttons in the support
// channel. Staff reply in the Slack thread (Slack delivering the event
// twice) and over REST, and the user receives both; the user's messages are
// relayed to the thread; the model is asked nothing meanwhile — not even
// with the worker SIGKILLed and restarted in the middle, which loses
// nothing. A signed click on Resolve hands back: the agent speaks first,
// with the human part in its context, and the cooldown keeps the keyword
// from handing over again.
func TestEscalationByKeywordStaffRepliesAndResolve(t *testing.T) {
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
	tn := p.NewTenant("Escalate", platform.AgentSpec{Name: "Esme",
		Escalation: map[string]any{"keywords": []string{"refund"}, "handoff_message": "A colleague will take it from here."}})
	setSupport(t, p, tn, "C0SUPPORT", 600, 3600)
	p.Slack.AddUser(tn.TeamID, "U0STAFF", "Jane Doe")

	root := platform.NewTS()
	body, _ := tn.Mention("C0CHAT", "U0ALICE", "hello", root, "")
	postOK(t, p, body)
	p.Slack.WaitForMessages(t, "C0CHAT", 1, replyTimeout)
	body, _ = tn.Mention("C0CHAT", "U0ALICE", "I want a refund for order 42", platform.NewTS(), root)
	postOK(t, p, body)
	chat := p.Slack.WaitForMessages(t, "C0CHAT", 2, replyTimeout)
	require.Equal(t, "A colleague will take it from here.", chat[1].Text, "the user is told a person takes over")

	// The handoff: its message with the buttons, the transcript in its thread.
	support := p.Slack.WaitForMessages(t, "C0SUPPORT", 2, replyTimeout)
	handoff := support[0]
	require.Empty(t, handoff.ThreadTS)
	require.True(t, handoff.HasButton("escalation_resolve"))
	require.True(t, handoff.HasButton("escalation_claim"))
	require.Contains(t, string(handoff.Blocks), "The user wants a refund for order 42.", "the model's summary")
	require.Contains(t, string(handoff.Blocks), "/escalations/", "a link to the portal")
	require.Contains(t, string(handoff.Blocks), "/workflows/", "a link to the workflow")
	require.Equal(t, handoff.TS, support[1].ThreadTS)
	require.Contains(t, support[1].Text, "I want a refund for order 42", "the recent transcript")

	list := escalations(t, p, tn)
	require.Len(t, list, 1)
	esc := list[0]
	require.Equal(t, "waiting_for_human", esc.State)
	require.Equal(t, "keyword", esc.Trigger)
	require.Equal(t, "model", esc.SummarySource)
	require.Equal(t, handoff.TS, esc.Slack.TS)
	llmBefore := len(p.LLM.Requests())

	// A staff member takes it with the handoff's button.
	take := fakeslack.ButtonClick(tn.TeamID, "U0STAFF", "jane", "C0SUPPORT", handoff.TS, "escalation_claim", esc.ID, platform.NewTS())
	status, respBody := p.PostInteraction(take)
	require.Equal(t, http.StatusOK, status, respBody)
	p.Slack.WaitFor(t, "the claim announced in the thread", replyTimeout, func(all []fakeslack.Posted) bool {
		for _, m := range all {
			if m.ThreadTS == handoff.TS && strings.Contains(m.Text, "*jane* took this conversation") {
				return true
			}
		}
		return false
	})
	require.Equal(t, "human", getEscalation(t, p, tn, esc.ID).State)

	// The user writes while people own the conversation: relayed, not answered.
	body, _ = tn.Mention("C0CHAT", "U0ALICE", "are you there?", platform.NewTS(), root)
	postOK(t, p, body)
	p.Slack.WaitFor(t, "the user's message relayed to the handoff thread", replyTimeout, func(all []fakeslack.Posted) bool {
		for _, m := range all {
			if m.ThreadTS == handoff.TS && strings.Contains(m.Text, "are you there?") {
				return true
			}
		}
		return false
	})

	// A staff reply in the handoff thread, delivered twice by Slack.
	reply, _ := tn.ThreadReply("C0SUPPORT", "U0STAFF", "Hi, I'm Jane. Your refund is on its way.", platform.NewTS(), handoff.TS)
	postOK(t, p, reply)
	status, _ = p.PostEvent(reply, 1)
	require.Equal(t, http.StatusOK, status)
	chat = p.Slack.WaitForMessages(t, "C0CHAT", 3, replyTimeout)
	require.Equal(t, "Jane Doe: Hi, I'm Jane. Your refund is on its way.", chat[2].Text)

	// A staff reply over REST.
	var queued struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/messages", p.AdminToken,
		map[string]string{"text": "Anything else on your mind?"}, http.StatusAccepted, &queued)
	require.Equal(t, "queued", queued.Status)
	chat = p.Slack.WaitForMessages(t, "C0CHAT", 4, replyTimeout)
	require.True(t, strings.HasSuffix(chat[3].Text, ": Anything else on your mind?"), chat[3].Text)
	p.Slack.WaitFor(t, "the portal reply copied into the thread", replyTimeout, func(all []fakeslack.Posted) bool {
		for _, m := range all {
			if m.ThreadTS == handoff.TS && strings.Contains(m.Text, "(in the portal): Anything else on your mind?") {
				return true
			}
		}
		return false
	})

	// The worker dies (SIGKILL) while people own the conversation; a user
	// message and a staff reply arrive before it is back.
	p.KillWorker()
	body, _ = tn.Mention("C0CHAT", "U0ALICE", "one more thing: the box was damaged", platform.NewTS(), root)
	postOK(t, p, body)
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/escalations/"+esc.ID+"/messages", p.AdminToken,
		map[string]string{"text": "Noted, I'll add that."}, http.StatusAccepted, nil)
	p.StartWorker()
	chat = p.Slack.WaitForMessages(t, "C0CHAT", 5, 60*time.Second)
	require.True(t, strings.HasSuffix(chat[4].Text, ": Noted, I'll add that."), chat[4].Text)
	p.Slack.WaitFor(t, "the message written while the worker was down relayed", replyTimeout, func(all []fakeslack.Posted) bool {
		for _, m := range all {
			if m.ThreadTS == handoff.TS && strings.Contains(m.Text, "the box was damaged") {
				return true
			}
		}
		return false
	})
	require.Len(t, p.LLM.Requests(), llmBefore, "no model call while people own the conversation")

	// Resolve with the handoff's button: signed like an event.
	click := fakeslack.ButtonClick(tn.TeamID, "U0STAFF", "jane", "C0SUPPORT", handoff.TS, "escalation_resolve", esc.ID, platform.NewTS())
	status, respBody = p.PostInteraction(click)
	require.Equal(t, http.StatusOK, status, respBody)
	chat = p.Slack.WaitForMessages(t, "C0CHAT", 6, replyTimeout)
	require.Equal(t, "Glad that was sorted! Anything else I can do?", chat[5].Text, "the agent speaks first")
	reqs := p.LLM.Requests()
	follow := reqs[len(reqs)-1]
	var window []string
	for _, m := range follow.Messages {
		window = append(window, m.Content)
	}
	joined := strings.Join(window, "\n")
	require.Contains(t, joined, "Hi, I'm Jane. Your refund is on its way.", "the human part is in the agent's context")
	require.Contains(t, joined, "the box was damaged")
	for _, tool := range follow.Tools {
		require.NotEqual(t, "escalate_to_human", tool.Name, "no handoff tool in the follow-up")
	}
	p.Slack.WaitFor(t, "the handoff message without its buttons", replyTimeout, func(all []fakeslack.Posted) bool {
		for _, m := range all {
			if m.TS == handoff.TS && m.Channel == "C0SUPPORT" {
				return m.Updates > 0 && !m.HasButton("escalation_resolve") && strings.Contains(string(m.Blocks), "Resolved by jane")
			}
		}
		return false
	})

	// In the cooldown, the keyword does not hand over again.
	body, _ = tn.Mention("C0CHAT", "U0ALICE", "thanks! a refund question for later", platform.NewTS(), root)
	postOK(t, p, body)
	chat = p.Slack.WaitForMessages(t, "C0CHAT", 7, replyTimeout)
	require.Equal(t, "echo: thanks! a refund question for later", chat[6].Text)

	// Every message reached the user once, in order.
	chat = p.Slack.Messages("C0CHAT")
	require.Len(t, chat, 7, "%q", texts(chat))
	got := getEscalation(t, p, tn, esc.ID)
	require.Equal(t, "resolved", got.State)
	require.Equal(t, "jane", got.ResolvedBy)
	require.NotNil(t, got.FirstResponseAt)
	require.NotNil(t, got.EndedAt)
	require.Equal(t, "met", got.SLA)
	var staff []string
	for _, m := range got.Messages {
		if m.Role == "staff" {
			staff = append(staff, m.Author+": "+m.Content)
		}
	}
	require.Len(t, staff, 3, "%q", staff)
	require.Equal(t, "Jane Doe: Hi, I'm Jane. Your refund is on its way.", staff[0])
	require.Equal(t, []string{"escalation.started", "escalation.notified", "escalation.claimed", "escalation.user_message", "escalation.staff_message",
		"escalation.staff_message", "escalation.user_message", "escalation.staff_message", "escalation.resolved",
		"escalation.handed_back"}, escalationAudit(t, p, tn))
}

// The model hands over with escalate_to_human. Nobody answers: the
// first-response timer fires while the worker is down, and the restarted
// worker pages staff again (in the thread and the channel); at the
// hand-back time the user is told and the agent has the conversation again.
func TestEscalationByToolCallRepagesAfterRestartAndHandsBack(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if strings.Contains(r.System, "human support colleague") {
			return fakellm.Text("A parcel arrived broken.")
		}
		offered := false
		for _, tool := range r.Tools {
			offered = offered || tool.Name == "escalate_to_human"
		}
		if offered && r.Messages[len(r.Messages)-1].Role == "user" {
			return fakellm.CallTools(fakellm.ToolCall{Name: "escalate_to_human", Arguments: []byte(`{"reason":"a damaged parcel needs a refund decision"}`)})
		}
		return fakellm.Text("echo: " + r.LastUserText())
	})
	tn := p.NewTenant("Tool", platform.AgentSpec{Name: "Tobi", Escalation: map[string]any{"enabled": true}})
	setSupport(t, p, tn, "C0SUPPORT", 8, 30)

	root := platform.NewTS()
	body, _ := tn.Mention("C0CHAT", "U0BOB", "my parcel arrived broken", root, "")
	postOK(t, p, body)
	chat := p.Slack.WaitForMessages(t, "C0CHAT", 1, replyTimeout)
	require.Contains(t, chat[0].Text, "handing this conversation to a person", "the default handoff message")
	support := p.Slack.WaitForMessages(t, "C0SUPPORT", 2, replyTimeout)
	handoff := support[0]
	esc := escalations(t, p, tn)[0]
	require.Equal(t, "tool", esc.Trigger)
	require.Contains(t, esc.Reason, "a damaged parcel needs a refund decision")

	// The worker is down when the first-response time passes.
	p.KillWorker()
	time.Sleep(10 * time.Second)
	p.StartWorker()
	page := p.Slack.WaitForThread(t, "C0SUPPORT", handoff.TS, 3, 60*time.Second)[2]
	require.Contains(t, page.Text, "<!here>")
	require.Contains(t, page.Text, "Nobody has answered")
	require.True(t, page.Broadcast, "the page is also sent to the channel")

	// Nobody answers until the hand-back time: the user is told.
	chat = p.Slack.WaitForMessages(t, "C0CHAT", 2, 60*time.Second)
	require.Contains(t, chat[1].Text, "nobody from the team was able to answer in time")
	got := getEscalation(t, p, tn, esc.ID)
	require.Equal(t, "handed_back", got.State)
	require.Equal(t, 1, got.PageCount)
	require.Equal(t, "missed", got.SLA)
	p.Slack.WaitFor(t, "the handoff message says it was handed back", replyTimeout, func(all []fakeslack.Posted) bool {
		for _, m := range all {
			if m.TS == handoff.TS && m.Channel == "C0SUPPORT" {
				return !m.HasButton("escalation_resolve") && strings.Contains(string(m.Blocks), "handed back to the assistant")
			}
		}
		return false
	})
	require.Equal(t, []string{"escalation.started", "escalation.notified", "escalation.paged", "escalation.handed_back"},
		escalationAudit(t, p, tn))
	require.Len(t, p.Slack.Messages("C0CHAT"), 2, "the user heard the handoff and the hand-back, nothing else")
}

// The bot is not in the support channel: Slack refuses the handoff with
// not_in_channel, and the escalation says so in the portal's queue and the
// API, while the user is still told a person takes over.
func TestHandoffToAChannelWithoutTheBotSaysSo(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply { return fakellm.Fail(http.StatusServiceUnavailable, "down") })
	tn := p.NewTenant("NotIn", platform.AgentSpec{Name: "Nia", Escalation: map[string]any{"enabled": true}})
	setSupport(t, p, tn, "C0PRIVATE", 600, 3600)
	p.Slack.RemoveBot("C0PRIVATE", true)

	body, _ := tn.Mention("C0CHAT", "U0CAROL", "can I talk to a human please", platform.NewTS(), "")
	postOK(t, p, body)
	chat := p.Slack.WaitForMessages(t, "C0CHAT", 1, replyTimeout)
	require.Contains(t, chat[0].Text, "handing this conversation to a person")
	require.Eventually(t, func() bool {
		list := escalations(t, p, tn)
		return len(list) == 1 && list[0].NotifyError != ""
	}, replyTimeout, 200*time.Millisecond)
	esc := escalations(t, p, tn)[0]
	require.Equal(t, "user_request", esc.Trigger)
	require.Contains(t, esc.NotifyError, "not a member of the support channel C0PRIVATE")
	require.Contains(t, esc.NotifyError, "not_in_channel")
	require.Nil(t, esc.Slack)
	require.Equal(t, "transcript", esc.SummarySource, "the model is down: the last messages stand in for the summary")
	require.Contains(t, esc.Summary, "can I talk to a human please")
	require.Empty(t, p.Slack.Messages("C0PRIVATE"))
	require.Equal(t, []string{"escalation.started", "escalation.notify_failed"}, escalationAudit(t, p, tn))
}
