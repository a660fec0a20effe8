package fakellm

import (
	"encoding/json"
	"strings"
)

// Token usage is estimated as a word count: plausible enough to test cost
// accounting, and predictable (a reply "one two three" costs 3 output tokens).

func words(s string) int { return len(strings.Fields(s)) }

func inputTokens(r Request) int {
	n := words(r.System)
	for _, m := range r.Messages {
		n += words(m.Content) + ImageTokens*len(m.Images)
		for _, c := range m.ToolCalls {
			n += argWords(c.Arguments)
		}
		for _, tr := range m.ToolResults {
			n += words(tr.Content)
		}
	}
	for _, t := range r.Tools {
		n += 1 + words(t.Description)
	}
	return max(n, 1)
}

func outputTokens(rep Reply) int {
	n := words(rep.Text)
	for _, c := range rep.ToolCalls {
		n += 1 + argWords(c.Arguments)
	}
	return max(n, 1)
}

// argWords counts the scalar values of a JSON arguments object.
func argWords(raw json.RawMessage) int {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return words(string(raw))
	}
	return countValues(v)
}

func countValues(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := 0
		for _, e := range v {
			n += countValues(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range v {
			n += countValues(e)
		}
		return n
	case string:
		return max(words(v), 1)
	case nil:
		return 0
	default:
		return 1
	}
}

func usageOf(req Request, rep Reply) Usage {
	if rep.Usage != nil {
		return *rep.Usage
	}
	return Usage{InputTokens: inputTokens(req), OutputTokens: outputTokens(rep)}
}

// args returns a call's arguments, "{}" when empty.
func args(c ToolCall) json.RawMessage {
	if len(c.Arguments) == 0 {
		return json.RawMessage(`{}`)
	}
	return c.Arguments
}
