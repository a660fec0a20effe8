// Package workflows holds ConversationWorkflow: one long-running workflow per
// conversation (tenant + channel + thread) that turns each inbound message
// into a reply, strictly in order, through activities. Everything here is
// deterministic: no I/O, no wall clock, no map iteration.
package workflows

import (
	"time"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/internal/escalation"
)

// Names shared with clients.
const (
	ConversationWorkflow = "Conversation"
	SignalMessage        = "message"
	QueryState           = "state"
)

// Inbound is one message for a conversation, sent as SignalMessage.
type Inbound struct {
	EventID    string    `json:"event_id"` // channel's event ID: duplicates are ignored
	UserID     string    `json:"user_id"`
	Text       string    `json:"text"`
	TS         string    `json:"ts,omitempty"` // channel message ID
	ReceivedAt time.Time `json:"received_at"`
	// Media are files sent with the message (images), fetched before the
	// turn; absent in signals recorded before media were read.
	Media []activities.MediaRef `json:"media,omitempty"`
	// OverLimit is set when the webhook found the sender over a rate limit:
	// the message is recorded and the user told when to try again.
	OverLimit *OverLimit `json:"over_limit,omitempty"`
	// WhatsApp (changeWhatsApp). Unsupported names what the user sent that
	// cannot be read ("stickers"): the user gets a notice, not the model.
	Unsupported string `json:"unsupported,omitempty"`
	// RecordOnly messages (reactions) are recorded, not answered.
	RecordOnly bool `json:"record_only,omitempty"`
	// DeliveryFailure is not a user's message: Meta reported a message of
	// this conversation as failed after accepting it (a status webhook).
	DeliveryFailure *activities.DeliveryFailure `json:"delivery_failure,omitempty"`
	// Staff is set for a staff action on the conversation's escalation
	// instead of a user's message (escalation.Signal), queued in order with
	// the messages.
	Staff *escalation.StaffAction `json:"staff,omitempty"`
}

// OverLimit describes the rate limit a message exceeded.
type OverLimit struct {
	Scope      string        `json:"scope"` // "tenant" or "channel"
	PerMinute  int           `json:"per_minute"`
	RetryAfter time.Duration `json:"retry_after"`
}

// Settings tune a conversation; the API fills them from configuration.
type Settings struct {
	IdleTimeout       time.Duration `json:"idle_timeout"`       // end the workflow after this long without messages
	UnavailableNotice time.Duration `json:"unavailable_notice"` // tell the user when no model answered for this long
	LLMCallTimeout    time.Duration `json:"llm_call_timeout"`   // one Respond attempt, across the model chain
	HistoryWindow     int           `json:"history_window"`     // messages of context sent to the model
	MaxToolRounds     int           `json:"max_tool_rounds"`    // model ⇄ tool round trips per turn
}

// DefaultSettings are used for zero fields.
var DefaultSettings = Settings{
	IdleTimeout:       24 * time.Hour,
	UnavailableNotice: 2 * time.Minute,
	LLMCallTimeout:    5 * time.Minute,
	HistoryWindow:     20,
	MaxToolRounds:     4,
}

func (s Settings) withDefaults() Settings {
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultSettings.IdleTimeout
	}
	if s.UnavailableNotice <= 0 {
		s.UnavailableNotice = DefaultSettings.UnavailableNotice
	}
	if s.LLMCallTimeout <= 0 {
		s.LLMCallTimeout = DefaultSettings.LLMCallTimeout
	}
	if s.HistoryWindow <= 0 {
		s.HistoryWindow = DefaultSettings.HistoryWindow
	}
	if s.MaxToolRounds <= 0 {
		s.MaxToolRounds = DefaultSettings.MaxToolRounds
	}
	return s
}

// ConversationInput starts (or continues as new) a conversation.
type ConversationInput struct {
	TenantID    string             `json:"tenant_id"`
	AgentID     string             `json:"agent_id"`
	Channel     string             `json:"channel"`
	ExternalKey string             `json:"external_key"`
	Address     activities.Address `json:"address"`
	UserRef     string             `json:"user_ref,omitempty"`
	Settings    Settings           `json:"settings"`
	// State is carried across continue-as-new; nil on a fresh start.
	State *State `json:"state,omitempty"`
}

// State is what a conversation remembers between turns.
type State struct {
	ConversationID  string               `json:"conversation_id"`
	Turn            int                  `json:"turn"`
	History         []activities.Message `json:"history,omitempty"`
	Seen            []string             `json:"seen,omitempty"`    // recent event IDs, oldest first
	Pending         []Inbound            `json:"pending,omitempty"` // received, not yet answered
	LastLimitNotice time.Time            `json:"last_limit_notice"`
	Status          string               `json:"status"`
	// WindowTokens caps History by estimated tokens (0: by count only); set
	// from what Respond reports for the agent's model chain.
	WindowTokens int `json:"window_tokens,omitempty"`
	// Escalation is the handoff state machine (escalation.go); nil until the
	// conversation is first handed to people.
	Escalation *EscalationState `json:"escalation,omitempty"`
	// Held are messages that reached the user only as WhatsApp's approved
	// template, shown when they write again (changeHeldMessages).
	Held []string `json:"held,omitempty"`
}

// seenCap bounds the duplicate-event memory; Slack retries within minutes.
const seenCap = 256

// enqueue queues m unless its event was already seen.
func (s *State) enqueue(m Inbound) bool {
	if m.EventID != "" {
		for _, id := range s.Seen {
			if id == m.EventID {
				return false
			}
		}
		s.Seen = append(s.Seen, m.EventID)
		if len(s.Seen) > seenCap {
			s.Seen = s.Seen[len(s.Seen)-seenCap:]
		}
	}
	s.Pending = append(s.Pending, m)
	return true
}

// remember appends to the model's window, trimming the oldest messages. A
// window never starts with tool results cut off from the call they answer.
func (s *State) remember(window int, msgs ...activities.Message) {
	s.History = append(s.History, msgs...)
	if len(s.History) <= window {
		return
	}
	h := s.History[len(s.History)-window:]
	for len(h) > 0 && (h[0].Role == "tool" || len(h[0].ToolCalls) > 0) {
		h = h[1:]
	}
	s.History = append([]activities.Message(nil), h...)
}
