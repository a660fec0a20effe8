package whatsapp_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

func TestVerify(t *testing.T) {
	body := fakewhatsapp.Messages("106540352242922", fakewhatsapp.Text("16505551234", "hi"))
	h := http.Header{}
	h.Set(whatsapp.HeaderSignature, fakewhatsapp.Signature("app-secret", body))
	require.NoError(t, whatsapp.Verify(h, body, "app-secret"))
	require.Equal(t, fakewhatsapp.Signature("app-secret", body), whatsapp.Sign("app-secret", body))

	require.ErrorIs(t, whatsapp.Verify(h, body, "other-secret"), whatsapp.ErrBadSignature)
	require.ErrorIs(t, whatsapp.Verify(h, append(body, ' '), "app-secret"), whatsapp.ErrBadSignature, "one byte more")
	require.ErrorIs(t, whatsapp.Verify(h, body, ""), whatsapp.ErrNoAppSecret)
	require.ErrorIs(t, whatsapp.Verify(http.Header{}, body, "app-secret"), whatsapp.ErrMissingSignature)
	for _, bad := range []string{"sha1=abc", "sha256=", "sha256=zz" + fakewhatsapp.Signature("x", body)[9:],
		fakewhatsapp.Signature("app-secret", body) + "00", "SHA256=" + fakewhatsapp.Signature("app-secret", body)[7:]} {
		h.Set(whatsapp.HeaderSignature, bad)
		require.ErrorIs(t, whatsapp.Verify(h, body, "app-secret"), whatsapp.ErrMalformedSignature, bad)
	}
}

func TestHandshake(t *testing.T) {
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"tok-123"}, "hub.challenge": {"1158201444"}}
	challenge, ok := whatsapp.Handshake(q, "tok-123")
	require.True(t, ok)
	require.Equal(t, "1158201444", challenge)

	_, ok = whatsapp.Handshake(q, "tok-1234")
	require.False(t, ok, "a wrong token")
	_, ok = whatsapp.Handshake(q, "")
	require.False(t, ok, "no verify token configured: nothing matches, not even an empty one")
	q.Set("hub.mode", "unsubscribe")
	_, ok = whatsapp.Handshake(q, "tok-123")
	require.False(t, ok, "only subscribe")
	_, ok = whatsapp.Handshake(url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {"1"}}, "tok-123")
	require.False(t, ok, "no token sent")
}
