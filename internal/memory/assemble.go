package memory

import (
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

// Shares of a prompt's input budget. The system prompt and the new message
// are always sent whole; recalled memories and knowledge get at most their
// share; the window gets the rest, cut from its oldest end. A share a part
// does not use goes to the window.
const (
	RecalledShare  = 0.15
	KnowledgeShare = 0.25
	// DefaultOutputTokens is kept free for the answer when the request sets
	// no MaxTokens (Anthropic's default in this platform).
	DefaultOutputTokens = 1024
)

// Budget is the token budget of one prompt.
type Budget struct {
	Input     int // what the prompt may use: context window minus the answer's reserve
	Recalled  int // at most, for recalled memories
	Knowledge int // at most, for knowledge passages
}

// BudgetFor splits the smallest context window of chain.
func BudgetFor(chain []string, maxOutput int) Budget {
	if maxOutput <= 0 {
		maxOutput = DefaultOutputTokens
	}
	in := max(llm.ChainContextWindow(chain)-maxOutput, 256)
	return Budget{Input: in, Recalled: int(float64(in) * RecalledShare), Knowledge: int(float64(in) * KnowledgeShare)}
}

// WindowTokens is how much of a conversation's window a workflow keeps for
// chain: the input budget minus the shares of the other parts.
func (b Budget) WindowTokens() int { return max(b.Input-b.Recalled-b.Knowledge, 0) }

// CutWindow returns the index of the first message of window to keep so that
// the kept tail fits in budget tokens. The last message (the new one) is
// always kept. Whole units are cut, oldest first: an assistant message that
// called tools goes with the tool results that answer it, never one without
// the other, and the kept part never starts with a tool result.
func CutWindow(window []llm.Message, budget int) int {
	if len(window) == 0 {
		return 0
	}
	// Units: [start, end) ranges, each a message, or a tool call with its results.
	type unit struct{ start, end, tokens int }
	var units []unit
	for i := 0; i < len(window); {
		u := unit{start: i}
		u.tokens = llm.EstimateMessageTokens(window[i])
		j := i + 1
		if len(window[i].ToolCalls) > 0 {
			for j < len(window) && window[j].Role == llm.RoleTool {
				u.tokens += llm.EstimateMessageTokens(window[j])
				j++
			}
		}
		u.end = j
		units = append(units, u)
		i = j
	}
	used := units[len(units)-1].tokens // the new message, always sent
	first := len(units) - 1
	for k := len(units) - 2; k >= 0; k-- {
		if used+units[k].tokens > budget {
			break
		}
		used += units[k].tokens
		first = k
	}
	start := units[first].start
	// Orphaned tool results (their call was cut before this window began).
	for start < len(window)-1 && window[start].Role == llm.RoleTool {
		start++
	}
	return start
}

// FitRecalled keeps the most relevant memories (ms is nearest first) whose
// lines fit in budget tokens.
func FitRecalled(ms []store.Recalled, budget int) []store.Recalled {
	used := llm.EstimateTokens(RecalledHeading) + 2
	for i, m := range ms {
		used += llm.EstimateTokens(recalledLine(m)) + 2
		if used > budget {
			return ms[:i]
		}
	}
	return ms
}

// FitWindow keeps the newest messages of window fitting in what budget
// leaves after the system prompt (and the recall and knowledge shares): the
// index to start from.
func FitWindow(b Budget, system string, window []llm.Message) int {
	return CutWindow(window, b.Input-llm.EstimateTokens(system)-b.Recalled-b.Knowledge)
}
