package llm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestContextWindow(t *testing.T) {
	require.Equal(t, 128_000, ContextWindow("openai/gpt-4o-mini"))
	require.Equal(t, 128_000, ContextWindow("openai/gpt-4o-2024-08-06"))
	require.Equal(t, 200_000, ContextWindow("anthropic/claude-sonnet-4-5"))
	require.Equal(t, 4_096, ContextWindow("ollama/llama3.2"), "Ollama's default num_ctx, whatever the model")
	require.Equal(t, DefaultContextWindow, ContextWindow("openai/some-new-model"))
	require.Equal(t, 4_096, ChainContextWindow([]string{"anthropic/claude-sonnet-4-5", "ollama/llama3.2"}), "the smallest of the chain")
	require.Equal(t, DefaultContextWindow, ChainContextWindow(nil))
}

func TestEstimateTokens(t *testing.T) {
	require.Zero(t, EstimateTokens(""))
	// "The quick brown fox jumps over the lazy dog." is 10 tokens in cl100k.
	n := EstimateTokens("The quick brown fox jumps over the lazy dog.")
	require.GreaterOrEqual(t, n, 10)
	require.LessOrEqual(t, n, 14)
	// CJK: about a token per character.
	require.Equal(t, 6, EstimateTokens("東京都の天気"))
	// Long English: within a few percent above 1 token per 4.2 bytes.
	long := strings.Repeat("Konstruct keeps each conversation in a durable workflow. ", 100)
	require.InDelta(t, float64(len(long))/4, float64(EstimateTokens(long)), float64(len(long))/4*0.1)
	require.Equal(t, MessageOverhead+2, EstimateMessageTokens(Message{Role: RoleUser, Content: "hello"}))
}
