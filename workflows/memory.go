package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/llm"
)

// changeMemory names the memory change (workflow.GetVersion). Runs that
// started before a version replay without it:
//   - 1: each delivered reply is followed by a Remember activity;
//   - 2: the window kept in state is also capped by the token budget that
//     Respond reports for the agent's model chain, not only by a count.
const changeMemory = "memory"

const (
	memoryRemember   workflow.Version = 1
	memoryTokenCap   workflow.Version = 2
	memoryMaxVersion                  = memoryTokenCap
)

// memoryVersion is the version of the memory change this run takes.
func memoryVersion(ctx workflow.Context) workflow.Version {
	return workflow.GetVersion(ctx, changeMemory, workflow.DefaultVersion, memoryMaxVersion)
}

func memoryOn(ctx workflow.Context) bool { return memoryVersion(ctx) >= memoryRemember }

// noteBudget keeps the window's token budget that Respond reported.
func (c *conversation) noteBudget(ctx workflow.Context, out activities.RespondOutput) {
	if out.WindowTokens > 0 && memoryVersion(ctx) >= memoryTokenCap {
		c.s.WindowTokens = out.WindowTokens
	}
}

// rememberWindow appends to the window, capped by count and (from
// memoryTokenCap) by the token budget of the agent's models.
func (c *conversation) rememberWindow(ctx workflow.Context, msgs ...activities.Message) {
	c.s.remember(c.in.Settings.HistoryWindow, msgs...)
	if c.s.WindowTokens > 0 && memoryVersion(ctx) >= memoryTokenCap {
		c.s.capTokens(c.s.WindowTokens)
	}
}

// capTokens drops the oldest messages of the window until it fits in budget
// tokens (estimated; the newest message always stays), never leaving tool
// results first without their call.
func (s *State) capTokens(budget int) {
	total := 0
	for _, m := range s.History {
		total += windowTokens(m)
	}
	i := 0
	for total > budget && i < len(s.History)-1 {
		total -= windowTokens(s.History[i])
		i++
	}
	for i < len(s.History)-1 && (s.History[i].Role == "tool" || len(s.History[i].ToolCalls) > 0) {
		i++
	}
	if i > 0 {
		s.History = append([]activities.Message(nil), s.History[i:]...)
	}
}

func windowTokens(m activities.Message) int {
	n := llm.MessageOverhead + llm.EstimateTokens(m.Content)
	for _, c := range m.ToolCalls {
		n += llm.MessageOverhead + llm.EstimateTokens(c.Name) + llm.EstimateTokens(string(c.Arguments))
	}
	return n
}

// rememberOptions: Remember runs after the reply is posted, so it cannot
// delay it; it is a local activity like the others, costing no server round
// trip per turn. It fails only when Postgres does (an embedding failure
// leaves the rows pending inside Postgres and is retried by the end user's
// next turn), so a few quick retries cover a blip, and giving up does not
// fail the turn: the reply is out, and only long-term memory of this turn is
// missing.
func rememberOptions() workflow.LocalActivityOptions {
	return workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Second,
			MaximumAttempts:        4,
			NonRetryableErrorTypes: []string{"BadInput"},
		},
	}
}

// rememberTurn stores the turn's user message and reply in long-term memory.
func (c *conversation) rememberTurn(ctx workflow.Context, m Inbound, reply string) {
	if !memoryOn(ctx) || m.UserID == "" {
		return
	}
	var out activities.RememberOutput
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, rememberOptions()), acts.Remember,
		activities.RememberInput{TenantID: c.in.TenantID, AgentID: c.in.AgentID, ConversationID: c.s.ConversationID,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, EndUserRef: m.UserID, Turn: c.s.Turn,
			User: m.Text, Assistant: reply}).Get(ctx, &out)
	if err != nil {
		workflow.GetLogger(ctx).Warn("could not store the turn in long-term memory", "turn", c.s.Turn, "error", err)
	}
}
