package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"

	"github.com/konstruct/konstruct/internal/inbox"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/workflows"
)

// Sender hands a message to its conversation workflow (workflows.Starter).
type Sender interface {
	Send(ctx context.Context, in workflows.ConversationInput, msg workflows.Inbound) error
}

// ConversationEvent is the inbox payload of a chat message (Slack or
// WhatsApp, or a WhatsApp delivery failure the conversation acts on): what
// SignalWithStart needs, fixed at arrival.
type ConversationEvent struct {
	Input   workflows.ConversationInput `json:"input"`
	Message workflows.Inbound           `json:"message"`
}

// RecordConversationEvent writes a chat message to the inbox in its tenant's
// scope, ordered by its conversation's workflow ID. recorded is false when the
// same event (tenant, source, event ID) is already there.
func RecordConversationEvent(ctx context.Context, s *store.Store, tenantID uuid.UUID, source string,
	in workflows.ConversationInput, msg workflows.Inbound) (bool, error) {
	payload, err := json.Marshal(ConversationEvent{Input: in, Message: msg})
	if err != nil {
		return false, fmt.Errorf("webhooks: encode event: %w", err)
	}
	return s.RecordInbound(ctx, tenantID, store.InboxEvent{Source: source, EventID: msg.EventID,
		OrderingKey: workflows.ConversationID(in.TenantID, in.Channel, in.ExternalKey), Payload: payload})
}

// ConversationHandler delivers recorded chat messages to their conversation
// workflows: the inbox dispatcher's handler for Slack and WhatsApp. A
// repeated delivery is harmless: the workflow drops event IDs it has seen.
type ConversationHandler struct {
	Sender Sender
}

// Deliver signals (starting if need be) the event's conversation.
func (h ConversationHandler) Deliver(ctx context.Context, ev store.InboxEvent) error {
	var ce ConversationEvent
	if err := json.Unmarshal(ev.Payload, &ce); err != nil {
		return inbox.Permanent(fmt.Errorf("webhooks: decode inbox event %d: %w", ev.ID, err))
	}
	if ce.Input.TenantID != ev.TenantID.String() {
		// The payload names the tenant the row is scoped to, or it is not sent.
		return inbox.Permanent(fmt.Errorf("webhooks: inbox event %d names tenant %s in a row of %s", ev.ID, ce.Input.TenantID, ev.TenantID))
	}
	err := h.Sender.Send(ctx, ce.Input, ce.Message)
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) {
		return inbox.Permanent(err)
	}
	return err
}
