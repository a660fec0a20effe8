package activities

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWindowFromTurn(t *testing.T) {
	w := []Message{{Role: "user", Turn: 5}, {Role: "assistant", Turn: 5}, {Role: "user", Turn: 6}}
	require.Equal(t, 5, windowFromTurn(w, 6))
	// This turn's tool rounds carry no turn and do not matter.
	w = append(w, Message{Role: "assistant", ToolCalls: []ToolCall{{ID: "c", Name: "t"}}}, Message{Role: "tool", ToolCallID: "c"})
	require.Equal(t, 5, windowFromTurn(w, 6))
	// State from before turns were recorded: exclude every turn the window could hold.
	require.Equal(t, 3, windowFromTurn([]Message{{Role: "user"}, {Role: "assistant"}, {Role: "user", Turn: 6}}, 6))
	require.Equal(t, 6, windowFromTurn(nil, 6))
}

func TestEndUser(t *testing.T) {
	require.Equal(t, "U1", endUser(RespondInput{EndUserRef: "U1", History: []Message{{Role: "user", Author: "U2"}}}))
	require.Equal(t, "U2", endUser(RespondInput{History: []Message{{Role: "user", Author: "U2"}, {Role: "assistant"}}}),
		"workflows started before the field: the window's last user message")
}
