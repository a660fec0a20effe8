package escalation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/konstruct/konstruct/internal/inbox"
	"github.com/konstruct/konstruct/internal/store"
)

// SignalMessage is the conversation workflow's signal (workflows.SignalMessage).
// Staff actions travel on it, in one queue with the user's messages, so the
// workflow handles them in the order they arrived — the same order on every
// replay of a workflow task — and their effects (turn numbers, delivery
// keys) come out the same each time.
const SignalMessage = "message"

// Signal is the signal payload of a staff action: the fields of
// workflows.Inbound it sets (a workflows test keeps the shapes in step).
type Signal struct {
	EventID    string       `json:"event_id"`
	ReceivedAt time.Time    `json:"received_at"`
	Staff      *StaffAction `json:"staff"`
}

// Staff action kinds.
const (
	ActionReply   = "reply"   // a message for the end user
	ActionClaim   = "claim"   // "Take it": a staff member owns the conversation
	ActionResolve = "resolve" // hand the conversation back to the agent
)

// Where a staff action came from.
const (
	SourceSlack  = "slack"  // a reply in the handoff's thread, or a button
	SourcePortal = "portal" // the portal's escalation page
	SourceAPI    = "api"    // POST /api/v1/.../escalations/{id}/...
)

// StaffAction is what a staff member did to an escalation. It is recorded in
// the inbox and handed to the conversation workflow on its message signal,
// in order with the conversation's messages. Its JSON shape is part of the workflow's
// replay contract.
type StaffAction struct {
	EventID      string    `json:"event_id"` // dedupes a repeated delivery
	EscalationID string    `json:"escalation_id"`
	Kind         string    `json:"kind"`
	Text         string    `json:"text,omitempty"`
	Author       string    `json:"author,omitempty"`     // as the end user sees it; "" resolves to a name
	AuthorRef    string    `json:"author_ref,omitempty"` // "slack:T1:U1" or "user:<uuid>"
	Source       string    `json:"source"`
	ReceivedAt   time.Time `json:"received_at"`
}

// StaffEvent is the inbox payload of a staff action.
type StaffEvent struct {
	WorkflowID string      `json:"workflow_id"`
	Action     StaffAction `json:"action"`
}

// Signaler sends a signal to a running workflow (client.Client).
type Signaler interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

var _ Signaler = client.Client(nil)

// InboxHandler delivers recorded staff actions to their conversations: the
// inbox dispatcher's handler for the "escalation" source. A conversation
// with an open escalation stays running, so a workflow that is gone means
// the action came too late; it is rejected, not retried forever.
type InboxHandler struct {
	Client Signaler
}

// Deliver signals the action's conversation.
func (h InboxHandler) Deliver(ctx context.Context, ev store.InboxEvent) error {
	var se StaffEvent
	if err := json.Unmarshal(ev.Payload, &se); err != nil {
		return inbox.Permanent(fmt.Errorf("escalation: decode inbox event %d: %w", ev.ID, err))
	}
	if se.WorkflowID == "" || se.Action.EscalationID == "" {
		return inbox.Permanent(fmt.Errorf("escalation: inbox event %d names no workflow or escalation", ev.ID))
	}
	if !strings.HasPrefix(se.WorkflowID, "conversation/"+ev.TenantID.String()+"/") {
		// The payload's conversation is the row's tenant's, or it is not sent.
		return inbox.Permanent(fmt.Errorf("escalation: inbox event %d names workflow %s in a row of %s", ev.ID, se.WorkflowID, ev.TenantID))
	}
	a := se.Action
	err := h.Client.SignalWorkflow(ctx, se.WorkflowID, "", SignalMessage, Signal{EventID: a.EventID, ReceivedAt: a.ReceivedAt, Staff: &a})
	var notFound *serviceerror.NotFound
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &notFound) || errors.As(err, &invalid) {
		return inbox.Permanent(fmt.Errorf("escalation: signal %s: %w", se.WorkflowID, err))
	}
	if err != nil {
		return fmt.Errorf("escalation: signal %s: %w", se.WorkflowID, err)
	}
	return nil
}

// Record writes a staff action to the inbox in its tenant's scope, ordered
// with the conversation's messages (its workflow ID). recorded is false for
// a repeated event ID.
func Record(ctx context.Context, s *store.Store, h store.Handoff, a StaffAction) (bool, error) {
	payload, err := json.Marshal(StaffEvent{WorkflowID: h.WorkflowID, Action: a})
	if err != nil {
		return false, fmt.Errorf("escalation: encode action: %w", err)
	}
	return s.RecordInbound(ctx, h.TenantID, store.InboxEvent{Source: store.SourceEscalation, EventID: a.EventID,
		OrderingKey: h.WorkflowID, Payload: payload})
}
