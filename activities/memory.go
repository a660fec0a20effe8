package activities

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/memory"
	"github.com/konstruct/konstruct/internal/store"
)

// RememberInput stores one delivered turn in long-term memory.
type RememberInput struct {
	TenantID       string `json:"tenant_id"`
	AgentID        string `json:"agent_id"`
	ConversationID string `json:"conversation_id"`
	WorkflowID     string `json:"workflow_id"`
	EndUserRef     string `json:"end_user_ref"`
	Turn           int    `json:"turn"`
	User           string `json:"user,omitempty"`      // the user's message
	Assistant      string `json:"assistant,omitempty"` // the reply delivered
}

// RememberOutput says what was stored and embedded.
type RememberOutput struct {
	Stored   int `json:"stored"`
	Embedded int `json:"embedded"`
	Pending  int `json:"pending"`
}

// Remember runs after a reply is delivered: it stores the turn's user and
// assistant messages as memories of the end user (keyed by workflow and turn,
// so a retry writes nothing twice) and embeds them together with anything an
// earlier failure left pending. An embedding failure is not an activity
// failure — the rows stay pending and the next turn retries them — so the
// only errors are Postgres ones, which Temporal retries.
func (a *Conversation) Remember(ctx context.Context, in RememberInput) (RememberOutput, error) {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("agent_id", in.AgentID))
	if !a.Memory.Enabled() || in.EndUserRef == "" {
		return RememberOutput{}, nil
	}
	tenantID, convID, err := parseIDs(in.TenantID, in.ConversationID)
	if err != nil {
		return RememberOutput{}, err
	}
	_, agentID, err := parseIDs(in.TenantID, in.AgentID)
	if err != nil {
		return RememberOutput{}, err
	}
	turnKey := in.WorkflowID + ":" + strconv.Itoa(in.Turn)
	var ms []store.Memory
	if strings.TrimSpace(in.User) != "" {
		ms = append(ms, store.Memory{Turn: in.Turn, Kind: store.MemoryMessage, Role: "user", Content: in.User, IdempotencyKey: turnKey + ":mem:user"})
	}
	if strings.TrimSpace(in.Assistant) != "" {
		ms = append(ms, store.Memory{Turn: in.Turn, Kind: store.MemoryMessage, Role: "assistant", Content: in.Assistant, IdempotencyKey: turnKey + ":mem:assistant"})
	}
	r, err := a.Memory.Remember(ctx, memory.Target{TenantID: tenantID, AgentID: agentID, ConversationID: convID,
		EndUserRef: in.EndUserRef, WorkflowID: in.WorkflowID, EmbedKey: store.AuditKeyEmbed(in.WorkflowID, in.Turn, 1)}, ms)
	if err != nil {
		return RememberOutput{}, fmt.Errorf("activities: remember: %w", err)
	}
	return RememberOutput{Stored: r.Stored, Embedded: r.Embedded, Pending: r.Pending}, nil
}

// endUser is the end user a turn is for: the workflow says so, or (for
// workflows started before it did) the author of the window's last user message.
func endUser(in RespondInput) string {
	if in.EndUserRef != "" {
		return in.EndUserRef
	}
	for i := len(in.History) - 1; i >= 0; i-- {
		if in.History[i].Role == "user" {
			return in.History[i].Author
		}
	}
	return ""
}

// userText is the newest user message of the window (the turn's message).
func userText(in RespondInput) string {
	for i := len(in.History) - 1; i >= 0; i-- {
		if in.History[i].Role == "user" {
			return in.History[i].Content
		}
	}
	return ""
}

// windowFromTurn is the first turn still in window, whose messages are in
// the prompt already and so are not recalled. A message without a turn
// (state from before turns were recorded) makes it conservative: every turn
// the window could hold is excluded.
func windowFromTurn(window []Message, turn int) int {
	from := 0
	for _, m := range window {
		if m.Turn <= 0 && (m.Role == "tool" || len(m.ToolCalls) > 0) {
			continue // this turn's tool rounds, which the workflow does not number
		}
		if m.Turn <= 0 {
			return max(1, turn-len(window))
		}
		if from == 0 || m.Turn < from {
			from = m.Turn
		}
	}
	if from == 0 {
		return turn
	}
	return from
}

// prompt builds the model request of a turn within the context window of
// the agent's chain (its smallest model): the agent's system prompt and the
// new message whole; what the end user's long-term memory recalls for the
// new message, within its share; and as much of the window as fits, cut from
// the oldest end, a tool call never apart from its results. Whatever the
// recall leaves of its share goes back to the window. A recall failure is
// logged and the turn answers without memories: memory never stops a reply.
func (a *Conversation) prompt(ctx context.Context, tenantID, convID uuid.UUID, agent store.Agent, chain []string, tools []llm.ToolDef, in RespondInput, attach func([]llm.Message)) (llm.Request, memory.Budget) {
	system := agents.SystemPrompt(agent, in.Channel)
	b := memory.BudgetFor(chain, 0)
	b.Knowledge = 0 // knowledge reaches this prompt as tool results, inside the window
	fixed := llm.EstimateTokens(system)
	for _, t := range tools {
		fixed += llm.EstimateTokens(t.Name) + llm.EstimateTokens(t.Description) + llm.EstimateTokens(string(t.Parameters))
	}
	msgs := toLLM(in.History)
	attach(msgs) // the turn's images, counted in the budget like the rest
	start := memory.CutWindow(msgs, b.Input-fixed-b.Recalled)
	req := llm.Request{System: system, Messages: msgs[start:], Tools: tools}
	if !a.Memory.Enabled() {
		if s := memory.CutWindow(msgs, b.Input-fixed); s < start {
			req.Messages = msgs[s:]
		}
		return req, b
	}
	text := userText(in)
	rec, err := a.Memory.Recall(ctx, memory.Query{TenantID: tenantID, AgentID: agent.ID, EndUserRef: endUser(in), Text: text,
		ConversationID: convID, FromTurn: windowFromTurn(in.History[start:], in.Turn), WorkflowID: in.WorkflowID,
		TurnKey: in.WorkflowID + ":" + strconv.Itoa(in.Turn), EmbedKey: store.AuditKeyEmbed(in.WorkflowID, in.Turn, 0)})
	if err != nil {
		a.Logger.WarnContext(ctx, "memory: recall failed; answering without long-term memory", "turn", in.Turn, "error", err)
	}
	recalled := memory.FitRecalled(rec.Memories, b.Recalled)
	withRecalled := memory.WithRecalled(system, recalled)
	// The recall's unused share goes back to the window; what the window then
	// holds again is no longer "recalled".
	if s := memory.CutWindow(msgs, b.Input-fixed-(llm.EstimateTokens(withRecalled)-llm.EstimateTokens(system))); s < start {
		start = s
		from := windowFromTurn(in.History[start:], in.Turn)
		kept := recalled[:0:0]
		for _, m := range recalled {
			if m.ConversationID != convID || m.Turn < from {
				kept = append(kept, m)
			}
		}
		recalled, withRecalled = kept, memory.WithRecalled(system, kept)
	}
	req.System, req.Messages = withRecalled, msgs[start:]
	return req, b
}
