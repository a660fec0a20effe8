package llm

import (
	"strings"
	"unicode/utf8"
)

// Context windows in tokens, by model family (prefix match after the
// provider). They are the vendors' published input limits; a model that is
// not listed gets DefaultContextWindow, a conservative size every current
// chat model exceeds, so an unknown model's prompt is never cut too late.
var contextWindows = []struct {
	prefix string
	tokens int
}{
	// Longest prefixes first.
	{"gpt-4o-mini", 128_000},
	{"gpt-4o", 128_000},
	{"gpt-4.1", 1_047_576},
	{"gpt-4-turbo", 128_000},
	{"gpt-5", 400_000},
	{"gpt-3.5-turbo", 16_385},
	{"o1-mini", 128_000},
	{"o1", 200_000},
	{"o3", 200_000},
	{"o4-mini", 200_000},
	{"claude-", 200_000},
}

// DefaultContextWindow is the context of a model the table does not know.
const DefaultContextWindow = 8_192

// OllamaContextWindow is what Ollama gives a model unless its Modelfile or
// the request sets num_ctx (4096 since Ollama 0.6). Ollama silently drops the
// start of a longer prompt — the system prompt first — so the budget must
// respect it whatever the model could do.
const OllamaContextWindow = 4_096

// ContextWindow returns the context window of "provider/model" in tokens.
func ContextWindow(model string) int {
	provider, name, ok := strings.Cut(model, "/")
	if !ok {
		name = model
	}
	if provider == ProviderOllama {
		return OllamaContextWindow
	}
	for _, w := range contextWindows {
		if strings.HasPrefix(name, w.prefix) {
			return w.tokens
		}
	}
	return DefaultContextWindow
}

// ChainContextWindow is the smallest context window of a chain: the prompt
// must fit whichever model the pool falls back to.
func ChainContextWindow(chain []string) int {
	n := 0
	for _, m := range chain {
		if w := ContextWindow(m); n == 0 || w < n {
			n = w
		}
	}
	if n == 0 {
		return DefaultContextWindow
	}
	return n
}

// EstimateTokens estimates the tokens of s for the BPE tokenizers of current
// models, without a tokenizer: ASCII text at 4 bytes a token (English
// averages about 4.2 with cl100k/o200k), each non-ASCII rune as one token
// (CJK is about one; accented Latin text is overestimated), and never fewer
// than 4/3 of its words. It errs high, which a budget can afford: a prompt
// cut slightly early, never one the model rejects or truncates. It is pure
// and deterministic, so workflow code may call it.
func EstimateTokens(s string) int {
	if s == "" {
		return 0
	}
	ascii, other, words, inWord := 0, 0, 0, false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			ascii++
			i++
			space := c == ' ' || c == '\n' || c == '\t' || c == '\r'
			if !space && !inWord {
				words++
			}
			inWord = !space
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		other++
		i += size
		if !inWord {
			words++
		}
		inWord = true
	}
	return max((ascii+3)/4+other, (words*4+2)/3)
}

// MessageOverhead is the per-message framing (role, separators) the chat
// formats add, in tokens.
const MessageOverhead = 4

// EstimateMessageTokens estimates one message of a request, tool calls and
// images included.
func EstimateMessageTokens(m Message) int {
	n := MessageOverhead + EstimateTokens(m.Content) + len(m.Images)*ImageTokens
	for _, c := range m.ToolCalls {
		n += MessageOverhead + EstimateTokens(c.Name) + EstimateTokens(string(c.Arguments))
	}
	return n
}
