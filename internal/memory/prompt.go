package memory

import (
	"strings"

	"github.com/konstruct/konstruct/internal/store"
)

// RecalledHeading introduces recalled memories in the system prompt.
const RecalledHeading = "Things you remember from earlier in your conversations with this user " +
	"(most relevant first; use them when they help, and trust the current conversation when they disagree):"

// WithRecalled appends recalled memories to a system prompt, one line each,
// labelled with who said it and when.
func WithRecalled(system string, ms []store.Recalled) string {
	if len(ms) == 0 {
		return system
	}
	var b strings.Builder
	b.WriteString(system)
	b.WriteString("\n\n")
	b.WriteString(RecalledHeading)
	for _, m := range ms {
		b.WriteString("\n- ")
		b.WriteString(recalledLine(m))
	}
	return b.String()
}

func recalledLine(m store.Recalled) string {
	who := "the user said"
	switch {
	case m.Kind == store.MemorySummary:
		who = "summary of a conversation"
	case m.Role == "assistant":
		who = "you said"
	}
	content := strings.Join(strings.Fields(m.Content), " ") // one line
	return "[" + m.CreatedAt.UTC().Format("2006-01-02") + ", " + who + "] " + content
}
