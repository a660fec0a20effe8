package whatsapp_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

// The example of Meta's messages webhook reference, verbatim.
const metaTextExample = `{
  "object": "whatsapp_business_account",
  "entry": [
    {
      "id": "102290129340398",
      "changes": [
        {
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {
              "display_phone_number": "15550783881",
              "phone_number_id": "106540352242922"
            },
            "contacts": [
              {
                "profile": {
                  "name": "Sheena Nelson"
                },
                "wa_id": "16505551234"
              }
            ],
            "messages": [
              {
                "from": "16505551234",
                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                "timestamp": "1749416383",
                "type": "text",
                "text": {
                  "body": "Does it come in another color?"
                }
              }
            ]
          },
          "field": "messages"
        }
      ]
    }
  ]
}`

func parseOne(t *testing.T, body []byte) whatsapp.Change {
	t.Helper()
	w, err := whatsapp.ParseWebhook(body)
	require.NoError(t, err)
	require.Equal(t, whatsapp.ObjectWABA, w.Object)
	require.Len(t, w.Changes, 1)
	return w.Changes[0]
}

func TestParseMetaExample(t *testing.T) {
	c := parseOne(t, []byte(metaTextExample))
	require.Equal(t, "102290129340398", c.WABAID)
	require.Equal(t, whatsapp.FieldMessages, c.Field)
	require.Equal(t, "106540352242922", c.PhoneNumberID)
	require.Equal(t, "15550783881", c.DisplayPhoneNumber)
	require.Len(t, c.Messages, 1)
	require.Equal(t, whatsapp.Message{
		ID:        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
		Timestamp: time.Unix(1749416383, 0).UTC(), Type: "text", WAID: "16505551234", ProfileName: "Sheena Nelson",
		Kind: whatsapp.KindText, Text: "Does it come in another color?",
	}, c.Messages[0])
	require.Equal(t, "16505551234", c.Messages[0].UserKey(), "no BSUID: the phone number keys the user")
}

// With business-scoped user IDs, the user is keyed by the BSUID, and Meta may
// withhold the phone number altogether.
func TestParseBusinessScopedUserID(t *testing.T) {
	m := fakewhatsapp.Text("16505551234", "hello")
	m.UserID = "US.13491208655302741918"
	got := parseOne(t, fakewhatsapp.Messages("1065", m)).Messages[0]
	require.Equal(t, "US.13491208655302741918", got.UserKey())
	require.Equal(t, "16505551234", got.WAID)

	m = fakewhatsapp.Text("", "no phone number")
	m.UserID = "US.ENT.11815799212886844830"
	got = parseOne(t, fakewhatsapp.Messages("1065", m)).Messages[0]
	require.Equal(t, whatsapp.KindText, got.Kind)
	require.Empty(t, got.WAID)
	require.Equal(t, "US.ENT.11815799212886844830", got.UserKey())
}

func TestParseMessageTypes(t *testing.T) {
	const from = "447700900123"
	cases := []struct {
		name string
		msg  fakewhatsapp.Msg
		kind string
		text string
	}{
		{"image with caption", fakewhatsapp.Image(from, "1234567", "image/jpeg", "abc=", "is this broken?"), whatsapp.KindText, "is this broken?"},
		{"image alone", fakewhatsapp.Image(from, "1234567", "image/jpeg", "abc=", ""), whatsapp.KindText, "[image]"},
		{"voice", fakewhatsapp.Of(from, "audio", map[string]any{"id": "777", "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": true}),
			whatsapp.KindText, "[voice message]"},
		{"document", fakewhatsapp.Of(from, "document", map[string]any{"id": "888", "mime_type": "application/pdf", "sha256": "y",
			"filename": "invoice-42.pdf", "caption": "my invoice"}), whatsapp.KindText, "[document: invoice-42.pdf]\nmy invoice"},
		{"location", fakewhatsapp.Of(from, "location", map[string]any{"latitude": 51.5072, "longitude": -0.1276, "name": "Depot",
			"address": "1 Quay St"}), whatsapp.KindText, "[location: Depot, 1 Quay St, 51.5072, -0.1276]"},
		{"button reply", fakewhatsapp.Of(from, "interactive", map[string]any{"type": "button_reply",
			"button_reply": map[string]any{"id": "yes-1", "title": "Yes, please"}}), whatsapp.KindText, "Yes, please"},
		{"list reply", fakewhatsapp.Of(from, "interactive", map[string]any{"type": "list_reply",
			"list_reply": map[string]any{"id": "s1", "title": "Shipping", "description": "Where is my order"}}), whatsapp.KindText, "Shipping (Where is my order)"},
		{"template button", fakewhatsapp.Of(from, "button", map[string]any{"payload": "CONTINUE", "text": "Continue"}), whatsapp.KindText, "Continue"},
		{"reaction", fakewhatsapp.Of(from, "reaction", map[string]any{"message_id": "wamid.X", "emoji": "👍"}), whatsapp.KindReaction, "[reacted 👍 to a message]"},
		{"reaction removed", fakewhatsapp.Of(from, "reaction", map[string]any{"message_id": "wamid.X", "emoji": ""}), whatsapp.KindReaction, "[removed a reaction]"},
		{"sticker", fakewhatsapp.Of(from, "sticker", map[string]any{"id": "9", "mime_type": "image/webp", "animated": false}), whatsapp.KindUnsupported, "[sticker message]"},
		{"video", fakewhatsapp.Of(from, "video", map[string]any{"id": "9", "mime_type": "video/mp4"}), whatsapp.KindUnsupported, "[video message]"},
		{"unsupported", fakewhatsapp.Msg{From: from, ID: "wamid.U", Type: "unsupported",
			Errors: []fakewhatsapp.ErrorSpec{{Code: 131051, Title: "Message type unknown", Details: "Message type is currently not supported."}}},
			whatsapp.KindUnsupported, "[unsupported message]"},
		{"system", fakewhatsapp.Of(from, "system", map[string]any{"body": "User changed number", "type": "user_changed_number"}), whatsapp.KindIgnored, ""},
		{"empty text", fakewhatsapp.Text(from, "  "), whatsapp.KindIgnored, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseOne(t, fakewhatsapp.Messages("1065", tc.msg)).Messages[0]
			require.Equal(t, tc.kind, got.Kind, got.IgnoredReason)
			require.Equal(t, tc.text, got.Text)
			require.Equal(t, tc.msg.ID, got.ID)
			if tc.kind == whatsapp.KindUnsupported {
				require.NotEmpty(t, got.Unsupported)
			}
		})
	}

	img := parseOne(t, fakewhatsapp.Messages("1065", fakewhatsapp.Image(from, "1234567", "image/jpeg", "abc=", "cap"))).Messages[0]
	require.Equal(t, &whatsapp.Media{Kind: "image", ID: "1234567", MimeType: "image/jpeg", SHA256: "abc=", Caption: "cap"}, img.Media)
	doc := parseOne(t, fakewhatsapp.Messages("1065", cases[3].msg)).Messages[0]
	require.Equal(t, "invoice-42.pdf", doc.Media.Filename)
	require.Equal(t, "wamid.X", parseOne(t, fakewhatsapp.Messages("1065", cases[8].msg)).Messages[0].ContextID)
}

func TestParseStatuses(t *testing.T) {
	body := fakewhatsapp.Statuses("1065",
		fakewhatsapp.StatusSpec{ID: "wamid.A", Status: "sent", RecipientID: "16505551234", BizOpaque: "conversation/t/whatsapp/k:1:reply:0",
			Timestamp: time.Unix(1750857384, 0)},
		fakewhatsapp.StatusSpec{ID: "wamid.A", Status: "read", RecipientID: "16505551234"},
		fakewhatsapp.StatusSpec{ID: "wamid.B", Status: "failed", RecipientID: "16505551234",
			Errors: []fakewhatsapp.ErrorSpec{{Code: 131047, Title: "Re-engagement message",
				Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}},
	)
	c := parseOne(t, body)
	require.Len(t, c.Statuses, 3)
	sent := c.Statuses[0]
	require.Equal(t, "wamid.A", sent.ID)
	require.Equal(t, whatsapp.StatusSent, sent.Status)
	require.Equal(t, time.Unix(1750857384, 0).UTC(), sent.Timestamp)
	require.Equal(t, "conversation/t/whatsapp/k:1:reply:0", sent.BizOpaque)
	var pricing map[string]any
	require.NoError(t, json.Unmarshal(sent.Pricing, &pricing))
	require.Equal(t, "PMP", pricing["pricing_model"])
	require.Nil(t, c.Statuses[1].Pricing)
	failed := c.Statuses[2]
	require.Equal(t, &whatsapp.WebhookError{Code: 131047, Title: "Re-engagement message", Message: "Re-engagement message",
		Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}, failed.Error)

	require.Less(t, whatsapp.StatusRank("sent"), whatsapp.StatusRank("delivered"))
	require.Less(t, whatsapp.StatusRank("delivered"), whatsapp.StatusRank("read"))
	require.Equal(t, whatsapp.StatusRank("read"), whatsapp.StatusRank("failed"))
	require.Zero(t, whatsapp.StatusRank("deleted"))
}

// A batch carries several numbers' changes; each is parsed on its own.
func TestParseBatch(t *testing.T) {
	body := fakewhatsapp.Payload(
		fakewhatsapp.Change{PhoneNumberID: "111", Messages: []fakewhatsapp.Msg{fakewhatsapp.Text("1", "a"), fakewhatsapp.Text("2", "b")}},
		fakewhatsapp.Change{PhoneNumberID: "222", Statuses: []fakewhatsapp.StatusSpec{{ID: "wamid.S", Status: "delivered"}}},
	)
	w, err := whatsapp.ParseWebhook(body)
	require.NoError(t, err)
	require.Len(t, w.Changes, 2)
	require.Equal(t, "111", w.Changes[0].PhoneNumberID)
	require.Len(t, w.Changes[0].Messages, 2)
	require.Equal(t, "2", w.Changes[0].Messages[1].WAID, "each message keeps its own contact")
	require.Equal(t, "222", w.Changes[1].PhoneNumberID)
	require.Len(t, w.Changes[1].Statuses, 1)
}

// Odd but signed payloads parse (and are acknowledged); only non-JSON fails.
func TestParseOddPayloads(t *testing.T) {
	_, err := whatsapp.ParseWebhook([]byte("not json"))
	require.ErrorIs(t, err, whatsapp.ErrNotJSON)
	_, err = whatsapp.ParseWebhook([]byte(`[1,2]`))
	require.Error(t, err)

	for _, body := range []string{`{}`, `{"object":"page"}`, `{"entry":[{"changes":[{"field":"account_update","value":{}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"id":"wamid.1","type":"text","text":{"body":"x"}}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"id":1,"changes":[{"value":{"messages":[{"from":"1","id":"w","timestamp":12,"type":"text","text":"oops"}]}}]}]}`,
	} {
		w, err := whatsapp.ParseWebhook([]byte(body))
		require.NoError(t, err, body)
		for _, c := range w.Changes {
			for _, m := range c.Messages {
				require.NotEqual(t, whatsapp.KindText, m.Kind, "%s: a message without sender or body is not answered", body)
			}
		}
	}
}

// FuzzParseWebhook: any body either fails as not JSON or parses into
// messages that are each well-formed for the conversation.
func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(metaTextExample))
	f.Add(fakewhatsapp.Messages("1065", fakewhatsapp.Image("1", "2", "image/png", "h", "c"), fakewhatsapp.Of("1", "reaction",
		map[string]any{"message_id": "w", "emoji": "x"})))
	f.Add(fakewhatsapp.Statuses("1065", fakewhatsapp.StatusSpec{ID: "w", Status: "failed", Errors: []fakewhatsapp.ErrorSpec{{Code: 131047}}}))
	f.Add([]byte(`{"entry":[{"changes":[{"value":{"messages":[{"id":"","type":"interactive","interactive":{"type":"list_reply"}}]}}]}]}`))
	f.Add([]byte(`{"entry":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := whatsapp.ParseWebhook(body)
		if err != nil {
			return
		}
		for _, c := range w.Changes {
			for _, m := range c.Messages {
				switch m.Kind {
				case whatsapp.KindText, whatsapp.KindReaction:
					if m.ID == "" || m.UserKey() == "" || strings.TrimSpace(m.Text) == "" {
						t.Fatalf("answerable message without id, sender or text: %+v", m)
					}
				case whatsapp.KindUnsupported:
					if m.ID == "" || m.UserKey() == "" || m.Unsupported == "" || strings.TrimSpace(m.Text) == "" {
						t.Fatalf("unsupported message without id, sender or noun: %+v", m)
					}
				case whatsapp.KindIgnored:
					if m.IgnoredReason == "" {
						t.Fatalf("ignored without a reason: %+v", m)
					}
				default:
					t.Fatalf("unknown kind %q", m.Kind)
				}
			}
			for _, s := range c.Statuses {
				if s.Pricing != nil && !json.Valid(s.Pricing) {
					t.Fatalf("pricing kept invalid: %q", s.Pricing)
				}
			}
		}
	})
}
