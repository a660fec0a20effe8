// Package activities holds the side effects of a conversation: reading and
// recording in Postgres, calling the LLM pool, running tools and posting to
// channels. Activities are methods on structs whose clients are injected when
// the worker starts; each takes one input struct and returns one output struct.
package activities

import (
	"encoding/json"
	"time"
)

// Message is one entry of the conversation window the model sees. It lives in
// workflow state and history, so its JSON shape is part of the replay contract.
type Message struct {
	Role       string     `json:"role"` // user | assistant | tool
	Content    string     `json:"content,omitempty"`
	Author     string     `json:"author,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	// Turn is the turn the message belongs to (0 in state recorded before
	// turns were kept): what is still in the window is not recalled from
	// long-term memory.
	Turn int `json:"turn,omitempty"`
}

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// Address says where in a channel a conversation lives.
type Address struct {
	TeamID    string `json:"team_id,omitempty"`    // Slack workspace
	ChannelID string `json:"channel_id,omitempty"` // Slack channel or DM
	ThreadTS  string `json:"thread_ts,omitempty"`  // Slack thread root
	// WhatsApp: the business number (its Graph API phone-number ID, which
	// names the connection) and the end user messages are sent to.
	PhoneNumberID string `json:"phone_number_id,omitempty"`
	Recipient     string `json:"recipient,omitempty"`
}

// MediaRef points at a file an end user sent with a message (an image), as
// the channel's webhook described it. The bytes are fetched by an activity
// before the turn that needs them; the reference travels in signals and
// workflow state, so its JSON shape is part of the replay contract.
type MediaRef struct {
	Source   string `json:"source"`              // "slack" | "whatsapp"
	ID       string `json:"id"`                  // Slack file ID or WhatsApp media ID
	URL      string `json:"url,omitempty"`       // Slack url_private_download (WhatsApp URLs are resolved at fetch time)
	MimeType string `json:"mime_type,omitempty"` // as announced by the channel; checked again on the bytes
	SHA256   string `json:"sha256,omitempty"`    // the channel's hash of the bytes, when it gives one
	Size     int64  `json:"size,omitempty"`      // announced size in bytes, when known
	Name     string `json:"name,omitempty"`      // file name, when known
	Caption  string `json:"caption,omitempty"`   // text sent with the file (WhatsApp captions)
}

// DeliveryFailure is Meta's report (a status webhook) that a message it had
// accepted failed, handed to the conversation it belongs to. It travels in
// signals and workflow state: its JSON shape is part of the replay contract.
type DeliveryFailure struct {
	WAMID string `json:"wamid"`
	Key   string `json:"key"`  // the failed part's outbound key
	Turn  int    `json:"turn"` // the turn the part belongs to
	Code  int    `json:"code"` // Meta's error code (131047: outside the 24-hour window)
	Title string `json:"title,omitempty"`
}

// UserMessage is an inbound message to record.
type UserMessage struct {
	Text       string `json:"text"`
	Author     string `json:"author,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
}

// OpenInput identifies a conversation at the start of a workflow run.
type OpenInput struct {
	TenantID      string `json:"tenant_id"`
	AgentID       string `json:"agent_id"`
	WorkflowID    string `json:"workflow_id"`
	Channel       string `json:"channel"`
	ExternalKey   string `json:"external_key"`
	UserRef       string `json:"user_ref,omitempty"`
	HistoryWindow int    `json:"history_window"`
}

// OpenOutput is the conversation's record and recent history, so a thread
// that resumes after its workflow ended picks up where it left off.
type OpenOutput struct {
	ConversationID string    `json:"conversation_id"`
	Turns          int       `json:"turns"`
	History        []Message `json:"history,omitempty"`
}

// RespondInput asks the agent's model chain for the next message.
type RespondInput struct {
	TenantID       string       `json:"tenant_id"`
	AgentID        string       `json:"agent_id"`
	ConversationID string       `json:"conversation_id"`
	WorkflowID     string       `json:"workflow_id"`
	Channel        string       `json:"channel"`
	Turn           int          `json:"turn"`
	Call           int          `json:"call"` // model calls within the turn (tool rounds)
	User           *UserMessage `json:"user,omitempty"`
	History        []Message    `json:"history"`
	// FinalAnswer: the turn's tool rounds are used up; the model is asked to
	// answer without calling tools.
	FinalAnswer bool   `json:"final_answer,omitempty"`
	EndUserRef  string `json:"end_user_ref,omitempty"` // whose long-term memory is recalled
	// Media are the stored images (FetchMedia) of this turn's message, given
	// to the model with it; earlier turns' images are only markers in History.
	Media []string `json:"media,omitempty"`
	// Escalation says which of the agent's escalation rules apply to this
	// call (EscalationOn, EscalationCooldown, EscalationOff); "" in
	// histories recorded before escalation existed: none.
	Escalation string `json:"escalation,omitempty"`
}

// Agent statuses a respond may report instead of an answer.
const (
	AgentActive   = "active"
	AgentInactive = "inactive"
	AgentDeleted  = "deleted"
)

// RespondOutput is the model's answer or tool calls, and who served it.
type RespondOutput struct {
	AgentStatus  string     `json:"agent_status"`
	Text         string     `json:"text,omitempty"`
	ToolCalls    []ToolCall `json:"tool_calls,omitempty"`
	Tools        []string   `json:"tools,omitempty"`      // the tools the agent may use this turn
	ToolSpecs    []ToolSpec `json:"tool_specs,omitempty"` // how to run each of them
	Provider     string     `json:"provider,omitempty"`
	Model        string     `json:"model,omitempty"`
	InputTokens  int        `json:"input_tokens,omitempty"`
	OutputTokens int        `json:"output_tokens,omitempty"`
	CostMicroUSD int64      `json:"cost_micro_usd,omitempty"`
	Fallbacks    int        `json:"fallbacks,omitempty"`
	// WindowTokens is the token budget of the conversation's window for the
	// agent's model chain; the workflow caps the window it keeps by it.
	WindowTokens int `json:"window_tokens,omitempty"`
	// Handoff is set when one of the agent's escalation triggers fired on
	// the user's message: no model was asked.
	Handoff *Handoff `json:"handoff,omitempty"`
	// MaxFailedTurns is the agent's rule (0: none, or escalation is off).
	MaxFailedTurns int `json:"max_failed_turns,omitempty"`
}

// Application error types a respond fails with when retrying cannot help.
const (
	ErrLLMNotConfigured = "LLMNotConfigured"
	ErrLLMRejected      = "LLMRejected"
	ErrChannelGone      = "ChannelGone"
	// ErrBudgetExceeded: the tenant's (or agent's) monthly budget has a hard
	// stop and this call would pass it; the user is told the assistant is
	// paused (and escalation rules may hand the conversation to a human).
	ErrBudgetExceeded = "BudgetExceeded"
	// ErrAllowanceUsed: the plan's monthly messages (or platform tokens) are
	// used up; the conversation is told once a month (the notice travels as
	// the error's details, "" when already told) instead of getting a reply.
	ErrAllowanceUsed = "AllowanceUsed"
)

// ToolInput runs one tool call.
type ToolInput struct {
	TenantID string   `json:"tenant_id"`
	AgentID  string   `json:"agent_id"`
	Allowed  []string `json:"allowed"`
	Call     ToolCall `json:"call"`
	// Who calls, for the tool's Invocation and idempotency key. Zero in
	// histories recorded before they existed.
	ConversationID string `json:"conversation_id,omitempty"`
	WorkflowID     string `json:"workflow_id,omitempty"`
	Turn           int    `json:"turn,omitempty"`
	Index          int    `json:"index,omitempty"` // the call's index within the turn, across tool rounds
}

// ToolOutput is the tool's result, or an error message the model can read.
type ToolOutput struct {
	Content string `json:"content"`
	IsError bool   `json:"is_error,omitempty"`
	// Handoff is the reason of a valid escalate_to_human call: the workflow
	// hands the conversation to people.
	Handoff string `json:"handoff,omitempty"`
}

// Delivery kinds.
const (
	KindReply       = "reply"
	KindNotice      = "notice"      // a message about the service, not an answer
	KindUnavailable = "unavailable" // "the model is down, I'll answer later"
	// KindTemplate sends the channel's approved template instead of Text
	// (WhatsApp, outside the 24-hour window); Text is what is recorded.
	KindTemplate = "template"
	KindMedia    = "media"   // about the files of the message: not read, or no model can see
	KindHandoff  = "handoff" // "a person will take over"
	KindStaff    = "staff"   // a support person's reply, relayed (recorded with role "staff")
	// KindHeld shows the user, once they write again, what reached them
	// only as the approved template (DeliverOutput.Held).
	KindHeld = "held"
)

// heldKinds are the messages worth showing the user once they write again,
// when the template stood in for them: answers and people's words, not
// notices that are stale by then.
func heldKind(kind string) bool {
	return kind == KindReply || kind == KindStaff || kind == KindHandoff || kind == KindHeld
}

// DeliverInput posts a message into the conversation's thread and records it.
type DeliverInput struct {
	TenantID       string       `json:"tenant_id"`
	ConversationID string       `json:"conversation_id"`
	WorkflowID     string       `json:"workflow_id"`
	Channel        string       `json:"channel"`
	Address        Address      `json:"address"`
	Turn           int          `json:"turn"`
	Kind           string       `json:"kind"`
	Text           string       `json:"text,omitempty"` // empty: record User only
	User           *UserMessage `json:"user,omitempty"` // recorded with the delivery (when no respond did)
	Provider       string       `json:"provider,omitempty"`
	Model          string       `json:"model,omitempty"`
	ReceivedAt     time.Time    `json:"received_at"`
	// ReplyTo is the channel's ID of the message answered (WhatsApp quotes
	// it: context.message_id); empty in histories recorded before it.
	ReplyTo string `json:"reply_to,omitempty"`
	// Author names the support person of a KindStaff message: the user sees
	// "Author: text", and the record keeps the text with its author.
	Author string `json:"author,omitempty"`
	// HeldKey, for a KindTemplate delivery, is the key of the part Meta
	// reported failed (outside the window): its message is what the
	// template stands in for (DeliverOutput.Held).
	HeldKey string `json:"held_key,omitempty"`
}

// DeliverOutput lists the channel's IDs of the posted parts.
type DeliverOutput struct {
	ExternalIDs []string `json:"external_ids,omitempty"`
	// Held is the text the user has not seen because the channel's approved
	// template went instead (WhatsApp, outside the 24-hour window — the
	// template asks them to answer to see it): the conversation shows it
	// when they write again. "" when the message itself went out.
	Held string `json:"held,omitempty"`
}

// StatusInput records a conversation's status.
type StatusInput struct {
	TenantID       string `json:"tenant_id"`
	ConversationID string `json:"conversation_id"`
	Status         string `json:"status"`
}
