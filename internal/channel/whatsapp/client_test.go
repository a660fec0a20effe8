package whatsapp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

func TestClientPhoneNumber(t *testing.T) {
	fake := fakewhatsapp.New(t)
	fake.AddNumber("106540352242922", "EAAG-right", "+1 555-078-3881", "Acme Support")
	c := whatsapp.NewClient(fake.URL(), "v25.0", nil)
	ctx := context.Background()

	pn, err := c.PhoneNumber(ctx, "EAAG-right", "106540352242922")
	require.NoError(t, err)
	require.Equal(t, whatsapp.PhoneNumber{ID: "106540352242922", DisplayPhoneNumber: "+1 555-078-3881", VerifiedName: "Acme Support",
		QualityRating: "GREEN"}, pn)
	reqs := fake.Requests()
	require.Equal(t, "/v25.0/106540352242922", reqs[0].Path)
	require.Equal(t, "Bearer EAAG-right", reqs[0].Authorization)

	_, err = c.PhoneNumber(ctx, "EAAG-wrong", "106540352242922")
	require.True(t, whatsapp.IsTokenInvalid(err), err)
	require.Equal(t, whatsapp.CodeTokenExpired, whatsapp.Code(err))
	require.False(t, whatsapp.IsTransient(err))

	fake.AddNumber("999", "EAAG-other", "+1 555", "Other")
	_, err = c.PhoneNumber(ctx, "EAAG-other", "106540352242922")
	require.Equal(t, whatsapp.CodeInvalidParam, whatsapp.Code(err), "a token for another number")
	var e *whatsapp.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 33, e.Subcode)
	require.NotEmpty(t, e.FBTraceID)
}

func TestClientSend(t *testing.T) {
	fake := fakewhatsapp.New(t)
	fake.AddNumber("1065", "EAAG-t", "+1 555", "Acme")
	fake.AddTemplate("1065", "we_have_a_reply", "en_US")
	c := whatsapp.NewClient(fake.URL()[:len(fake.URL())-1], "", nil) // no trailing slash, default version
	ctx := context.Background()

	id, err := c.Send(ctx, "EAAG-t", "1065", whatsapp.Outbound{To: "16505551234", ReplyTo: "wamid.IN", Text: "Hello *there*",
		BizOpaque: "conversation/t/whatsapp/1065:16505551234:1:reply:0"})
	require.NoError(t, err)
	require.Contains(t, id, "wamid.")
	var body map[string]any
	require.NoError(t, json.Unmarshal(fake.Requests()[0].Body, &body))
	require.Equal(t, map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
		"context": map[string]any{"message_id": "wamid.IN"}, "type": "text",
		"text":                     map[string]any{"preview_url": false, "body": "Hello *there*"},
		"biz_opaque_callback_data": "conversation/t/whatsapp/1065:16505551234:1:reply:0"}, body)
	require.Equal(t, "/"+whatsapp.DefaultAPIVersion+"/1065/messages", fake.Requests()[0].Path)

	// Without a phone number, the business-scoped user ID is the recipient.
	_, err = c.Send(ctx, "EAAG-t", "1065", whatsapp.Outbound{Recipient: "US.13491208655302741918", Template: &whatsapp.Template{Name: "we_have_a_reply", Language: "en_US"}})
	require.NoError(t, err)
	sent := fake.Sent()
	require.Len(t, sent, 2)
	require.Equal(t, fakewhatsapp.Sent{WAMID: sent[1].WAMID, PhoneNumberID: "1065", Recipient: "US.13491208655302741918", Type: "template",
		Template: "we_have_a_reply", Language: "en_US", Authorization: "Bearer EAAG-t"}, sent[1])

	_, err = c.Send(ctx, "EAAG-t", "1065", whatsapp.Outbound{Text: "nobody"})
	require.ErrorIs(t, err, whatsapp.ErrNoRecipient)
}

func TestClientErrors(t *testing.T) {
	fake := fakewhatsapp.New(t)
	fake.AddNumber("1065", "EAAG-t", "+1 555", "Acme")
	c := whatsapp.NewClient(fake.URL(), "v25.0", &http.Client{Timeout: 5 * time.Second})
	ctx := context.Background()
	send := func() error {
		_, err := c.Send(ctx, "EAAG-t", "1065", whatsapp.Outbound{To: "16505551234", Text: "hi"})
		return err
	}

	cases := []struct {
		f                      fakewhatsapp.Failure
		rateLimited, transient bool
		answered               bool
	}{
		{fakewhatsapp.Failure{Code: 130429}, true, true, true},
		{fakewhatsapp.Failure{Code: 131056}, true, true, true},
		{fakewhatsapp.Failure{Code: 131047}, false, false, true},
		{fakewhatsapp.Failure{Code: 131026}, false, false, true},
		{fakewhatsapp.Failure{Code: 190}, false, false, true},
		{fakewhatsapp.Failure{Code: 131000}, false, true, true},
		{fakewhatsapp.Failure{Code: 100}, false, false, true},
		{fakewhatsapp.Failure{Status: http.StatusBadGateway, Raw: "<html>bad gateway</html>"}, false, true, false},
		{fakewhatsapp.Failure{LoseResponse: true}, false, true, false},
	}
	for _, tc := range cases {
		fake.Fail(fakewhatsapp.OpMessages, tc.f)
		err := send()
		require.Error(t, err, "%+v", tc.f)
		require.Equal(t, tc.rateLimited, whatsapp.IsRateLimited(err), "%+v: %v", tc.f, err)
		require.Equal(t, tc.transient, whatsapp.IsTransient(err), "%+v: %v", tc.f, err)
		require.Equal(t, tc.answered, whatsapp.Answered(err), "%+v: %v", tc.f, err)
		if tc.f.Code != 0 {
			require.Equal(t, tc.f.Code, whatsapp.Code(err))
		}
	}
	require.True(t, whatsapp.IsTokenInvalid(func() error { fake.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 190}); return send() }()))
	// A lost answer may still have sent the message: the fake kept it.
	require.Len(t, fake.Sent(), 1)

	require.Equal(t, time.Second, whatsapp.RetryDelay(&whatsapp.Error{}, 1))
	fake.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131056})
	pair := send()
	require.Equal(t, 6*time.Second, whatsapp.RetryDelay(pair, 1))
	require.Equal(t, 12*time.Second, whatsapp.RetryDelay(pair, 2))
	require.Equal(t, time.Minute, whatsapp.RetryDelay(pair, 10))
}
