package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
)

// changeToolActivities names the change that runs a tool with side effects
// as its own regular activity (with the tool's timeout and retry policy, and
// its exactly-once record keyed by workflow, turn and call index), asks the
// model for a final answer without tools when the turn's tool rounds are used
// up, and turns a tool's final failure into a result for the model. Runs
// that used tools before it replay the old path (every tool a local activity).
const changeToolActivities = "tool-activities"

// toolMargin is added to a tool's own timeout for the activity around it
// (database claim and record, scheduling).
const toolMargin = 5 * time.Second

func specFor(specs []activities.ToolSpec, name string) activities.ToolSpec {
	for _, s := range specs {
		if s.Name == name {
			return s
		}
	}
	// Unknown to this turn (the activity answers "not enabled"): a short
	// local activity.
	return activities.ToolSpec{Name: name, Timeout: 10 * time.Second, MaxAttempts: 1}
}

// runTool runs one tool call. A tool with side effects is a regular activity:
// its attempt survives in the server's history, so a worker dying mid-call
// leads to one retry on another worker with the same idempotency key, and
// never to the turn's local activities re-running it blindly. A read-only
// tool is a local activity (cheaper; re-running it is harmless).
func (c *conversation) runTool(ctx workflow.Context, in activities.ToolInput, spec activities.ToolSpec) (activities.ToolOutput, error) {
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	attempts := spec.MaxAttempts
	if attempts <= 0 {
		attempts = 3
	}
	var res activities.ToolOutput
	if !spec.SideEffects {
		// The activity retries the tool itself, up to its MaxAttempts.
		opts := localOptions(time.Duration(attempts)*timeout + toolMargin)
		return res, workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, opts), acts.RunTool, in).Get(ctx, &res)
	}
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: timeout + toolMargin,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        int32(attempts),
			NonRetryableErrorTypes: []string{"BadInput"},
		},
	}
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), acts.RunSideEffectTool, in).Get(ctx, &res)
	if err != nil {
		// Out of attempts (or the worker died on each): the model hears that
		// the tool failed and can tell the user; the turn goes on.
		workflow.GetLogger(ctx).Warn("side-effect tool failed", "tool", in.Call.Name, "error", err)
		return activities.ToolOutput{Content: "the tool " + in.Call.Name + " failed and was not retried further; " +
			"it may or may not have taken effect. Tell the user.", IsError: true}, nil
	}
	return res, nil
}
