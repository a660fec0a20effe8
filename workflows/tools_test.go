package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/activities"
)

// A model that keeps calling tools: read-only ones run as local activities,
// side-effect ones as regular activities; a side-effect tool that fails for
// good is an error result, not a failed turn; call indexes count across
// rounds; after MaxToolRounds the model is asked for a final answer.
func TestToolRoundsSideEffectsAndFinalAnswer(t *testing.T) {
	env, f := newEnv(t)
	var mu sync.Mutex
	var local, effect []activities.ToolInput
	var finals []bool
	var effectAttempts int32
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.RespondInput) (activities.RespondOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		finals = append(finals, in.FinalAnswer)
		if in.FinalAnswer {
			return activities.RespondOutput{AgentStatus: activities.AgentActive, Text: "final"}, nil
		}
		return activities.RespondOutput{AgentStatus: activities.AgentActive, Tools: []string{"read", "refund"},
			ToolSpecs: []activities.ToolSpec{{Name: "read", Timeout: time.Second, MaxAttempts: 1},
				{Name: "refund", SideEffects: true, Timeout: time.Second, MaxAttempts: 2}},
			ToolCalls: []activities.ToolCall{{ID: "x", Name: "read"}, {ID: "x", Name: "refund"}}}, nil
	}, activityName("Respond"))
	env.RegisterActivityWithOptions(func(_ context.Context, in activities.ToolInput) (activities.ToolOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		local = append(local, in)
		return activities.ToolOutput{Content: "read ok"}, nil
	}, activityName("RunTool"))
	env.RegisterActivityWithOptions(func(ctx context.Context, in activities.ToolInput) (activities.ToolOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		effectAttempts = activity.GetInfo(ctx).Attempt
		effect = append(effect, in)
		return activities.ToolOutput{}, temporal.NewApplicationError("remote down", activities.ErrToolFailed, errors.New("503"))
	}, activityName("RunSideEffectTool"))
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, msg("e1", "refund everything")) }, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, []string{"reply: final"}, f.texts())
	rounds := DefaultSettings.MaxToolRounds
	require.Len(t, finals, rounds+1)
	require.True(t, finals[rounds], "the last respond asks for an answer without tools")
	require.False(t, finals[0])
	require.Len(t, local, rounds)
	require.Len(t, effect, rounds*2, "each side-effect call retried up to its MaxAttempts")
	require.EqualValues(t, 2, effectAttempts)
	var idx []int
	for _, in := range local {
		idx = append(idx, in.Index)
		require.Equal(t, 1, in.Turn)
		require.NotEmpty(t, in.WorkflowID)
	}
	require.Equal(t, []int{0, 2, 4, 6}, idx, "indexes count every call of the turn")
	require.Equal(t, 1, effect[0].Index)
	require.Equal(t, effect[0].Index, effect[1].Index, "a retry is the same call")
}
