package portal

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
)

// The agents' events read as sentences, in the shapes their writers record
// (decoded from JSON, as the store returns them).
func TestActivityWhat(t *testing.T) {
	ev := func(action, target, data string) store.AuditEvent {
		var d map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &d))
		return store.AuditEvent{Action: action, TargetID: target, Data: d}
	}
	for _, tc := range []struct {
		e    store.AuditEvent
		want string
	}{
		{ev(store.AuditLLMCall, "anthropic/claude-sonnet-4-5", `{"outcome":"ok","provider":"anthropic","model":"claude-sonnet-4-5",
			"input_tokens":1234,"output_tokens":56,"cost_micro_usd":12345,"latency_ms":789,"fallbacks":2}`),
			"called anthropic/claude-sonnet-4-5: 1,234 in, 56 out, $0.01, 789 ms after 2 fallbacks"},
		{ev(store.AuditLLMCall, "", `{"outcome":"failed","attempts":[{},{}]}`), "could not get an answer from its models (2 attempts)"},
		{ev(store.AuditEmbeddingCall, "openai/text-embedding-3-small", `{"outcome":"ok","provider":"openai","model":"text-embedding-3-small","inputs":1}`),
			"embedded 1 text with openai/text-embedding-3-small"},
		{ev(store.AuditEmbeddingCall, "doc", `{"model":"ollama/nomic-embed-text","inputs":16}`), "embedded 16 texts with ollama/nomic-embed-text"},
		{ev(store.AuditEmbeddingCall, "", `{"outcome":"failed","error_kind":"unavailable"}`), "could not embed text (unavailable)"},
		{ev(store.AuditToolCall, "current_time", `{"tool":"current_time","outcome":"ok","duration_ms":4}`), "used the tool current_time (ok, 4 ms)"},
		{ev(store.AuditKnowledgeDelete, "x", `{"title":"Returns policy"}`), "deleted the knowledge document Returns policy"},
		{ev(store.AuditEscalationStarted, "", `{"trigger":"user_request","reason":"The user asked to talk to a person."}`),
			"handed the conversation to a person (user request): The user asked to talk to a person."},
		{ev(store.AuditEscalationStaffMessage, "", `{"author":"Jane","source":"slack"}`), "Jane replied to the user (slack)"},
		{ev(store.AuditEscalationHandedBack, "", `{"reason":"sla"}`), "handed the conversation back to the agent: nobody answered in time"},
		{ev("agent.create", "", `{"name":"Ada"}`), "created the agent Ada"},
		{ev("tool.declare", "", `{}`), "tool.declare"},
	} {
		require.Equal(t, tc.want, activityWhat(tc.e), tc.e.Action)
	}
}
