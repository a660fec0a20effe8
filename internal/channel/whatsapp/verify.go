// Package whatsapp is Konstruct's WhatsApp Business Cloud API edge: webhook
// verification (Meta's handshake and X-Hub-Signature-256), parsing of the
// messages webhook (messages and statuses), and the outbound Graph API client
// that sends text and template messages with each tenant's access token.
//
// The media download client lives in media.go (images and other files an end
// user sends are fetched by an activity, never by the webhook).
package whatsapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
)

// HeaderSignature is the header Meta signs webhook deliveries with:
// "sha256=" followed by the hex HMAC-SHA256 of the raw body, keyed with the
// app secret.
const HeaderSignature = "X-Hub-Signature-256"

const sigPrefix = "sha256="

// Reasons Verify refuses a delivery; test with errors.Is.
var (
	// ErrNoAppSecret: the server has no app secret configured.
	ErrNoAppSecret = errors.New("whatsapp: verify: no app secret configured")
	// ErrMissingSignature: X-Hub-Signature-256 is absent.
	ErrMissingSignature = errors.New("whatsapp: verify: missing X-Hub-Signature-256")
	// ErrMalformedSignature: the header is not "sha256=" and 64 hex digits.
	ErrMalformedSignature = errors.New("whatsapp: verify: malformed signature")
	// ErrBadSignature: the signature does not match the body and app secret.
	ErrBadSignature = errors.New("whatsapp: verify: signature mismatch")
)

// Verify checks Meta's X-Hub-Signature-256 over the exact bytes received,
// in constant time. Verify before parsing: nothing in an unsigned body is
// looked at.
func Verify(header http.Header, body []byte, appSecret string) error {
	if appSecret == "" {
		return ErrNoAppSecret
	}
	sig := header.Get(HeaderSignature)
	if sig == "" {
		return ErrMissingSignature
	}
	if len(sig) != len(sigPrefix)+2*sha256.Size || sig[:len(sigPrefix)] != sigPrefix {
		return ErrMalformedSignature
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(sig[len(sigPrefix):])); err != nil {
		return ErrMalformedSignature
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), want[:]) {
		return ErrBadSignature
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value Meta sends for body.
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return sigPrefix + hex.EncodeToString(mac.Sum(nil))
}

// Handshake answers Meta's webhook verification request (GET with
// hub.mode=subscribe, hub.verify_token and hub.challenge): it returns the
// challenge to echo back when the mode is subscribe and the token equals
// verifyToken (compared in constant time), and ok=false otherwise, including
// when no verify token is configured.
func Handshake(q url.Values, verifyToken string) (challenge string, ok bool) {
	if verifyToken == "" || q.Get("hub.mode") != "subscribe" {
		return "", false
	}
	// Hashing first makes the comparison constant-time in the length too.
	got, want := sha256.Sum256([]byte(q.Get("hub.verify_token"))), sha256.Sum256([]byte(verifyToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return "", false
	}
	return q.Get("hub.challenge"), true
}

// VerifyTokenSHA256 is the SHA-256 of a verify token: how a successful
// handshake is recorded (store.RecordWhatsAppVerification), so that a
// verification made with an earlier token does not count for a new one.
func VerifyTokenSHA256(verifyToken string) []byte {
	sum := sha256.Sum256([]byte(verifyToken))
	return sum[:]
}
