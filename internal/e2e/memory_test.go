package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/memory"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// knowsFacts answers like a model that uses what it was given: it repeats
// the first fact (a "locker code" or "dog" line) found anywhere in its
// prompt, system prompt or window, and otherwise says it does not know.
func knowsFacts(p *platform.Platform) {
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		q := r.LastUserText()
		if !strings.HasPrefix(q, "what is my") {
			return fakellm.Text("ok")
		}
		for _, fact := range []string{"7391", "Biscuit", "Rex"} {
			if strings.Contains(r.System, fact) {
				return fakellm.Text("From memory: " + fact)
			}
			for _, m := range r.Messages[:len(r.Messages)-1] {
				if strings.Contains(m.Content, fact) {
					return fakellm.Text("From the conversation: " + fact)
				}
			}
		}
		return fakellm.Text("I do not know.")
	})
}

// say posts a message as user (in thread, or a new thread when thread is
// "") and waits for the n-th message of the channel; it returns the thread.
func say(t *testing.T, p *platform.Platform, tn platform.Tenant, channel, user, text, thread string, n int) (string, string) {
	t.Helper()
	ts := platform.NewTS()
	body, _ := tn.Mention(channel, user, text, ts, thread)
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, channel, n, replyTimeout)
	if thread == "" {
		thread = ts
	}
	return thread, msgs[n-1].Text
}

// waitEmbedded waits until an end user's memories are all embedded: Remember
// runs just after the reply is posted.
func waitEmbedded(t *testing.T, p *platform.Platform, tn platform.Tenant, user string, atLeast int) {
	t.Helper()
	require.Eventually(t, func() bool {
		embedded, pending := memoryCounts(t, p, tn, user)
		return embedded >= atLeast && pending == 0
	}, 15*time.Second, 50*time.Millisecond, "memories of %s embedded", user)
}

// A fact given at turn 1 is used correctly at turn 40, long after it left the
// window (20 messages): through recall, not the window.
func TestFactFromTurnOneIsRecalledAtTurnForty(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	knowsFacts(p)
	tn := p.NewTenant("Mem", platform.AgentSpec{Name: "Mnemo"})

	thread, _ := say(t, p, tn, "C0MEM", "U0ALICE", "please note that my locker code is 7391", "", 1)
	for i := 2; i <= 39; i++ {
		say(t, p, tn, "C0MEM", "U0ALICE", fmt.Sprintf("filler message number %d about the weather", i), thread, i)
	}
	_, reply := say(t, p, tn, "C0MEM", "U0ALICE", "what is my locker code?", thread, 40)
	if reply != "From memory: 7391" {
		reqs := p.LLM.Requests()
		t.Logf("system: %s", reqs[len(reqs)-1].System)
		t.Logf("worker: %s", p.Worker().Output())
	}
	require.Equal(t, "From memory: 7391", reply)

	reqs := p.LLM.Requests()
	last := reqs[len(reqs)-1]
	for _, m := range last.Messages {
		require.NotContains(t, m.Content, "7391", "turn 1 is no longer in the window")
	}
	require.Contains(t, last.System, memory.RecalledHeading)
	require.Contains(t, last.System, "the user said] please note that my locker code is 7391")
	require.Len(t, last.Messages, 20, "the window still holds 20 messages")

	// Embeddings went to the OpenAI wire format with the default model. (The
	// last turn's Remember runs just after its reply: wait for it.)
	waitEmbedded(t, p, tn, "U0ALICE", 80)
	embeds := p.LLM.EmbedRequests()
	require.NotEmpty(t, embeds)
	for _, e := range embeds {
		require.Equal(t, "text-embedding-3-small", e.Model)
		require.Equal(t, "/v1/embeddings", e.Path)
	}
	// Each is in the audit trail, once per key.
	events := auditCount(t, p, tn, `action = 'embedding.call' AND data->>'outcome' = 'ok'`)
	require.Equal(t, len(embeds), events, "one embedding.call event per embedding request")
	require.Equal(t, 1, auditCount(t, p, tn, `action = 'embedding.call' AND data->>'purpose' = 'recall' AND data->>'model' = 'text-embedding-3-small'
		AND (data->>'dimensions')::int = 1536 AND idempotency_key LIKE '%:40:embed:0'`))
}

// auditCount counts a tenant's audit events matching where.
func auditCount(t *testing.T, p *platform.Platform, tn platform.Tenant, where string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT set_config('app.platform', 'on', false)`)
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND `+where, tn.ID).Scan(&n))
	return n
}

// A fact from an earlier conversation of the same end user is recalled in a
// new thread; another end user of the tenant, and the same Slack user ID in
// another tenant, never get it.
func TestMemoryAcrossConversationsStaysWithItsEndUserAndTenant(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	knowsFacts(p)
	tn := p.NewTenant("Mem A", platform.AgentSpec{Name: "Mnemo"})
	other := p.NewTenant("Mem B", platform.AgentSpec{Name: "Mnemo"})

	say(t, p, tn, "C0A", "U0ALICE", "my dog is called Biscuit", "", 1)
	say(t, p, other, "C0B", "U0ALICE", "my dog is called Rex", "", 1)
	waitEmbedded(t, p, tn, "U0ALICE", 2)
	waitEmbedded(t, p, other, "U0ALICE", 2)

	// Alice, new thread, same agent: recalled.
	_, reply := say(t, p, tn, "C0A", "U0ALICE", "what is my dog called?", "", 2)
	require.Equal(t, "From memory: Biscuit", reply)
	// Bob, same tenant and agent: not Alice's memory.
	_, reply = say(t, p, tn, "C0A", "U0BOB", "what is my dog called?", "", 3)
	require.Equal(t, "I do not know.", reply)
	// Tenant B's Alice has her own.
	_, reply = say(t, p, other, "C0B", "U0ALICE", "what is my dog called?", "", 2)
	require.Equal(t, "From memory: Rex", reply)

	for _, r := range p.LLM.Requests() {
		if strings.Contains(r.System, "Biscuit") {
			require.Contains(t, r.System, "You are Mnemo")
			require.NotContains(t, r.System, "Rex")
		}
	}
}

// memoryCounts returns an end user's embedded and pending memories.
func memoryCounts(t *testing.T, p *platform.Platform, tn platform.Tenant, user string) (embedded, pending int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT set_config('app.platform', 'on', false)`)
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE embedding IS NOT NULL), count(*) FILTER (WHERE embedding IS NULL)
		FROM memories WHERE tenant_id = $1 AND end_user_ref = $2`, tn.ID, user).Scan(&embedded, &pending))
	return embedded, pending
}

// With the embedding API down, replies still go out; the turn's messages
// wait unembedded and are embedded on the next turn once it is back.
func TestEmbeddingOutageDoesNotBlockRepliesAndIsRetried(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	knowsFacts(p)
	p.LLM.SetEmbedHandler(func(fakellm.Request) fakellm.Reply {
		return fakellm.Fail(http.StatusServiceUnavailable, "embeddings down")
	})
	tn := p.NewTenant("Mem", platform.AgentSpec{Name: "Mnemo"})

	thread, reply := say(t, p, tn, "C0OUT", "U0ALICE", "my locker code is 7391", "", 1)
	require.Equal(t, "ok", reply)
	_, reply = say(t, p, tn, "C0OUT", "U0ALICE", "what is my locker code?", thread, 2)
	require.Equal(t, "From the conversation: 7391", reply, "the window still works")
	require.Eventually(t, func() bool { _, pending := memoryCounts(t, p, tn, "U0ALICE"); return pending == 4 },
		10*time.Second, 50*time.Millisecond, "both turns stored, waiting for an embedding")

	p.LLM.SetEmbedHandler(nil)
	say(t, p, tn, "C0OUT", "U0ALICE", "thanks", thread, 3)
	waitEmbedded(t, p, tn, "U0ALICE", 6)
	// And a new thread recalls the fact stored during the outage.
	_, reply = say(t, p, tn, "C0OUT", "U0ALICE", "what is my locker code?", "", 4)
	require.Equal(t, "From memory: 7391", reply)
	require.Positive(t, auditCount(t, p, tn, `action = 'embedding.call' AND data->>'outcome' = 'failed'`), "failed calls are audited")
}

// An agent on a small-context model (Ollama: 4096 tokens unless num_ctx is
// raised) gets a prompt cut to fit, oldest messages first, while the new
// message and the system prompt are always sent whole.
func TestPromptFitsTheSmallestContextOfTheChain(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Text("ok") })
	tn := p.NewTenant("Small", platform.AgentSpec{Name: "Tiny", Models: []string{"ollama/llama3.2"}})
	long := strings.Repeat("lorem ipsum dolor sit amet ", 150) // about 1000 tokens
	thread := ""
	for i := 1; i <= 6; i++ {
		thread, _ = say(t, p, tn, "C0SMALL", "U0ALICE", fmt.Sprintf("part %d: %s", i, long), thread, i)
	}
	reqs := p.LLM.Requests()
	last := reqs[len(reqs)-1]
	require.Equal(t, fakellm.Ollama, last.Wire)
	require.True(t, strings.HasPrefix(last.LastUserText(), "part 6:"), "the new message is sent")
	require.Less(t, len(last.Messages), 11, "older messages were cut")
	words := len(strings.Fields(last.System))
	for _, m := range last.Messages {
		words += len(strings.Fields(m.Content))
	}
	// The fake counts a token per word; the estimate errs high, so the
	// prompt is well inside 4096 minus the answer's 1024.
	require.LessOrEqual(t, words, 4096-1024)
}

// When a conversation closes, its summary is written by the agent's model,
// embedded, and recalled like a message in the end user's next conversation.
// Forgetting the end user over REST removes it all: nothing is recalled after.
func TestClosedConversationIsSummarisedRecalledAndForgotten(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_CONVERSATION_IDLE_TIMEOUT": "2s"}})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if strings.HasPrefix(r.System, "You write the long-term memory") {
			if strings.Contains(r.LastUserText(), "any tips") {
				return fakellm.Text("The user asked for tips on their Kyoto trip.")
			}
			return fakellm.Text("The user plans a trip to Kyoto in April and wants quiet ryokan.")
		}
		if strings.Contains(r.System, "[") && strings.Contains(r.System, "summary of a conversation] The user plans a trip to Kyoto") {
			return fakellm.Text("Still planning Kyoto?")
		}
		return fakellm.Text("noted")
	})
	tn := p.NewTenant("Sum", platform.AgentSpec{Name: "Sumi"})
	say(t, p, tn, "C0SUM", "U0ALICE", "I am planning a trip to Kyoto in April", "", 1)
	summaryPrompt := func() string {
		for _, r := range p.LLM.Requests() {
			if strings.HasPrefix(r.System, "You write the long-term memory") {
				return r.LastUserText()
			}
		}
		return ""
	}

	// Closed after 2s idle, then summarised.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT set_config('app.platform', 'on', false)`)
	require.NoError(t, err)
	summaries := func(want int) func() bool {
		return func() bool {
			var n int
			require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM memories WHERE tenant_id = $1 AND kind = 'summary'
				AND end_user_ref = 'U0ALICE' AND embedding IS NOT NULL AND dims = 1536 AND embedding_model = 'openai/text-embedding-3-small'`,
				tn.ID).Scan(&n))
			return n == want
		}
	}
	require.Eventually(t, summaries(1), 30*time.Second, 100*time.Millisecond, "the summary is written and embedded")
	require.Equal(t, "User: I am planning a trip to Kyoto in April\nAssistant: noted", summaryPrompt(), "the model was given the transcript")
	require.Equal(t, 1, auditCount(t, p, tn, `action = 'llm.call' AND data->>'purpose' = 'summary'`))
	require.Equal(t, 1, auditCount(t, p, tn, `action = 'embedding.call' AND data->>'purpose' = 'summary'`))

	_, reply := say(t, p, tn, "C0SUM", "U0ALICE", "any tips for my Kyoto trip?", "", 2)
	require.Equal(t, "Still planning Kyoto?", reply, "the summary was recalled in a new conversation")
	// That conversation closes too; then Alice asks to be forgotten.
	require.Eventually(t, summaries(2), 30*time.Second, 100*time.Millisecond, "the second conversation is summarised")
	waitEmbedded(t, p, tn, "U0ALICE", 6)

	var out struct {
		DeletedMessages  int `json:"deleted_messages"`
		DeletedSummaries int `json:"deleted_summaries"`
	}
	p.MustDo(http.MethodDelete, "/api/v1/tenants/"+tn.ID+"/end-users/U0ALICE/memory", p.AdminToken, nil, http.StatusOK, &out)
	require.Equal(t, 2, out.DeletedSummaries)
	require.Equal(t, 4, out.DeletedMessages)
	require.Equal(t, 1, auditCount(t, p, tn, `action = 'memory.forget' AND target_id = 'U0ALICE'`))

	_, reply = say(t, p, tn, "C0SUM", "U0ALICE", "any tips for my Kyoto trip?", "", 3)
	require.Equal(t, "noted", reply, "nothing is recalled after forgetting")
	last := p.LLM.Requests()[len(p.LLM.Requests())-1]
	require.NotContains(t, last.System, memory.RecalledHeading)
}

// An embedding API that hangs does not hold a reply: recall gives up after
// its timeout (2s, memory.Config.RecallTimeout) and the reply goes out
// without long-term memory.
func TestHangingEmbeddingAPIDelaysAReplyByAtMostTheRecallTimeout(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	knowsFacts(p)
	tn := p.NewTenant("Mem", platform.AgentSpec{Name: "Mnemo"})
	say(t, p, tn, "C0HANG", "U0ALICE", "my locker code is 7391", "", 1)
	waitEmbedded(t, p, tn, "U0ALICE", 2)

	p.LLM.SetEmbedHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Hang() })
	_, reply := say(t, p, tn, "C0HANG", "U0ALICE", "what is my locker code?", "", 2)
	require.Equal(t, "I do not know.", reply, "answered without memory")
}
