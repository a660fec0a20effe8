package agents_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

func TestKBTopKDefaultsAndBounds(t *testing.T) {
	in := agents.Input{Name: "Ada"}
	require.NoError(t, agents.Validate(&in, nil))
	require.Zero(t, in.KBTopK, "not given: the store's default on create, unchanged on update")
	for _, k := range []int{-1, 21} {
		in := agents.Input{Name: "Ada", KBTopK: k}
		err := agents.Validate(&in, nil)
		require.Error(t, err)
		require.Equal(t, "kb_top_k", apperr.From(err).Field)
	}
	in = agents.Input{Name: "Ada", KBTopK: 12}
	require.NoError(t, agents.Validate(&in, nil))
	require.Equal(t, 12, in.KBTopK)
}

func TestSystemPromptAsksForCitationsOnlyWithKBSearch(t *testing.T) {
	with := agents.SystemPrompt(store.Agent{Name: "Ada", Tools: []string{"current_time", agents.KBSearchTool}}, store.ChannelSlack)
	require.Contains(t, with, "kb_search")
	require.Contains(t, with, "[Title §n]")
	without := agents.SystemPrompt(store.Agent{Name: "Ada", Tools: []string{"current_time"}}, store.ChannelSlack)
	require.NotContains(t, without, "kb_search")
}
