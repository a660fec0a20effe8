package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Envelope types.
const (
	TypeURLVerification = "url_verification"
	TypeEventCallback   = "event_callback"
)

// Message kinds: what started or continued a conversation.
const (
	KindAppMention = "app_mention"
	KindDirect     = "message.im"
	// KindThreadReply is a message in a thread of a channel the bot is in
	// (message.channels, message.groups) that does not mention it: a staff
	// reply when the thread is an escalation's handoff, otherwise ignored.
	KindThreadReply = "message.thread"
)

// Reasons an event_callback carries no Message (Envelope.IgnoredReason).
const (
	IgnoredNotEventCallback = "not an event_callback"
	IgnoredNoEvent          = "event_callback without event"
	IgnoredEventType        = "unsupported event type"
	IgnoredBotMessage       = "bot message"
	IgnoredOwnMessage       = "own message"
	IgnoredEdit             = "message edited"
	IgnoredDeletion         = "message deleted"
	IgnoredSubtype          = "message subtype not handled"
	IgnoredNotDM            = "message outside a DM and a thread (channels are covered by app_mention)"
	IgnoredMentionInDM      = "app_mention in a DM (covered by message.im)"
	IgnoredEmpty            = "message without user, channel or ts"
)

// Envelope is the normalised outer Events API payload, as received on the
// webhook or inside a Socket Mode events_api envelope.
type Envelope struct {
	// Type is "url_verification", "event_callback" or whatever else Slack sent.
	Type string
	// Challenge is set for url_verification; echo it back.
	Challenge string
	TeamID    string
	APIAppID  string
	EventID   string
	EventTime int64
	// BotUserID is the installing bot's user ID from authorizations[0], when
	// Slack sent it ("" otherwise).
	BotUserID string
	// Event is the message that starts or continues a conversation, nil when the
	// payload is ignored (IgnoredReason says why) or is not an event_callback.
	Event *Message
	// IgnoredReason is one of the Ignored* constants when Event is nil.
	IgnoredReason string
}

// Message is a user message addressed to the agent.
type Message struct {
	// TeamID is the workspace the app is installed in (the envelope's team_id),
	// which selects the tenant; it falls back to the event's team.
	TeamID string
	// ChannelID is where to reply.
	ChannelID string
	// ChannelType is "im", "channel", "group" or "mpim"; for app_mention (which
	// Slack sends without channel_type) it is derived from the channel ID.
	ChannelType string
	UserID      string
	// Text is the message text; for app_mention the leading mention of the bot
	// is removed.
	Text     string
	TS       string
	ThreadTS string
	// Kind is KindAppMention, KindDirect or KindThreadReply.
	Kind string
	// Files are the files shared with the message (a file_share message in
	// a DM, or an app_mention with attachments).
	Files []File
}

// ThreadRoot is the ts of the thread the reply belongs in: the thread's root
// when the message is a reply, else the message itself (which starts a thread).
func (m *Message) ThreadRoot() string {
	if m.ThreadTS != "" {
		return m.ThreadTS
	}
	return m.TS
}

// wireEnvelope is the subset of the Events API outer payload we read. A
// hand-written struct is decoded rather than slackevents.ParseEvent, which
// unmarshals the payload three times (outer, callback, inner by reflection)
// and fails outright on inner event types it does not know.
type wireEnvelope struct {
	Type           string     `json:"type"`
	Challenge      string     `json:"challenge"`
	TeamID         string     `json:"team_id"`
	APIAppID       string     `json:"api_app_id"`
	EventID        string     `json:"event_id"`
	EventTime      int64      `json:"event_time"`
	Event          *wireEvent `json:"event"`
	Authorizations []struct {
		UserID string `json:"user_id"`
	} `json:"authorizations"`
}

type wireEvent struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype"`
	Channel     string `json:"channel"`
	ChannelType string `json:"channel_type"`
	User        string `json:"user"`
	BotID       string `json:"bot_id"`
	Team        string `json:"team"`
	Text        string `json:"text"`
	TS          string `json:"ts"`
	ThreadTS    string `json:"thread_ts"`

	Files []wireFile `json:"files"` // subtype file_share, or an app_mention with attachments
}

// ParseEvent decodes an Events API payload (the webhook body, or the payload of
// a Socket Mode events_api envelope) into an Envelope. Call it only on a body
// that Verify accepted.
//
// app_mention events, and message events in DMs, produce Envelope.Event; bot
// messages (bot_id or subtype bot_message), the bot's own messages, edits,
// deletions, other subtypes and message events outside DMs are ignored with a
// reason. Malformed JSON is an error.
func ParseEvent(body []byte) (Envelope, error) {
	var w wireEnvelope
	if err := json.Unmarshal(body, &w); err != nil {
		// A field of an unexpected JSON type inside an event we do not handle
		// (e.g. im_created's channel is an object) is not malformed input:
		// Unmarshal has still filled what it could.
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) || w.Event == nil || isConversationEvent(w.Event.Type) ||
			!strings.HasPrefix(typeErr.Field, "event.") {
			return Envelope{}, fmt.Errorf("slack: parse event: %w", err)
		}
	}
	env := Envelope{
		Type:      w.Type,
		Challenge: w.Challenge,
		TeamID:    w.TeamID,
		APIAppID:  w.APIAppID,
		EventID:   w.EventID,
		EventTime: w.EventTime,
	}
	if len(w.Authorizations) > 0 {
		env.BotUserID = w.Authorizations[0].UserID
	}
	switch {
	case w.Type != TypeEventCallback:
		if w.Type != TypeURLVerification {
			env.IgnoredReason = IgnoredNotEventCallback
		}
		return env, nil
	case w.Event == nil:
		env.IgnoredReason = IgnoredNoEvent
		return env, nil
	}
	env.Event, env.IgnoredReason = toMessage(&env, w.Event)
	return env, nil
}

func isConversationEvent(t string) bool { return t == "app_mention" || t == "message" }

func toMessage(env *Envelope, e *wireEvent) (*Message, string) {
	var kind string
	switch e.Type {
	case "app_mention":
		kind = KindAppMention
	case "message":
		kind = KindDirect
	default:
		return nil, IgnoredEventType
	}
	switch {
	case e.BotID != "" || e.Subtype == "bot_message":
		return nil, IgnoredBotMessage
	case e.Subtype == "message_changed":
		return nil, IgnoredEdit
	case e.Subtype == "message_deleted":
		return nil, IgnoredDeletion
	case e.Subtype != "" && e.Subtype != "file_share" && e.Subtype != "thread_broadcast":
		// file_share: a message with files; thread_broadcast: a thread
		// reply also sent to the channel is a reply.
		return nil, IgnoredSubtype
	case env.BotUserID != "" && e.User == env.BotUserID:
		return nil, IgnoredOwnMessage
	case e.User == "" || e.Channel == "" || e.TS == "":
		return nil, IgnoredEmpty
	}
	chType := e.ChannelType
	if chType == "" {
		chType = channelTypeFromID(e.Channel)
	}
	if kind == KindDirect && chType != "im" {
		// A reply in a channel's thread: what staff write in an
		// escalation's handoff thread. A message that starts a thread, or
		// is the root itself, is the channel's business.
		if e.ThreadTS == "" || e.ThreadTS == e.TS {
			return nil, IgnoredNotDM
		}
		kind = KindThreadReply
	}
	// Slack documents that DMs are not dispatched as app_mention; if one ever
	// is, message.im already carries it and answering both would reply twice.
	if kind == KindAppMention && chType == "im" {
		return nil, IgnoredMentionInDM
	}
	team := env.TeamID
	if team == "" {
		team = e.Team
	}
	msg := &Message{
		TeamID:      team,
		ChannelID:   e.Channel,
		ChannelType: chType,
		UserID:      e.User,
		Text:        stripLeadingMention(e.Text, env.BotUserID, kind == KindAppMention),
		TS:          e.TS,
		ThreadTS:    e.ThreadTS,
		Kind:        kind,
	}
	for _, f := range e.Files {
		if f.ID != "" {
			msg.Files = append(msg.Files, f.file())
		}
	}
	return msg, ""
}

// channelTypeFromID guesses the conversation type from its ID prefix.
func channelTypeFromID(id string) string {
	if id == "" {
		return ""
	}
	switch id[0] {
	case 'D':
		return "im"
	case 'G':
		return "group"
	default:
		return "channel"
	}
}

// stripLeadingMention removes a leading "<@BOTID>" or "<@BOTID|name>" and the
// separator after it. When botUserID is unknown and anyID is set (app_mention,
// whose text leads with the bot's mention), any leading user mention is removed.
func stripLeadingMention(text, botUserID string, anyID bool) string {
	if !strings.HasPrefix(text, "<@") {
		return text
	}
	end := strings.IndexByte(text, '>')
	if end < 0 {
		return text
	}
	id := text[2:end]
	if bar := strings.IndexByte(id, '|'); bar >= 0 {
		id = id[:bar]
	}
	if botUserID != "" {
		if id != botUserID {
			return text
		}
	} else if !anyID {
		return text
	}
	rest := text[end+1:]
	// "<@U1>: hi" and "<@U1>, hi", but not "<@U1> :wave:".
	if len(rest) > 0 && (rest[0] == ':' || rest[0] == ',') && (len(rest) == 1 || rest[1] == ' ' || rest[1] == '\n') {
		rest = rest[1:]
	}
	return strings.TrimLeft(rest, " \t\n\u00a0")
}
