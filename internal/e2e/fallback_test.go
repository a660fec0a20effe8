package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// When the first model of an agent's chain fails in a way another model
// might not — 500, 429, a hang past the attempt timeout, a refused connection —
// the reply comes from the next model. A 400 would fail everywhere, so it
// does not fall back: the user is told the request was refused.
func TestFallbackAlongTheModelChain(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{
		"KONSTRUCT_LLM_ATTEMPT_TIMEOUT":  "1s",
		"KONSTRUCT_OLLAMA_URL":           fakellm.RefusedURL(t),
		"KONSTRUCT_LLM_BREAKER_FAILURES": "100", // keep every case reaching the failing provider
	}})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		switch {
		case r.Wire == fakellm.Anthropic:
			return fakellm.Text("answer from claude for " + r.Model)
		case r.Model == "fail-500":
			return fakellm.Fail(http.StatusInternalServerError, "upstream exploded")
		case r.Model == "fail-429":
			return fakellm.Reply{Status: http.StatusTooManyRequests, ErrorMessage: "rate limit reached", RetryAfter: "20"}
		case r.Model == "hang":
			return fakellm.Hang()
		case r.Model == "fail-400":
			return fakellm.Fail(http.StatusBadRequest, "messages: invalid content")
		}
		return fakellm.Text("answer from openai " + r.Model)
	})

	cases := []struct {
		name, primary string
		fallsBack     bool
	}{
		{"server error 500", "openai/fail-500", true},
		{"rate limited 429", "openai/fail-429", true},
		{"hangs past the attempt timeout", "openai/hang", true},
		{"connection refused", "ollama/llama3.2", true},
		{"bad request 400 does not fall back", "openai/fail-400", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := p.NewTenant("Fallback "+tc.name, platform.AgentSpec{Name: "Fay",
				Models: []string{tc.primary, "anthropic/claude-sonnet-4-5"}})
			channel := "C0FALL" + string(rune('A'+i))
			before := len(p.LLM.Requests())
			body, _ := tn.Mention(channel, "U0BOB", "hello", platform.NewTS(), "")
			status, _ := p.PostEvent(body, 0)
			require.Equal(t, http.StatusOK, status)

			msgs := p.Slack.WaitForMessages(t, channel, 1, replyTimeout)
			var wires []string
			for _, r := range p.LLM.Requests()[before:] {
				wires = append(wires, string(r.Wire)+"/"+r.Model)
			}
			if tc.fallsBack {
				require.Equal(t, "answer from claude for claude-sonnet-4-5", msgs[0].Text)
				require.Equal(t, "anthropic/claude-sonnet-4-5", wires[len(wires)-1])
			} else {
				require.Contains(t, msgs[0].Text, "refused this request")
				for _, w := range wires {
					require.False(t, strings.HasPrefix(w, "anthropic/"), "a 400 must not fall back: %v", wires)
				}
			}

			// The audit trail has the call, with the fallback it took (or the
			// refusal), keyed to the conversation's workflow.
			trail := llmCalls(t, p, tn)
			require.Len(t, trail, 1, "one llm.call event for one model call")
			ev := trail[0]
			require.Equal(t, tn.AgentID, ev.AgentID)
			require.Equal(t, onlyConversation(t, p, tn), ev.ConversationID)
			require.True(t, strings.HasPrefix(ev.WorkflowID, "conversation/"+tn.ID+"/"), ev.WorkflowID)
			attempts, _ := ev.Data["attempts"].([]any)
			require.NotEmpty(t, attempts)
			first := attempts[0].(map[string]any)
			require.Equal(t, strings.TrimPrefix(tc.primary, strings.Split(tc.primary, "/")[0]+"/"), first["model"])
			if tc.fallsBack {
				require.Equal(t, "ok", ev.Data["outcome"])
				require.Equal(t, "anthropic", ev.Data["provider"])
				require.Equal(t, float64(1), ev.Data["fallbacks"])
				require.Len(t, attempts, 2)
				require.NotEqual(t, "ok", first["outcome"])
				require.Equal(t, "ok", attempts[1].(map[string]any)["outcome"])
				require.Contains(t, ev.Data, "input_tokens")
				require.Contains(t, ev.Data, "cost_micro_usd")
				require.Contains(t, ev.Data, "latency_ms")
			} else {
				require.Equal(t, "failed", ev.Data["outcome"])
				require.Equal(t, "request_error", first["outcome"])
				require.Equal(t, float64(1), ev.Data["activity_attempt"])
			}
		})
	}

	// The worker exposes what happened: calls by provider and outcome,
	// fallbacks, circuit state, and turn latency.
	resp, err := http.Get(p.WorkerURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	metrics := string(raw)
	require.Contains(t, metrics, "konstruct_llm_fallbacks_total")
	require.Contains(t, metrics, `konstruct_llm_circuit_state{provider="openai"}`)
	require.Regexp(t, `konstruct_llm_calls_total\{[^}]*provider="anthropic"[^}]*\} 4`, metrics)
	require.Contains(t, metrics, `konstruct_turn_latency_seconds_count{channel="slack"} 4`)
}
