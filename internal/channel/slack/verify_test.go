package slack_test

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

var (
	verifyNow  = time.Unix(1_700_000_000, 0)
	verifyBody = fakeslack.AppMention("T1", "C1", "U1", "<@UBOT> hello", "1700000000.000100", "", "Ev1")
)

func TestVerifyAcceptsGoodSignature(t *testing.T) {
	h := fakeslack.SignedRequest(secret, verifyBody, verifyNow)
	require.NoError(t, slack.Verify(h, verifyBody, secret, verifyNow))
}

func TestVerifyAgreesWithSlackGo(t *testing.T) {
	now := time.Now()
	h := fakeslack.SignedRequest(secret, verifyBody, now)
	sv, err := slackapi.NewSecretsVerifier(h, secret)
	require.NoError(t, err)
	_, err = sv.Write(verifyBody)
	require.NoError(t, err)
	require.NoError(t, sv.Ensure(), "slack-go must accept what fakeslack signs")
	require.NoError(t, slack.Verify(h, verifyBody, secret, now))
}

func TestVerifyRejects(t *testing.T) {
	good := func() http.Header { return fakeslack.SignedRequest(secret, verifyBody, verifyNow) }
	tsAt := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	signedAt := func(ts string) http.Header {
		h := http.Header{}
		h.Set("X-Slack-Request-Timestamp", ts)
		h.Set("X-Slack-Signature", fakeslack.Signature(secret, ts, verifyBody))
		return h
	}
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		secret string
		want   error
	}{
		{"wrong secret", good(), verifyBody, "another-secret", slack.ErrBadSignature},
		{"tampered body", good(), bytes.Replace(verifyBody, []byte("hello"), []byte("HELLO"), 1), secret, slack.ErrBadSignature},
		{"empty body", good(), nil, secret, slack.ErrBadSignature},
		{"stale timestamp", signedAt(tsAt(verifyNow.Add(-5*time.Minute - time.Second))), verifyBody, secret, slack.ErrStaleTimestamp},
		{"future timestamp", signedAt(tsAt(verifyNow.Add(5*time.Minute + time.Second))), verifyBody, secret, slack.ErrStaleTimestamp},
		{"very old timestamp", signedAt("0"), verifyBody, secret, slack.ErrStaleTimestamp},
		{"non-numeric timestamp", signedAt("17e8"), verifyBody, secret, slack.ErrMalformedTimestamp},
		{"timestamp overflow", signedAt("99999999999999999999"), verifyBody, secret, slack.ErrMalformedTimestamp},
		{"missing signature", del(good(), "X-Slack-Signature"), verifyBody, secret, slack.ErrMissingSignature},
		{"missing timestamp", del(good(), "X-Slack-Request-Timestamp"), verifyBody, secret, slack.ErrMissingSignature},
		{"no headers", http.Header{}, verifyBody, secret, slack.ErrMissingSignature},
		{"bad hex", set(good(), "X-Slack-Signature", "v0="+string(bytes.Repeat([]byte("zz"), 32))), verifyBody, secret, slack.ErrMalformedSignature},
		{"no v0 prefix", set(good(), "X-Slack-Signature", "v1="+good().Get("X-Slack-Signature")[3:]), verifyBody, secret, slack.ErrMalformedSignature},
		{"short signature", set(good(), "X-Slack-Signature", good().Get("X-Slack-Signature")[:40]), verifyBody, secret, slack.ErrMalformedSignature},
		{"no secret configured", good(), verifyBody, "", slack.ErrNoSigningSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := slack.Verify(tt.header, tt.body, tt.secret, verifyNow)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestVerifyWindowEdges(t *testing.T) {
	for _, skew := range []time.Duration{-5 * time.Minute, 5 * time.Minute, 0} {
		h := fakeslack.SignedRequest(secret, verifyBody, verifyNow.Add(skew))
		require.NoError(t, slack.Verify(h, verifyBody, secret, verifyNow), "skew %s", skew)
	}
}

func TestVerifyNonCanonicalHeaderKeys(t *testing.T) {
	good := fakeslack.SignedRequest(secret, verifyBody, verifyNow)
	h := http.Header{
		"x-slack-signature":         {good.Get("X-Slack-Signature")},
		"x-slack-request-timestamp": {good.Get("X-Slack-Request-Timestamp")},
	}
	// http.Header.Get canonicalises the key it looks up, not the map's keys:
	// such a map is not what net/http produces, and it is refused.
	require.ErrorIs(t, slack.Verify(h, verifyBody, secret, verifyNow), slack.ErrMissingSignature)
}

func del(h http.Header, k string) http.Header { h.Del(k); return h }

func set(h http.Header, k, v string) http.Header { h.Set(k, v); return h }
