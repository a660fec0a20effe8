package fakewhatsapp

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Msg is an inbound message from a WhatsApp user, as Meta describes it in
// the messages webhook.
type Msg struct {
	From   string // the user's phone number (wa_id); "" when Meta withholds it
	UserID string // the business-scoped user ID; "" before BSUIDs
	Name   string // profile name
	ID     string // the wamid (the constructors set a new one)
	// Timestamp is when the user sent it (now when zero).
	Timestamp time.Time
	Type      string         // "text" when empty
	Content   map[string]any // the object under Type, e.g. {"body": "hi"}
	Context   string         // the wamid this message replies to
	Errors    []ErrorSpec    // for type "unsupported"
}

// Text is a text message from the user with phone number from.
func Text(from, body string) Msg {
	return Msg{From: from, ID: NewWAMID(), Type: "text", Content: map[string]any{"body": body}}
}

// Image is an image message.
func Image(from, mediaID, mimeType, sha256, caption string) Msg {
	c := map[string]any{"id": mediaID, "mime_type": mimeType, "sha256": sha256}
	if caption != "" {
		c["caption"] = caption
	}
	return Msg{From: from, ID: NewWAMID(), Type: "image", Content: c}
}

// Of is a message of any type with its content object.
func Of(from, typ string, content map[string]any) Msg {
	return Msg{From: from, ID: NewWAMID(), Type: typ, Content: content}
}

// StatusSpec is one statuses[] element.
type StatusSpec struct {
	ID              string // the wamid of the message sent
	Status          string // sent, delivered, read, failed
	Timestamp       time.Time
	RecipientID     string // phone number ("" when unknown)
	RecipientUserID string
	BizOpaque       string
	// Pricing is sent as is; nil gives Meta's per-message pricing object for
	// sent and delivered, none for read and failed.
	Pricing map[string]any
	Errors  []ErrorSpec
}

// ErrorSpec is an error object of a webhook.
type ErrorSpec struct {
	Code    int
	Title   string
	Details string
}

// Change is one entry's change at a business number.
type Change struct {
	WABAID             string
	PhoneNumberID      string
	DisplayPhoneNumber string
	Messages           []Msg
	Statuses           []StatusSpec
}

// Messages is the webhook payload Meta sends for msgs received at phone
// number phoneNumberID (each message with its contact).
func Messages(phoneNumberID string, msgs ...Msg) []byte {
	return Payload(Change{PhoneNumberID: phoneNumberID, Messages: msgs})
}

// Statuses is the webhook payload of status updates at phoneNumberID.
func Statuses(phoneNumberID string, sts ...StatusSpec) []byte {
	return Payload(Change{PhoneNumberID: phoneNumberID, Statuses: sts})
}

// Payload builds a webhook with one entry per change (Meta batches changes
// of several numbers and accounts into one delivery).
func Payload(changes ...Change) []byte {
	entries := make([]any, 0, len(changes))
	for _, c := range changes {
		waba := c.WABAID
		if waba == "" {
			waba = "1" + c.PhoneNumberID
		}
		display := c.DisplayPhoneNumber
		if display == "" {
			display = "15550" + c.PhoneNumberID[max(0, len(c.PhoneNumberID)-6):]
		}
		value := map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": display, "phone_number_id": c.PhoneNumberID},
		}
		if len(c.Messages) > 0 {
			var contacts, messages []any
			for _, m := range c.Messages {
				contacts = append(contacts, m.contact())
				messages = append(messages, m.wire())
			}
			value["contacts"], value["messages"] = contacts, messages
		}
		if len(c.Statuses) > 0 {
			var sts []any
			for _, st := range c.Statuses {
				sts = append(sts, st.wire())
			}
			value["statuses"] = sts
		}
		entries = append(entries, map[string]any{"id": waba,
			"changes": []any{map[string]any{"value": value, "field": "messages"}}})
	}
	b, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": entries})
	return b
}

func (m Msg) contact() map[string]any {
	profile := map[string]any{"name": m.Name}
	if m.Name == "" {
		profile["name"] = "WhatsApp User"
	}
	c := map[string]any{"profile": profile}
	if m.From != "" {
		c["wa_id"] = m.From
	}
	if m.UserID != "" {
		c["user_id"] = m.UserID
	}
	return c
}

func (m Msg) wire() map[string]any {
	ts := m.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	typ := m.Type
	if typ == "" {
		typ = "text"
	}
	w := map[string]any{"id": m.WAMID(), "timestamp": strconv.FormatInt(ts.Unix(), 10), "type": typ}
	if m.From != "" {
		w["from"] = m.From
	}
	if m.UserID != "" {
		w["from_user_id"] = m.UserID
	}
	if m.Content != nil {
		w[typ] = m.Content
	}
	if m.Context != "" {
		w["context"] = map[string]any{"from": "15550000000", "id": m.Context}
	}
	if len(m.Errors) > 0 {
		w["errors"] = errorsWire(m.Errors)
	}
	return w
}

// WAMID returns the message's ID. Set Msg.ID to choose it: a Msg without one
// gets a new ID each time it is built into a payload.
func (m Msg) WAMID() string {
	if m.ID != "" {
		return m.ID
	}
	return NewWAMID()
}

func (s StatusSpec) wire() map[string]any {
	ts := s.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	w := map[string]any{"id": s.ID, "status": s.Status, "timestamp": strconv.FormatInt(ts.Unix(), 10)}
	if s.RecipientID != "" {
		w["recipient_id"] = s.RecipientID
	}
	if s.RecipientUserID != "" {
		w["recipient_user_id"] = s.RecipientUserID
	}
	if s.BizOpaque != "" {
		w["biz_opaque_callback_data"] = s.BizOpaque
	}
	switch {
	case s.Pricing != nil:
		w["pricing"] = s.Pricing
	case s.Status == "sent" || s.Status == "delivered":
		w["pricing"] = map[string]any{"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
	}
	if len(s.Errors) > 0 {
		w["errors"] = errorsWire(s.Errors)
	}
	return w
}

func errorsWire(es []ErrorSpec) []any {
	var out []any
	for _, e := range es {
		out = append(out, map[string]any{"code": e.Code, "title": e.Title, "message": e.Title,
			"error_data": map[string]any{"details": e.Details},
			"href":       "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"})
	}
	return out
}

// Signature is the X-Hub-Signature-256 value Meta sends with body: "sha256="
// and the hex HMAC-SHA256 of the raw body keyed with the app secret.
func Signature(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// NewWebhookRequest is a POST of body to url signed as Meta signs it.
func NewWebhookRequest(url, appSecret string, body []byte) *http.Request {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic("fakewhatsapp: " + err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	req.Header.Set("X-Hub-Signature-256", Signature(appSecret, body))
	return req
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
