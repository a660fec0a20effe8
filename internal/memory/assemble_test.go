package memory

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

func msgOf(role llm.Role, words int) llm.Message {
	return llm.Message{Role: role, Content: strings.TrimSpace(strings.Repeat("word ", words))}
}

func tokens(ms []llm.Message) int {
	n := 0
	for _, m := range ms {
		n += llm.EstimateMessageTokens(m)
	}
	return n
}

func TestBudgetFor(t *testing.T) {
	b := BudgetFor([]string{"openai/gpt-4o-mini", "ollama/llama3.2"}, 0)
	require.Equal(t, 4096-DefaultOutputTokens, b.Input, "the smallest window of the chain, minus the answer")
	require.Equal(t, int(float64(b.Input)*0.15), b.Recalled)
	require.Equal(t, b.Input-b.Recalled-b.Knowledge, b.WindowTokens())
	require.Equal(t, 128_000-500, BudgetFor([]string{"openai/gpt-4o-mini"}, 500).Input)
}

func TestCutWindowKeepsNewestWithinBudget(t *testing.T) {
	var w []llm.Message
	for i := 0; i < 10; i++ {
		w = append(w, msgOf(llm.RoleUser, 30), msgOf(llm.RoleAssistant, 30))
	}
	w = append(w, msgOf(llm.RoleUser, 5)) // the new message
	per := llm.EstimateMessageTokens(w[0])

	start := CutWindow(w, 5*per+llm.EstimateMessageTokens(w[len(w)-1]))
	require.Equal(t, len(w)-6, start, "the five newest plus the new message")
	require.LessOrEqual(t, tokens(w[start:]), 5*per+llm.EstimateMessageTokens(w[len(w)-1]))
	require.Zero(t, CutWindow(w, 1<<20), "everything fits")
	require.Equal(t, len(w)-1, CutWindow(w, 1), "the new message is always sent, even over budget")
}

// A tool call is never separated from its results: they go together or stay
// together, and the window never starts with a result.
func TestCutWindowKeepsToolCallsWithResults(t *testing.T) {
	call := llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{
		{ID: "c1", Name: "kb_search", Arguments: json.RawMessage(`{"q":"refund policy"}`)},
		{ID: "c2", Name: "current_time", Arguments: json.RawMessage(`{}`)}}}
	r1 := llm.Message{Role: llm.RoleTool, ToolCallID: "c1", Content: strings.Repeat("policy ", 40)}
	r2 := llm.Message{Role: llm.RoleTool, ToolCallID: "c2", Content: "12:00"}
	w := []llm.Message{msgOf(llm.RoleUser, 10), call, r1, r2, msgOf(llm.RoleAssistant, 10), msgOf(llm.RoleUser, 3)}
	tail := tokens(w[4:])
	unit := tokens(w[1:4])

	for budget := tail; budget < tail+unit+50; budget++ {
		start := CutWindow(w, budget)
		require.NotEqual(t, llm.RoleTool, w[start].Role, "budget %d: starts with a tool result", budget)
		require.NotContains(t, []int{2, 3}, start, "budget %d: the call was cut from its results", budget)
		if budget < tail+unit {
			require.Equal(t, 4, start, "budget %d: the whole unit goes", budget)
		}
	}
	require.Equal(t, 1, CutWindow(w, tail+unit), "the call and both results fit together")
	// A window that begins with an orphaned result (its call cut by the
	// workflow's count cap) skips it.
	require.Equal(t, 1, CutWindow([]llm.Message{r2, msgOf(llm.RoleAssistant, 3), msgOf(llm.RoleUser, 3)}, 1<<20))
}

func TestFitRecalled(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var ms []store.Recalled
	for i := 0; i < 5; i++ {
		ms = append(ms, store.Recalled{Memory: store.Memory{Kind: store.MemoryMessage, Role: "user",
			Content: strings.Repeat("fact ", 20), CreatedAt: at}})
	}
	line := llm.EstimateTokens(recalledLine(ms[0])) + 2
	head := llm.EstimateTokens(RecalledHeading) + 2
	require.Len(t, FitRecalled(ms, head+2*line), 2, "the two most relevant")
	require.Len(t, FitRecalled(ms, 1<<20), 5)
	require.Empty(t, FitRecalled(ms, head))

	sys := WithRecalled("You are Ada.", ms[:1])
	require.Equal(t, "You are Ada.\n\n"+RecalledHeading+"\n- [2026-12-01, the user said] "+strings.TrimSpace(ms[0].Content), sys)
}

func TestFitWindowLeavesTheSharesFree(t *testing.T) {
	b := Budget{Input: 1000, Recalled: 150, Knowledge: 250}
	var w []llm.Message
	for i := 0; i < 40; i++ {
		w = append(w, msgOf(llm.RoleUser, 20))
	}
	system := strings.Repeat("rule ", 100)
	start := FitWindow(b, system, w)
	require.LessOrEqual(t, tokens(w[start:]), 1000-150-250-llm.EstimateTokens(system))
	require.Greater(t, tokens(w[start-1:]), 1000-150-250-llm.EstimateTokens(system), "no more than needed is cut")
}
