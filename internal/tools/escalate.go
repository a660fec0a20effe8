package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// EscalateToHumanTool is the name of the built-in handoff tool.
const EscalateToHumanTool = "escalate_to_human"

// EscalateToHuman lets the model hand the conversation to the tenant's
// support staff when it cannot help or the user needs a person. It is
// offered automatically to agents whose escalation is on. Running it only
// validates and acknowledges the call: the conversation workflow sees the
// call and performs the handoff (its single writer owns the state).
func EscalateToHuman() *Tool {
	return &Tool{
		Name:      EscalateToHumanTool,
		Title:     "Hand off to a human",
		Automatic: true,
		Description: "Hands this conversation to a person from the support team. Call it when the user asks for a person, " +
			"when you cannot resolve their request, or when it needs a human decision (complaints, refunds, account " +
			"problems). A person then replies in this conversation and you stop answering until they hand it back.",
		Timeout:     5 * time.Second,
		MaxAttempts: 1,
		Parameters: json.RawMessage(`{
			"type": "object",
			"additionalProperties": false,
			"required": ["reason"],
			"properties": {
				"reason": {"type": "string", "minLength": 3, "maxLength": 500,
					"description": "Why a person should take over, in one sentence for the support team"}
			}
		}`),
		Run: func(_ context.Context, _ Invocation, raw json.RawMessage) (Result, error) {
			reason, err := EscalationReason(raw)
			if err != nil {
				return Result{}, err
			}
			return Result{Content: "The conversation is being handed to a person from the support team.",
				Data: map[string]any{"reason": reason}}, nil
		},
	}
}

// EscalationReason reads the reason of an escalate_to_human call.
func EscalationReason(raw json.RawMessage) (string, error) {
	var args struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(raw, &args); err != nil {
		return "", fmt.Errorf("escalate_to_human: %w", err)
	}
	return strings.TrimSpace(args.Reason), nil
}
