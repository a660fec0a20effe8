package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
)

// changeMemory names the long-term memory change (workflow.GetVersion): from
// version 1 each delivered reply is followed by a Remember activity. Runs
// that started before it replay without one.
const changeMemory = "memory"

// memoryOn reports whether this run takes the memory change.
func memoryOn(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, changeMemory, workflow.DefaultVersion, 1) >= 1
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
