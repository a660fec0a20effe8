package whatsapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ObjectWABA is the object of every WhatsApp Business Account webhook.
const ObjectWABA = "whatsapp_business_account"

// FieldMessages is the webhook field that carries messages and statuses (the
// one field Konstruct subscribes to).
const FieldMessages = "messages"

// Message kinds: what the conversation does with an inbound message.
const (
	KindText        = "text"        // the agent reads Text and answers
	KindReaction    = "reaction"    // recorded in the conversation, not answered
	KindUnsupported = "unsupported" // answered with a notice naming Unsupported
	KindIgnored     = "ignored"     // not for the conversation (IgnoredReason says why)
)

// Delivery statuses Meta reports for a message a business sent, in the order
// they normally come. A status never moves backwards (StatusRank); "read" may
// come without "delivered".
const (
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
)

// StatusRank orders statuses so that a late or repeated webhook never moves
// a message's status backwards: sent < delivered < read, and failed is final
// like read (a failed message was never delivered; a read one cannot fail).
// Unknown statuses rank 0 and are never applied.
func StatusRank(status string) int {
	switch status {
	case StatusSent:
		return 1
	case StatusDelivered:
		return 2
	case StatusRead, StatusFailed:
		return 3
	}
	return 0
}

// Webhook is a parsed messages webhook: one entry per WhatsApp Business
// Account, each with changes; every change is handled on its own.
type Webhook struct {
	Object  string
	Changes []Change
}

// Change is one entry[].changes[] element: what happened at one business
// phone number.
type Change struct {
	WABAID             string // entry[].id
	Field              string // "messages" for everything handled here
	PhoneNumberID      string // metadata.phone_number_id: names the connection
	DisplayPhoneNumber string
	Messages           []Message
	Statuses           []Status
	Errors             []WebhookError // errors not tied to a message (value.errors)
}

// Message is an inbound message from a WhatsApp user, normalised.
type Message struct {
	ID        string    // the wamid: dedupe key and context.message_id of the reply
	Timestamp time.Time // when the user sent it (the customer-service window runs from here)
	Type      string    // Meta's type: text, image, audio, document, location, interactive, button, reaction, ...
	// Who sent it. UserID is the business-scoped user ID (BSUID), WAID the
	// phone-number ID; Meta may omit the phone number, so the key is UserKey.
	WAID        string
	UserID      string
	ProfileName string
	Kind        string // KindText, KindReaction, KindUnsupported or KindIgnored
	// Text is what the agent reads: the body, a caption, a button's title, or a
	// bracketed description of an attachment ("[voice message]").
	Text string
	// Media is the attached file of an image, audio or document message.
	Media *Media
	// ContextID is the wamid of the message this one replies to, if any.
	ContextID string
	// Unsupported names what could not be read ("a sticker"), for KindUnsupported.
	Unsupported string
	// IgnoredReason says why a KindIgnored message is not for the conversation.
	IgnoredReason string
}

// UserKey identifies the end user: the business-scoped user ID when Meta sent
// one, else the WhatsApp ID (phone number).
func (m Message) UserKey() string {
	if m.UserID != "" {
		return m.UserID
	}
	return m.WAID
}

// Media describes a file sent with a message; the bytes are fetched with
// GET /{media-id} by whoever needs them.
type Media struct {
	Kind     string // image, audio or document
	ID       string // Meta's media ID
	MimeType string
	SHA256   string
	Caption  string
	Filename string // documents
	Voice    bool   // audio recorded as a voice note
}

// Status is one statuses[] element: what became of a message the business sent.
type Status struct {
	ID        string // the wamid returned when the message was sent
	Status    string // sent, delivered, read, failed (others are passed on, ranked 0)
	Timestamp time.Time
	// RecipientID is the user's phone number (omitted when unknown);
	// RecipientUserID the business-scoped user ID (omitted on some failures).
	RecipientID     string
	RecipientUserID string
	// BizOpaque is biz_opaque_callback_data as sent with the message: Konstruct
	// sends each part's idempotency key there.
	BizOpaque string
	// Pricing is the pricing object, kept verbatim (nil when absent).
	Pricing json.RawMessage
	// Error is the first of errors[] (on failed statuses).
	Error *WebhookError
}

// WebhookError is an error object of a webhook (a failed status, a message
// Meta could not pass on, or a change-level error).
type WebhookError struct {
	Code    int
	Title   string
	Message string
	Details string // error_data.details
}

// The wire format, as Meta sends it. Only what is used is decoded.
type wirePayload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string    `json:"field"`
			Value wireValue `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type wireValue struct {
	Metadata struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []wireContact `json:"contacts"`
	Messages []wireMessage `json:"messages"`
	Statuses []wireStatus  `json:"statuses"`
	Errors   []wireError   `json:"errors"`
}

type wireContact struct {
	Profile struct {
		Name     string `json:"name"`
		Username string `json:"username"`
	} `json:"profile"`
	WAID   string `json:"wa_id"`
	UserID string `json:"user_id"`
}

type wireMedia struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
	Voice    bool   `json:"voice"`
}

type wireMessage struct {
	From       string `json:"from"`
	FromUserID string `json:"from_user_id"`
	ID         string `json:"id"`
	Timestamp  string `json:"timestamp"`
	Type       string `json:"type"`
	GroupID    string `json:"group_id"`
	Context    *struct {
		ID string `json:"id"`
	} `json:"context"`
	Text *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *wireMedia `json:"image"`
	Audio    *wireMedia `json:"audio"`
	Document *wireMedia `json:"document"`
	Location *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name"`
		Address   string  `json:"address"`
	} `json:"location"`
	Interactive *struct {
		Type        string `json:"type"`
		ButtonReply *struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply *struct {
			ID          string `json:"id"`
			Title       string `json:"title"`
			Description string `json:"description"`
		} `json:"list_reply"`
	} `json:"interactive"`
	Button *struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
	Reaction *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	Errors []wireError `json:"errors"`
}

type wireStatus struct {
	ID              string          `json:"id"`
	Status          string          `json:"status"`
	Timestamp       string          `json:"timestamp"`
	RecipientID     string          `json:"recipient_id"`
	RecipientUserID string          `json:"recipient_user_id"`
	BizOpaque       string          `json:"biz_opaque_callback_data"`
	Pricing         json.RawMessage `json:"pricing"`
	Errors          []wireError     `json:"errors"`
}

type wireError struct {
	Code      int    `json:"code"`
	Title     string `json:"title"`
	Message   string `json:"message"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

// ErrNotJSON is returned (wrapped) for a body that is not a JSON object.
var ErrNotJSON = errors.New("not a JSON object")

// ParseWebhook decodes a messages webhook. Call it only on a body that
// Verify accepted. A body that is not JSON is an error; anything odd inside
// valid JSON is not — a field of an unexpected type is left empty, a message
// without an ID or sender is KindIgnored — because Meta signed it and
// retries anything but a 200: refusing it would only bring it back.
func ParseWebhook(body []byte) (Webhook, error) {
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return Webhook{}, fmt.Errorf("whatsapp: parse webhook: %w", ErrNotJSON)
	}
	var w wirePayload
	if err := json.Unmarshal(body, &w); err != nil {
		// A type mismatch leaves that field empty but decodes the rest.
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return Webhook{}, fmt.Errorf("whatsapp: parse webhook: %w: %w", ErrNotJSON, err)
		}
	}
	out := Webhook{Object: w.Object}
	for _, e := range w.Entry {
		for _, ch := range e.Changes {
			v := ch.Value
			c := Change{WABAID: e.ID, Field: ch.Field, PhoneNumberID: strings.TrimSpace(v.Metadata.PhoneNumberID),
				DisplayPhoneNumber: v.Metadata.DisplayPhoneNumber}
			for _, m := range v.Messages {
				c.Messages = append(c.Messages, toMessage(m, v.Contacts))
			}
			for _, s := range v.Statuses {
				c.Statuses = append(c.Statuses, toStatus(s))
			}
			for _, e := range v.Errors {
				c.Errors = append(c.Errors, toError(e))
			}
			out.Changes = append(out.Changes, c)
		}
	}
	return out, nil
}

func unixTime(s string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

func toError(e wireError) WebhookError {
	return WebhookError{Code: e.Code, Title: e.Title, Message: e.Message, Details: e.ErrorData.Details}
}

func toStatus(s wireStatus) Status {
	st := Status{ID: strings.TrimSpace(s.ID), Status: strings.ToLower(strings.TrimSpace(s.Status)), Timestamp: unixTime(s.Timestamp),
		RecipientID: s.RecipientID, RecipientUserID: s.RecipientUserID, BizOpaque: s.BizOpaque}
	if p := s.Pricing; len(p) > 0 && p[0] == '{' {
		st.Pricing = p
	}
	if len(s.Errors) > 0 {
		e := toError(s.Errors[0])
		st.Error = &e
	}
	return st
}

// contactOf finds the contact entry of a message's sender: the one whose
// IDs match, or the only one.
func contactOf(m wireMessage, contacts []wireContact) wireContact {
	for _, c := range contacts {
		if (m.FromUserID != "" && c.UserID == m.FromUserID) || (m.From != "" && c.WAID == m.From) {
			return c
		}
	}
	if len(contacts) == 1 {
		return contacts[0]
	}
	return wireContact{}
}

func toMessage(w wireMessage, contacts []wireContact) Message {
	c := contactOf(w, contacts)
	m := Message{ID: strings.TrimSpace(w.ID), Timestamp: unixTime(w.Timestamp), Type: w.Type,
		WAID: firstNonEmpty(c.WAID, w.From), UserID: firstNonEmpty(c.UserID, w.FromUserID),
		ProfileName: firstNonEmpty(c.Profile.Name, c.Profile.Username), Kind: KindText}
	if w.Context != nil {
		m.ContextID = w.Context.ID
	}
	switch {
	case m.ID == "":
		return ignored(m, "message without an id")
	case m.UserKey() == "":
		return ignored(m, "message without a sender")
	case w.GroupID != "":
		return ignored(m, "group message")
	}
	// Meta could not pass the message on (131051: a type it does not support).
	if len(w.Errors) > 0 && w.Type == "unsupported" {
		return unsupported(m, "that kind of message")
	}
	switch w.Type {
	case "text":
		if w.Text == nil || strings.TrimSpace(w.Text.Body) == "" {
			return ignored(m, "empty text")
		}
		m.Text = w.Text.Body
	case "image", "audio", "document":
		md := map[string]*wireMedia{"image": w.Image, "audio": w.Audio, "document": w.Document}[w.Type]
		if md == nil || md.ID == "" {
			return unsupported(m, "that file")
		}
		m.Media = &Media{Kind: w.Type, ID: md.ID, MimeType: md.MimeType, SHA256: md.SHA256, Caption: md.Caption,
			Filename: md.Filename, Voice: md.Voice}
		m.Text = mediaText(m.Media)
	case "location":
		if w.Location == nil {
			return unsupported(m, "that location")
		}
		m.Text = locationText(w.Location.Name, w.Location.Address, w.Location.Latitude, w.Location.Longitude)
	case "interactive":
		switch i := w.Interactive; {
		case i != nil && i.Type == "button_reply" && i.ButtonReply != nil:
			m.Text = firstNonEmpty(i.ButtonReply.Title, i.ButtonReply.ID)
		case i != nil && i.Type == "list_reply" && i.ListReply != nil:
			m.Text = firstNonEmpty(i.ListReply.Title, i.ListReply.ID)
			if d := strings.TrimSpace(i.ListReply.Description); d != "" {
				m.Text += " (" + d + ")"
			}
		default:
			return unsupported(m, "that form reply")
		}
	case "button": // a quick-reply button of a template
		if w.Button == nil || firstNonEmpty(w.Button.Text, w.Button.Payload) == "" {
			return unsupported(m, "that button reply")
		}
		m.Text = firstNonEmpty(w.Button.Text, w.Button.Payload)
	case "reaction":
		if w.Reaction == nil {
			return ignored(m, "reaction without content")
		}
		m.Kind, m.ContextID = KindReaction, firstNonEmpty(w.Reaction.MessageID, m.ContextID)
		if w.Reaction.Emoji == "" {
			m.Text = "[removed a reaction]"
		} else {
			m.Text = "[reacted " + w.Reaction.Emoji + " to a message]"
		}
	case "system", "request_welcome":
		return ignored(m, w.Type+" message")
	default:
		return unsupported(m, unsupportedNoun(w.Type))
	}
	if strings.TrimSpace(m.Text) == "" {
		return unsupported(m, "that message")
	}
	return m
}

func ignored(m Message, reason string) Message {
	m.Kind, m.IgnoredReason = KindIgnored, reason
	return m
}

func unsupported(m Message, what string) Message {
	m.Kind, m.Unsupported = KindUnsupported, what
	if strings.TrimSpace(m.Text) == "" {
		// What the conversation records for it.
		m.Text = "[" + firstNonEmpty(m.Type, "unknown") + " message]"
	}
	return m
}

func unsupportedNoun(typ string) string {
	switch typ {
	case "sticker":
		return "stickers"
	case "video":
		return "videos"
	case "contacts":
		return "contact cards"
	case "order":
		return "orders"
	}
	return "that kind of message"
}

// mediaText is what the agent reads for an attachment: its caption, with a
// bracketed note of what it is.
func mediaText(md *Media) string {
	var note string
	switch md.Kind {
	case "image":
		if md.Caption != "" {
			return md.Caption
		}
		note = "[image]"
	case "audio":
		note = "[audio file]"
		if md.Voice {
			note = "[voice message]"
		}
	case "document":
		note = "[document]"
		if md.Filename != "" {
			note = "[document: " + md.Filename + "]"
		}
	}
	if md.Caption != "" {
		return note + "\n" + md.Caption
	}
	return note
}

func locationText(name, address string, lat, lon float64) string {
	var b strings.Builder
	b.WriteString("[location: ")
	for _, s := range []string{name, address} {
		if s = strings.TrimSpace(s); s != "" {
			b.WriteString(s)
			b.WriteString(", ")
		}
	}
	b.WriteString(strconv.FormatFloat(lat, 'f', -1, 64))
	b.WriteString(", ")
	b.WriteString(strconv.FormatFloat(lon, 'f', -1, 64))
	b.WriteString("]")
	return b.String()
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
