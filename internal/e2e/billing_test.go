package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakestripe"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

type usageAnswer struct {
	Totals struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
		CostMicroUSD int64 `json:"cost_micro_usd"`
	} `json:"totals"`
	Rows []struct {
		Provider     string `json:"provider"`
		Model        string `json:"model"`
		Calls        int    `json:"calls"`
		InputTokens  int64  `json:"input_tokens"`
		OutputTokens int64  `json:"output_tokens"`
		CostMicroUSD int64  `json:"cost_micro_usd"`
	} `json:"rows"`
}

// A burst of 20 concurrent turns against a hard-stop budget that pays for 5:
// each call's estimate is reserved before the model is asked, so at most one
// turn's estimate is overshot — at most 6 turns reach the model (counted by
// the fake provider itself) — and every other user is told the assistant is
// paused. The recorded usage equals what the provider reported.
func TestBudgetHardStopUnderConcurrentTurns(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	const inTok, outTok = 1000, 200
	var mu sync.Mutex
	answered := 0
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		mu.Lock()
		answered++
		mu.Unlock()
		// Slow enough that the turns' calls are in flight together.
		return fakellm.Reply{Text: "Here is your answer.", Usage: &fakellm.Usage{InputTokens: inTok, OutputTokens: outTok}}.
			After(300 * time.Millisecond)
	})
	tn := p.NewTenant("Budgeted", platform.AgentSpec{Name: "Penny", Models: []string{"openai/gpt-4o-mini"}})
	turnCost := llm.Cost("openai/gpt-4o-mini", llm.Usage{InputTokens: inTok, OutputTokens: outTok})
	limit := 5 * turnCost
	p.MustDo(http.MethodPut, "/api/v1/tenants/"+tn.ID+"/billing/budget", p.AdminToken,
		map[string]any{"monthly_limit_usd": float64(limit) / 1e6, "hard_stop": true}, http.StatusOK, nil)

	const turns = 20
	var wg sync.WaitGroup
	for i := range turns {
		wg.Go(func() {
			body, _ := tn.Mention("C0BURST", fmt.Sprintf("U0USER%02d", i), "what does my plan include?", platform.NewTS(), "")
			status, _ := p.PostEvent(body, 0)
			require.Equal(t, http.StatusOK, status)
		})
	}
	wg.Wait()
	msgs := p.Slack.WaitForMessages(t, "C0BURST", turns, 90*time.Second)
	replies, paused := 0, 0
	for _, m := range msgs {
		switch m.Text {
		case "Here is your answer.":
			replies++
		case billing.PausedNotice:
			paused++
		default:
			t.Errorf("unexpected message %q", m.Text)
		}
	}
	chat := len(p.LLM.Requests())
	mu.Lock()
	require.Equal(t, answered, chat)
	mu.Unlock()
	t.Logf("%d turns answered by the model, %d told the assistant is paused", replies, paused)
	require.Equal(t, turns, replies+paused, "every turn gets one message")
	require.Equal(t, chat, replies, "every model call became a reply")
	require.GreaterOrEqual(t, chat, 1)
	require.LessOrEqual(t, chat, 6, "at most one turn's estimate over the budget")
	require.Positive(t, paused)

	// The usage recorded equals the provider's own count, call for call.
	var u usageAnswer
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/usage?group_by=model", p.AdminToken, nil, http.StatusOK, &u)
	var found bool
	for _, r := range u.Rows {
		if r.Provider == "openai" && r.Model == "gpt-4o-mini" {
			found = true
			require.Equal(t, chat, r.Calls)
			require.Equal(t, int64(chat*inTok), r.InputTokens)
			require.Equal(t, int64(chat*outTok), r.OutputTokens)
			require.Equal(t, int64(chat)*turnCost, r.CostMicroUSD)
			require.LessOrEqual(t, r.CostMicroUSD, limit+turnCost)
		}
	}
	require.True(t, found, "usage by model lists the chat model: %+v", u.Rows)

	// The operator is told why: the billing overview carries the notice the
	// portal shows as a banner, and nothing is left reserved.
	var b struct {
		Budgets []struct {
			SpentUSD    float64 `json:"spent_usd"`
			ReservedUSD float64 `json:"reserved_usd"`
			Percent     int     `json:"percent"`
		} `json:"budgets"`
		Notices []struct {
			Message string `json:"message"`
		} `json:"notices"`
	}
	require.Eventually(t, func() bool {
		p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/billing", p.AdminToken, nil, http.StatusOK, &b)
		return len(b.Budgets) == 1 && b.Budgets[0].ReservedUSD == 0
	}, 30*time.Second, 100*time.Millisecond, "every reservation settled")
	require.GreaterOrEqual(t, b.Budgets[0].Percent, 100)
	require.NotEmpty(t, b.Notices)
	require.Contains(t, b.Notices[0].Message, "paused")
}

// With billing on, a tenant over its plan's monthly messages gets one polite
// notice per conversation instead of replies, and the model is not called.
func TestMessageAllowanceNoticeOncePerConversation(t *testing.T) {
	st := fakestripe.New(t)
	p := platform.Start(t, platform.Options{Env: st.Env()})
	tn := p.NewTenant("Chatty", platform.AgentSpec{Name: "Max"}) // the free plan's one agent and one channel

	// The month's allowance (Free: 500 messages) is used up.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `BEGIN; SELECT set_config('app.platform', 'on', true);
		INSERT INTO usage_counters (tenant_id, period, messages) VALUES ('`+tn.ID+`', billing_period(now()), 500); COMMIT`)
	require.NoError(t, err)

	root := platform.NewTS()
	body, _ := tn.Mention("C0LIMIT", "U0BOB", "hello?", root, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "C0LIMIT", 1, replyTimeout)
	require.Equal(t, billing.AllowanceNotice, msgs[0].Text)

	// The same conversation is not told twice; another one is told once.
	body, _ = tn.Mention("C0LIMIT", "U0BOB", "anyone?", platform.NewTS(), root)
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	body, _ = tn.Mention("C0LIMIT", "U0CAROL", "hi", platform.NewTS(), "")
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs = p.Slack.WaitForMessages(t, "C0LIMIT", 2, replyTimeout)
	require.Equal(t, billing.AllowanceNotice, msgs[1].Text)
	// The thread's second message was recorded (its turn done) with no
	// second notice, and no model was asked.
	var convs struct {
		Conversations []struct {
			ID         string `json:"id"`
			ExternalID string `json:"external_key"`
		} `json:"conversations"`
	}
	require.Eventually(t, func() bool {
		p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &convs)
		for _, c := range convs.Conversations {
			users := 0
			for _, m := range messages(t, p, tn, c.ID) {
				if m.Role == "user" {
					users++
				}
			}
			if users == 2 {
				return true
			}
		}
		return false
	}, replyTimeout, 100*time.Millisecond, "the thread's second message recorded")
	time.Sleep(300 * time.Millisecond)
	require.Len(t, p.Slack.Messages("C0LIMIT"), 2, "no second notice in the first thread")
	require.Empty(t, p.LLM.Requests())

	var b struct {
		Notices []struct {
			Message string `json:"message"`
		} `json:"notices"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/billing", p.AdminToken, nil, http.StatusOK, &b)
	require.NotEmpty(t, b.Notices)
	require.Contains(t, b.Notices[0].Message, "messages are used up")
}
