package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// evID is a fresh event ID: Redis, which dedupes them, outlives test runs.
func evID() string { return "Ev" + strings.ToUpper(uuid.NewString()[:10]) }

func echo(p *platform.Platform) {
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply { return fakellm.Text("echo: " + r.LastUserText()) })
}

// barrier sends one more message in the thread and waits for its reply. The
// workflow answers in order, so anything a duplicate would have caused has
// been posted by then.
func barrier(t *testing.T, p *platform.Platform, tn platform.Tenant, channel, thread string, want int) []fakeslack.Posted {
	t.Helper()
	body, _ := tn.Mention(channel, "U0ALICE", "barrier", platform.NewTS(), thread)
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, channel, want, replyTimeout)
	require.Equal(t, "echo: barrier", msgs[len(msgs)-1].Text)
	return msgs
}

// onlyConversation returns the ID of the tenant's one conversation, listed
// over REST.
func onlyConversation(t *testing.T, p *platform.Platform, tn platform.Tenant) string {
	t.Helper()
	var convs struct {
		Conversations []struct {
			ID string `json:"id"`
		} `json:"conversations"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &convs)
	require.Len(t, convs.Conversations, 1)
	return convs.Conversations[0].ID
}

// message is a recorded message as the REST API lists it.
type message struct{ Role, Content, Provider, Model string }

// messages lists a conversation's recorded messages over REST.
func messages(t *testing.T, p *platform.Platform, tn platform.Tenant, convID string) []message {
	t.Helper()
	var out struct {
		Messages []message `json:"messages"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/conversations/"+convID+"/messages", p.AdminToken, nil, http.StatusOK, &out)
	return out.Messages
}

// Slack delivering the same event three times (its retries) yields one reply.
func TestRetriedEventIsAnsweredOnce(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	echo(p)
	tn := p.NewTenant("Dupes", platform.AgentSpec{Name: "Dee"})
	ts := platform.NewTS()
	body, _ := tn.Mention("C0DUP", "U0ALICE", "only once please", ts, "")
	for retry := 0; retry < 3; retry++ {
		status, _ := p.PostEvent(body, retry)
		require.Equal(t, http.StatusOK, status, "delivery %d", retry+1)
	}
	msgs := barrier(t, p, tn, "C0DUP", ts, 2)
	require.Len(t, msgs, 2)
	require.Equal(t, "echo: only once please", msgs[0].Text)
	require.Equal(t, 2, p.LLM.Count(), "one model call per distinct message")
}

// Direct messages start a conversation too; the reply goes in the thread.
func TestDirectMessageIsAnswered(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	echo(p)
	tn := p.NewTenant("DM", platform.AgentSpec{Name: "Dot"})
	ts := platform.NewTS()
	status, _ := p.PostEvent(fakeslack.DirectMessage(tn.TeamID, "D0DM", "U0ALICE", "psst", ts, "", evID()), 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "D0DM", 1, replyTimeout)
	require.Equal(t, "echo: psst", msgs[0].Text)
	require.Equal(t, ts, msgs[0].ThreadTS)

	// The bot's own messages and edits are ignored.
	status, _ = p.PostEvent(fakeslack.DirectMessage(tn.TeamID, "D0DM", tn.BotUserID, "my own reply", platform.NewTS(), ts, evID(),
		fakeslack.WithBotID("B0BOT")), 0)
	require.Equal(t, http.StatusOK, status)
	status, _ = p.PostEvent(fakeslack.MessageChanged(tn.TeamID, "D0DM", "im", "U0ALICE", "psst!", ts, evID()), 0)
	require.Equal(t, http.StatusOK, status)
	body, _ := tn.Mention("D0DM", "U0ALICE", "ignored: app_mention in a DM is covered by message.im", platform.NewTS(), ts)
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	status, _ = p.PostEvent(fakeslack.DirectMessage(tn.TeamID, "D0DM", "U0ALICE", "barrier", platform.NewTS(), ts, evID()), 0)
	require.Equal(t, http.StatusOK, status)
	msgs = p.Slack.WaitForMessages(t, "D0DM", 2, replyTimeout)
	require.Equal(t, "echo: barrier", msgs[1].Text)
	require.Equal(t, 2, p.LLM.Count())
}

// Requests that are not genuine, well-formed Slack events are refused with
// the right status and start nothing.
func TestBadRequestsAreRefusedAndStartNothing(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_MAX_BODY_BYTES": "4096"}})
	echo(p)
	tn := p.NewTenant("Bad", platform.AgentSpec{Name: "Bea"})
	good, _ := tn.Mention("C0BAD", "U0EVE", "hi", platform.NewTS(), "")

	wrongSecret := fakeslack.NewEventsRequest("not-the-secret", good, time.Now())
	status, body := p.PostRequest(wrongSecret)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "signature mismatch")

	stale := fakeslack.NewEventsRequest(p.SigningSecret, good, time.Now().Add(-6*time.Minute))
	status, body = p.PostRequest(stale)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "more than 5 minutes")

	tampered := fakeslack.NewEventsRequest(p.SigningSecret, good, time.Now())
	tamperedBody := bytes.Replace(good, []byte("hi"), []byte("rm -rf"), 1)
	tampered.Body = http.NoBody
	req, _ := http.NewRequest(http.MethodPost, "/webhooks/slack/events", bytes.NewReader(tamperedBody))
	req.Header = tampered.Header
	status, _ = p.PostRequest(req)
	require.Equal(t, http.StatusUnauthorized, status)

	unsigned, _ := http.NewRequest(http.MethodPost, "/webhooks/slack/events", bytes.NewReader(good))
	status, body = p.PostRequest(unsigned)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "missing X-Slack-Signature")

	status, body = p.PostEvent([]byte(`{"type":"event_callback","event":`), 0)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "malformed_event")

	huge, _ := tn.Mention("C0BAD", "U0EVE", strings.Repeat("x", 8000), platform.NewTS(), "")
	status, body = p.PostEvent(huge, 0)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Contains(t, body, "body_too_large")

	// An event from a workspace nobody connected: 200 (Slack must not retry
	// forever), no conversation.
	stranger := fakeslack.AppMention("T0STRANGER", "C0X", "U0X", "<@U0BOT> hi", platform.NewTS(), "", evID())
	status, _ = p.PostEvent(stranger, 0)
	require.Equal(t, http.StatusOK, status)

	// The challenge is only answered when signed.
	status, body = p.PostEvent(fakeslack.URLVerification("chal-123"), 0)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"challenge":"chal-123"}`, body)

	require.Zero(t, p.LLM.Count(), "no model was called")
	require.Empty(t, p.Slack.Messages(""), "nothing was posted")
	var convs struct {
		Conversations []any `json:"conversations"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &convs)
	require.Empty(t, convs.Conversations, "no conversation was started")

	metrics := metricsText(t, p)
	require.Contains(t, metrics, `konstruct_webhook_requests_total{outcome="bad_signature",source="slack"} 4`)
	require.Contains(t, metrics, `konstruct_webhook_requests_total{outcome="unknown_team",source="slack"} 1`)
}

func metricsText(t *testing.T, p *platform.Platform) string {
	t.Helper()
	resp, err := http.Get(p.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	require.NoError(t, err)
	return b.String()
}

// Over the channel's limit, the user is told the limit and when to try
// again, in the thread; the message is recorded, not silently dropped.
func TestRateLimitIsExplainedInThread(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	echo(p)
	tn := p.NewTenant("Limits", platform.AgentSpec{Name: "Lim"})
	p.MustDo(http.MethodPatch, "/api/v1/tenants/"+tn.ID, p.AdminToken, map[string]int{"channel_rate_per_minute": 2}, http.StatusOK, nil)

	ts := platform.NewTS()
	for i := 1; i <= 4; i++ {
		body, _ := tn.Mention("C0LIM", "U0ALICE", fmt.Sprintf("message %d", i), platform.NewTS(), ts)
		if i == 1 {
			body, _ = tn.Mention("C0LIM", "U0ALICE", "message 1", ts, "")
		}
		status, _ := p.PostEvent(body, 0)
		require.Equal(t, http.StatusOK, status)
	}
	msgs := p.Slack.WaitForMessages(t, "C0LIM", 3, replyTimeout)
	require.Equal(t, "echo: message 1", msgs[0].Text)
	require.Equal(t, "echo: message 2", msgs[1].Text)
	require.Contains(t, msgs[2].Text, "faster than the limit for this channel (2 per minute)")
	require.Contains(t, msgs[2].Text, "try again in")
	require.Equal(t, 2, p.LLM.Count())

	// The fourth message was recorded with the third, under one notice.
	convID := onlyConversation(t, p, tn)
	require.Eventually(t, func() bool {
		var users int
		for _, m := range messages(t, p, tn, convID) {
			if m.Role == "user" {
				users++
			}
		}
		return users == 4
	}, 10*time.Second, 100*time.Millisecond, "all four messages recorded")
	require.Len(t, p.Slack.Messages("C0LIM"), 3, "one notice for the burst, not one per message")
	require.Contains(t, metricsText(t, p), `konstruct_rate_limit_rejections_total{channel="slack",scope="channel"} 2`)
}

// With no model provider configured the user is told so, naming the setting.
func TestNoProviderConfiguredIsExplained(t *testing.T) {
	p := platform.Start(t, platform.Options{NoLLM: true})
	tn := p.NewTenant("Unconfigured", platform.AgentSpec{Name: "Nov"})
	body, _ := tn.Mention("C0NONE", "U0ALICE", "hello?", platform.NewTS(), "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "C0NONE", 1, replyTimeout)
	require.Contains(t, msgs[0].Text, "no language model is configured")
	require.Contains(t, msgs[0].Text, "KONSTRUCT_OPENAI_API_KEY")
}
