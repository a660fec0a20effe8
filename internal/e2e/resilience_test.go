package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// The worker is killed with SIGKILL while the model call is in flight and
// started again: the turn completes on the new worker with exactly one reply.
func TestWorkerKilledDuringLLMCallRepliesOnce(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	started := make(chan struct{}, 4)
	var calls atomic.Int32
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if r.LastUserText() == "barrier" {
			return fakellm.Text("echo: barrier")
		}
		if calls.Add(1) == 1 {
			started <- struct{}{}
			return fakellm.Hang() // until the worker dies and the connection drops
		}
		return fakellm.Text("answered after the crash")
	})
	tn := p.NewTenant("Crash", platform.AgentSpec{Name: "Cal"})
	ts := platform.NewTS()
	body, _ := tn.Mention("C0CRASH", "U0ALICE", "survive this", ts, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)

	select {
	case <-started:
	case <-time.After(replyTimeout):
		t.Fatal("the model was never called")
	}
	p.KillWorker()
	p.StartWorker()

	msgs := p.Slack.WaitForMessages(t, "C0CRASH", 1, 60*time.Second)
	require.Equal(t, "answered after the crash", msgs[0].Text)
	msgs = barrier(t, p, tn, "C0CRASH", ts, 2)
	require.Len(t, msgs, 2, "exactly one reply to the interrupted turn")
	// The killed attempt recorded nothing; the retry recorded its call once.
	require.Equal(t, map[string]int{"ok": 2}, outcomes(llmCalls(t, p, tn)), "one llm.call per turn")
}

// Slack stores a reply but the response to chat.postMessage is lost: the
// retried send finds the reply by its key instead of posting it again.
func TestLostSlackResponseDoesNotPostTwice(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	echo(p)
	tn := p.NewTenant("Lost", platform.AgentSpec{Name: "Lou"})
	p.Slack.LoseNextResponse("chat.postMessage", 1)
	ts := platform.NewTS()
	body, _ := tn.Mention("C0LOST", "U0ALICE", "are you there?", ts, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := barrier(t, p, tn, "C0LOST", ts, 2)
	require.Len(t, msgs, 2)
	require.Equal(t, "echo: are you there?", msgs[0].Text)
	require.Equal(t, 2, p.Slack.Calls("chat.postMessage"), "the lost post and the barrier: the first reply was not posted again")
	require.Positive(t, p.Slack.Calls("conversations.replies"), "the retry looked for its key in the thread")
}

// A reply longer than a Slack message is posted as parts, in order, each
// exactly once even when Slack's responses to both posts are lost, and is
// recorded whole.
func TestLongReplyIsPostedInPartsOnce(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	long := strings.Repeat("Lorem ipsum dolor sit amet. ", 110) + "\n\n" + strings.Repeat("Consectetur adipiscing elit. ", 100)
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if r.LastUserText() == "tell me everything" {
			return fakellm.Text(long)
		}
		return fakellm.Text("echo: " + r.LastUserText())
	})
	tn := p.NewTenant("Long", platform.AgentSpec{Name: "Lena"})
	p.Slack.LoseNextResponse("chat.postMessage", 2)
	ts := platform.NewTS()
	body, _ := tn.Mention("C0LONGR", "U0ALICE", "tell me everything", ts, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := barrier(t, p, tn, "C0LONGR", ts, 3)
	require.Len(t, msgs, 3, "two parts and the barrier's reply, nothing twice")
	require.Equal(t, long, msgs[0].Text+msgs[1].Text, "the parts, in order, are the reply")
	require.True(t, strings.HasSuffix(msgs[0].Text, "\n\n"), "cut at the paragraph break")
	require.Equal(t, ts, msgs[1].ThreadTS)
	require.Equal(t, 3, p.Slack.Calls("chat.postMessage"), "each part posted once, then the barrier")

	recorded := messages(t, p, tn, onlyConversation(t, p, tn))
	require.GreaterOrEqual(t, len(recorded), 2)
	require.Equal(t, "assistant", recorded[1].Role)
	require.Equal(t, long, recorded[1].Content, "recorded whole, once")
}

// The API process is killed with SIGKILL while events stream in. Slack
// retries what was not acknowledged; every message ends up answered exactly
// once.
func TestAPIKilledWhileEventsArriveAnswersEachOnce(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	echo(p)
	tn := p.NewTenant("API crash", platform.AgentSpec{Name: "Abe"})
	const n = 30
	var wg sync.WaitGroup
	var acked atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body, _ := tn.Mention(fmt.Sprintf("C0API%02d", i), "U0ALICE", fmt.Sprintf("message %d", i), platform.NewTS(), "")
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			// Like Slack: retry until acknowledged.
			for retry := 0; retry < 300; retry++ {
				if status, err := p.TryPostEvent(body, retry); err == nil && status == http.StatusOK {
					acked.Add(1)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}(i)
	}
	time.Sleep(250 * time.Millisecond)
	p.RestartServe(true)
	wg.Wait()
	require.Equal(t, int32(n), acked.Load())

	for i := 0; i < n; i++ {
		ch := fmt.Sprintf("C0API%02d", i)
		msgs := p.Slack.WaitForMessages(t, ch, 1, replyTimeout)
		require.Equal(t, fmt.Sprintf("echo: message %d", i), msgs[0].Text)
	}
	// Let any duplicate surface, then count.
	barrier(t, p, tn, "C0API00", "", 2)
	var texts []string
	for _, m := range p.Slack.Messages("") {
		texts = append(texts, m.Text)
	}
	sort.Strings(texts)
	require.Len(t, texts, n+1, "one reply per message (plus the barrier): %v", texts)
}

// When no model answers for the notice period, the user is told in the
// thread; when the provider returns, the turn completes with the answer.
func TestUnavailableProviderIsExplainedThenAnswered(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{
		"KONSTRUCT_LLM_UNAVAILABLE_NOTICE": "2s",
		"KONSTRUCT_LLM_BREAKER_COOLDOWN":   "500ms",
	}})
	var up atomic.Bool
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if !up.Load() {
			return fakellm.Fail(http.StatusServiceUnavailable, "overloaded")
		}
		return fakellm.Text("back online: " + r.LastUserText())
	})
	tn := p.NewTenant("Outage", platform.AgentSpec{Name: "Otto"})
	body, _ := tn.Mention("C0DOWN", "U0ALICE", "hello", platform.NewTS(), "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)

	msgs := p.Slack.WaitForMessages(t, "C0DOWN", 1, replyTimeout)
	require.Contains(t, msgs[0].Text, "trouble reaching my language model")
	up.Store(true)
	msgs = p.Slack.WaitForMessages(t, "C0DOWN", 2, 60*time.Second)
	require.Equal(t, "back online: hello", msgs[1].Text)
	// Each failed attempt of the activity is on the trail once, with its
	// attempt number; the answer once.
	calls := llmCalls(t, p, tn)
	require.Equal(t, 1, outcomes(calls)["ok"])
	require.Positive(t, outcomes(calls)["failed"])
	seen := map[float64]bool{}
	for _, e := range calls {
		if e.Data["outcome"] == "failed" {
			n := e.Data["activity_attempt"].(float64)
			require.False(t, seen[n], "attempt %v recorded twice", n)
			seen[n] = true
			require.Equal(t, "unavailable", e.Data["attempts"].([]any)[0].(map[string]any)["outcome"])
		}
	}
}

// The model calls a tool the agent has; the result goes back to the model and
// its final answer is posted.
func TestToolCallRoundTrip(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		last := r.Messages[len(r.Messages)-1]
		if last.Role == "tool" {
			return fakellm.Text("It is " + last.Content)
		}
		return fakellm.CallTools(fakellm.ToolCall{Name: "current_time", Arguments: []byte(`{"timezone":"Europe/Paris"}`)})
	})
	tn := p.NewTenant("Tools", platform.AgentSpec{Name: "Tim", Tools: []string{"current_time"}})
	body, _ := tn.Mention("C0TOOL", "U0ALICE", "what time is it in Paris?", platform.NewTS(), "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "C0TOOL", 1, replyTimeout)
	require.Regexp(t, `^It is (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), .* (CET|CEST)$`, msgs[0].Text)

	reqs := p.LLM.Requests()
	require.Len(t, reqs, 2)
	calls := llmCalls(t, p, tn)
	require.Len(t, calls, 2, "both model calls of the turn, each keyed by its call index")
	require.Equal(t, []any{float64(1), float64(0)}, []any{calls[0].Data["call"], calls[0].Data["tool_calls"]}, "the answer")
	require.Equal(t, []any{float64(0), float64(1)}, []any{calls[1].Data["call"], calls[1].Data["tool_calls"]}, "the tool call")
	require.Len(t, reqs[0].Tools, 1)
	require.Equal(t, "current_time", reqs[0].Tools[0].Name)
}

// Two tenants, two workspaces: each event reaches only its own agent, and
// neither tenant's conversations are visible under the other.
func TestTwoTenantsStayApart(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		name := strings.TrimPrefix(strings.SplitN(r.System, ",", 2)[0], "You are ")
		return fakellm.Text(name + " answers " + r.LastUserText())
	})
	a := p.NewTenant("Alpha", platform.AgentSpec{Name: "Alpha-bot", Role: "assistant"})
	b := p.NewTenant("Beta", platform.AgentSpec{Name: "Beta-bot", Role: "assistant"})

	bodyA, _ := a.Mention("C0SHARED", "U0A", "from A", platform.NewTS(), "")
	bodyB, _ := b.Mention("C0SHARED", "U0B", "from B", platform.NewTS(), "")
	for _, body := range [][]byte{bodyA, bodyB} {
		status, _ := p.PostEvent(body, 0)
		require.Equal(t, http.StatusOK, status)
	}
	msgs := p.Slack.WaitForMessages(t, "C0SHARED", 2, replyTimeout)
	byTeam := map[string]string{}
	for _, m := range msgs {
		byTeam[m.TeamID] = m.Text
	}
	require.Equal(t, "Alpha-bot answers from A", byTeam[a.TeamID])
	require.Equal(t, "Beta-bot answers from B", byTeam[b.TeamID])

	type conv struct {
		ID       string `json:"id"`
		TenantID string `json:"tenant_id"`
	}
	var ca, cb struct {
		Conversations []conv `json:"conversations"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+a.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &ca)
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+b.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &cb)
	require.Len(t, ca.Conversations, 1)
	require.Len(t, cb.Conversations, 1)
	require.Equal(t, a.ID, ca.Conversations[0].TenantID)
	require.Equal(t, b.ID, cb.Conversations[0].TenantID)
	// A's conversation does not exist under B's tenant, even for a platform admin.
	status, _ := p.Do(http.MethodGet, "/api/v1/tenants/"+b.ID+"/conversations/"+ca.Conversations[0].ID+"/messages", p.AdminToken, nil)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = p.Do(http.MethodGet, "/api/v1/tenants/"+b.ID+"/agents/"+a.AgentID, p.AdminToken, nil)
	require.Equal(t, http.StatusNotFound, status)
}

// Socket Mode feeds the same path as the webhook.
func TestSocketModeEventIsAnswered(t *testing.T) {
	appToken := "xapp-1-A0TEST-" + fmt.Sprint(time.Now().UnixNano())
	p := platform.Start(t, platform.Options{
		Env:         map[string]string{"KONSTRUCT_SLACK_APP_TOKEN": appToken},
		BeforeStart: func(p *platform.Platform) { p.Slack.AddAppToken(appToken) },
	})
	echo(p)
	tn := p.NewTenant("Socket", platform.AgentSpec{Name: "Sol"})
	p.Slack.WaitForSocket(t, 1, replyTimeout)
	body, _ := tn.Mention("C0SOCK", "U0ALICE", "over the socket", platform.NewTS(), "")
	id, err := p.Slack.PushEvent(body)
	require.NoError(t, err)
	p.Slack.WaitForAck(t, id, replyTimeout)
	msgs := p.Slack.WaitForMessages(t, "C0SOCK", 1, replyTimeout)
	require.Equal(t, "echo: over the socket", msgs[0].Text)
}
