package fakeslack

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults used by the event builders and the fake server.
const (
	DefaultAPIAppID   = "A0KONSTRUCT"
	DefaultBotUserID  = "U0KONSTRUCT"
	VerificationToken = "fakeslackVerificationToken"
	// EventsPath is Konstruct's Events API webhook path.
	EventsPath = "/webhooks/slack/events"
)

// Signature returns Slack's v0 signature ("v0=" + hex HMAC-SHA256 of
// "v0:{timestamp}:{body}") for body signed with secret.
func Signature(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + timestamp + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignedRequest returns the headers Slack sends with an Events API request:
// Content-Type, X-Slack-Request-Timestamp (now) and X-Slack-Signature.
func SignedRequest(secret string, body []byte, now time.Time) http.Header {
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", Signature(secret, ts, body))
	return h
}

// NewEventsRequest builds a signed POST to EventsPath for serving with a
// handler directly (httptest.NewRecorder); for a running server, copy its
// headers onto your own request, or use SignedRequest.
func NewEventsRequest(secret string, body []byte, now time.Time) *http.Request {
	r := httptest.NewRequest(http.MethodPost, EventsPath, bytes.NewReader(body))
	for k, v := range SignedRequest(secret, body, now) {
		r.Header[k] = v
	}
	r.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	return r
}

// WithRetry marks a request as Slack's redelivery of an event
// (X-Slack-Retry-Num, X-Slack-Retry-Reason).
func WithRetry(r *http.Request, num int, reason string) *http.Request {
	r.Header.Set("X-Slack-Retry-Num", strconv.Itoa(num))
	r.Header.Set("X-Slack-Retry-Reason", reason)
	return r
}

// URLVerification is the payload Slack sends to check a Request URL.
func URLVerification(challenge string) []byte {
	return mustJSON(obj{
		{"token", VerificationToken},
		{"challenge", challenge},
		{"type", "url_verification"},
	})
}

// EventOption adjusts a built event payload.
type EventOption func(*eventSpec)

type eventSpec struct {
	botUserID string
	appID     string
	eventTime int64
	event     obj
}

// WithBotUserID sets the bot user in authorizations (the app's bot). By default
// it is the user mentioned first in an app_mention's text, else DefaultBotUserID.
func WithBotUserID(id string) EventOption { return func(s *eventSpec) { s.botUserID = id } }

// WithAPIAppID sets api_app_id (default DefaultAPIAppID).
func WithAPIAppID(id string) EventOption { return func(s *eventSpec) { s.appID = id } }

// WithEventTime sets event_time (default: the seconds of the message ts).
func WithEventTime(unix int64) EventOption { return func(s *eventSpec) { s.eventTime = unix } }

// WithEventField sets a field of the inner event, replacing it if present; a
// nil value removes it.
func WithEventField(key string, value any) EventOption {
	return func(s *eventSpec) { s.event = s.event.set(key, value) }
}

// WithSubtype sets the inner event's subtype.
func WithSubtype(subtype string) EventOption { return WithEventField("subtype", subtype) }

// WithBotID makes the message look posted by an app's bot (bot_id, app_id,
// bot_profile), as Slack delivers the posts of bots, this one included.
func WithBotID(botID string) EventOption {
	return func(s *eventSpec) {
		s.event = s.event.set("bot_id", botID).set("app_id", DefaultAPIAppID).
			set("bot_profile", obj{{"id", botID}, {"app_id", DefaultAPIAppID}, {"name", "konstruct"}, {"deleted", false}})
	}
}

// AppMention is the event_callback Slack sends when user mentions the app in a
// channel: an app_mention event. text normally starts with "<@BOTUSERID>".
func AppMention(teamID, channel, user, text, ts, threadTS, eventID string, opts ...EventOption) []byte {
	ev := userMessage("app_mention", teamID, channel, user, text, ts, threadTS)
	return callback(teamID, eventID, ev, mentionedFirst(text), opts)
}

// DirectMessage is the event_callback for a message.im event: user wrote in
// the DM channel (D…) with the app.
func DirectMessage(teamID, channel, user, text, ts, threadTS, eventID string, opts ...EventOption) []byte {
	ev := userMessage("message", teamID, channel, user, text, ts, threadTS).set("channel_type", "im")
	return callback(teamID, eventID, ev, "", opts)
}

// ChannelMessage is the event_callback for a message.channels event (a
// message in a public channel the app is in).
func ChannelMessage(teamID, channel, user, text, ts, threadTS, eventID string, opts ...EventOption) []byte {
	ev := userMessage("message", teamID, channel, user, text, ts, threadTS).set("channel_type", "channel")
	return callback(teamID, eventID, ev, "", opts)
}

// MessageChanged is the event_callback for an edit of message ts to newText.
func MessageChanged(teamID, channel, channelType, user, newText, ts, eventID string, opts ...EventOption) []byte {
	now := ts + "1"
	inner := userMessage("message", teamID, "", user, newText, ts, "").
		set("edited", obj{{"user", user}, {"ts", now}})
	ev := obj{
		{"type", "message"},
		{"subtype", "message_changed"},
		{"message", inner},
		{"previous_message", userMessage("message", teamID, "", user, "(before)", ts, "")},
		{"channel", channel},
		{"hidden", true},
		{"ts", now},
		{"event_ts", now},
		{"channel_type", channelType},
	}
	return callback(teamID, eventID, ev, "", opts)
}

// MessageDeleted is the event_callback for the deletion of message ts.
func MessageDeleted(teamID, channel, channelType, ts, eventID string, opts ...EventOption) []byte {
	now := ts + "2"
	ev := obj{
		{"type", "message"},
		{"subtype", "message_deleted"},
		{"previous_message", obj{{"type", "message"}, {"text", "(deleted)"}, {"ts", ts}}},
		{"channel", channel},
		{"hidden", true},
		{"deleted_ts", ts},
		{"event_ts", now},
		{"ts", now},
		{"channel_type", channelType},
	}
	return callback(teamID, eventID, ev, "", opts)
}

// userMessage is the inner event of a message a person typed.
func userMessage(typ, teamID, channel, user, text, ts, threadTS string) obj {
	ev := obj{
		{"user", user},
		{"type", typ},
		{"ts", ts},
		{"client_msg_id", clientMsgID(channel + ts)},
		{"text", text},
		{"team", teamID},
	}
	if threadTS != "" {
		ev = ev.set("thread_ts", threadTS).set("parent_user_id", user)
	}
	ev = ev.set("blocks", []any{richText(text)})
	if channel != "" {
		ev = ev.set("channel", channel)
	}
	return ev.set("event_ts", ts)
}

func callback(teamID, eventID string, ev obj, botUserID string, opts []EventOption) []byte {
	spec := eventSpec{botUserID: botUserID, appID: DefaultAPIAppID, event: ev}
	for _, o := range opts {
		o(&spec)
	}
	if spec.botUserID == "" {
		spec.botUserID = DefaultBotUserID
	}
	if spec.eventTime == 0 {
		ts, _ := spec.event.get("ts").(string)
		sec, _, _ := strings.Cut(ts, ".")
		if n, err := strconv.ParseInt(sec, 10, 64); err == nil {
			spec.eventTime = n
		} else {
			spec.eventTime = time.Now().Unix()
		}
	}
	typ, _ := spec.event.get("type").(string)
	channel, _ := spec.event.get("channel").(string)
	ctx := mustJSON(obj{{"et", typ}, {"tid", teamID}, {"aid", spec.appID}, {"cid", channel}})
	return mustJSON(obj{
		{"token", VerificationToken},
		{"team_id", teamID},
		{"context_team_id", teamID},
		{"context_enterprise_id", nil},
		{"api_app_id", spec.appID},
		{"event", spec.event},
		{"type", "event_callback"},
		{"event_id", eventID},
		{"event_time", spec.eventTime},
		{"authorizations", []any{obj{
			{"enterprise_id", nil},
			{"team_id", teamID},
			{"user_id", spec.botUserID},
			{"is_bot", true},
			{"is_enterprise_install", false},
		}}},
		{"is_ext_shared_channel", false},
		{"event_context", "4-" + base64.RawURLEncoding.EncodeToString(ctx)},
	})
}

// mentionedFirst returns U in a text starting with "<@U>" or "<@U|name>".
func mentionedFirst(text string) string {
	rest, ok := strings.CutPrefix(text, "<@")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ">")
	if !ok {
		return ""
	}
	id, _, _ = strings.Cut(id, "|")
	return id
}

// richText renders text as the rich_text block Slack attaches to typed
// messages, with user mentions as user elements.
func richText(text string) obj {
	blockID := clientMsgID(text)[:5]
	var elems []any
	for text != "" {
		i := strings.Index(text, "<@")
		j := -1
		if i >= 0 {
			j = strings.IndexByte(text[i:], '>')
		}
		if i < 0 || j < 0 {
			elems = append(elems, obj{{"type", "text"}, {"text", text}})
			break
		}
		if i > 0 {
			elems = append(elems, obj{{"type", "text"}, {"text", text[:i]}})
		}
		id, _, _ := strings.Cut(text[i+2:i+j], "|")
		elems = append(elems, obj{{"type", "user"}, {"user_id", id}})
		text = text[i+j+1:]
	}
	return obj{
		{"type", "rich_text"},
		{"block_id", blockID},
		{"elements", []any{obj{{"type", "rich_text_section"}, {"elements", elems}}}},
	}
}

// clientMsgID derives a stable UUID-shaped ID from seed.
func clientMsgID(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// obj is a JSON object that keeps its keys in order, as Slack's payloads do.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) get(k string) any {
	for _, e := range o {
		if e.k == k {
			return e.v
		}
	}
	return nil
}

// set replaces k's value, appends k, or (v == nil) removes k.
func (o obj) set(k string, v any) obj {
	for i, e := range o {
		if e.k == k {
			if v == nil {
				return append(o[:i:i], o[i+1:]...)
			}
			o[i].v = v
			return o
		}
	}
	if v == nil {
		return o
	}
	return append(o, kv{k, v})
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("fakeslack: " + err.Error())
	}
	return b
}

// InteractionsPath is Konstruct's interactivity webhook path.
const InteractionsPath = "/webhooks/slack/interactions"

// ButtonClick is the form body Slack posts to the interactivity Request URL
// when user clicks the button actionID (with value) on message messageTS of
// channel: application/x-www-form-urlencoded, its payload field the
// block_actions JSON. actionTS identifies the click.
func ButtonClick(teamID, userID, userName, channel, messageTS, actionID, value, actionTS string) []byte {
	payload := ButtonClickPayload(teamID, userID, userName, channel, messageTS, actionID, value, actionTS)
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

// ButtonClickPayload is the block_actions JSON of ButtonClick, as Socket
// Mode delivers it (PushInteractive).
func ButtonClickPayload(teamID, userID, userName, channel, messageTS, actionID, value, actionTS string) []byte {
	return mustJSON(obj{
		{"type", "block_actions"},
		{"user", obj{{"id", userID}, {"username", userName}, {"name", userName}, {"team_id", teamID}}},
		{"api_app_id", DefaultAPIAppID},
		{"token", VerificationToken},
		{"container", obj{{"type", "message"}, {"message_ts", messageTS}, {"channel_id", channel}, {"is_ephemeral", false}}},
		{"trigger_id", "1234567890.0987654321." + clientMsgID(actionTS)[:8]},
		{"team", obj{{"id", teamID}, {"domain", strings.ToLower(teamID)}}},
		{"enterprise", nil},
		{"is_enterprise_install", false},
		{"channel", obj{{"id", channel}, {"name", "support"}}},
		{"message", obj{{"type", "message"}, {"ts", messageTS}, {"text", "handoff"}}},
		{"response_url", "https://hooks.slack.com/actions/" + teamID + "/1/" + clientMsgID(actionTS)[:12]},
		{"actions", []any{obj{
			{"action_id", actionID},
			{"block_id", "escalation"},
			{"text", obj{{"type", "plain_text"}, {"text", actionID}, {"emoji", true}}},
			{"value", value},
			{"type", "button"},
			{"action_ts", actionTS},
		}}},
	})
}

// NewInteractionRequest builds a signed POST of a ButtonClick body to
// InteractionsPath, as Slack sends it.
func NewInteractionRequest(secret string, body []byte, now time.Time) *http.Request {
	r := httptest.NewRequest(http.MethodPost, InteractionsPath, bytes.NewReader(body))
	for k, v := range SignedRequest(secret, body, now) {
		r.Header[k] = v
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	return r
}
