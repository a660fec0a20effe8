package workflows

import (
	"context"
	"fmt"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/store"
)

// Search attributes that make every conversation findable in the Web UI.
var (
	TenantIDKey           = temporal.NewSearchAttributeKeyKeyword("TenantId")
	AgentIDKey            = temporal.NewSearchAttributeKeyKeyword("AgentId")
	ChannelKey            = temporal.NewSearchAttributeKeyKeyword("Channel")
	ConversationStatusKey = temporal.NewSearchAttributeKeyKeyword("ConversationStatus")
)

// ConversationID is the workflow ID of a conversation: one per tenant,
// channel and thread, so every message of a thread reaches the same workflow.
func ConversationID(tenantID, channel, externalKey string) string {
	return "conversation/" + tenantID + "/" + channel + "/" + externalKey
}

// SlackKey addresses a Slack thread: team, channel and thread root.
func SlackKey(teamID, channelID, threadRoot string) string {
	return strings.Join([]string{teamID, channelID, threadRoot}, ":")
}

// WhatsAppKey addresses a WhatsApp conversation: the business number (its
// phone-number ID) and the end user (business-scoped user ID, else wa_id).
func WhatsAppKey(phoneNumberID, userKey string) string {
	return phoneNumberID + ":" + userKey
}

// Starter hands messages to conversations.
type Starter struct {
	Client    client.Client
	TaskQueue string
}

// Send delivers msg to the conversation's workflow, starting it if it is not
// running (SignalWithStart). When it returns nil the message is durably in
// Temporal and the webhook may acknowledge it.
func (s Starter) Send(ctx context.Context, in ConversationInput, msg Inbound) error {
	id := ConversationID(in.TenantID, in.Channel, in.ExternalKey)
	opts := client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             s.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			TenantIDKey.ValueSet(in.TenantID),
			AgentIDKey.ValueSet(in.AgentID),
			ChannelKey.ValueSet(in.Channel),
			ConversationStatusKey.ValueSet(store.ConversationActive),
		),
	}
	if _, err := s.Client.SignalWithStartWorkflow(ctx, id, SignalMessage, msg, opts, ConversationWorkflow, in); err != nil {
		return fmt.Errorf("workflows: signal-with-start %s: %w", id, err)
	}
	return nil
}
