package whatsapp

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Graph API error codes Konstruct acts on (Meta recommends building on the
// code, not the title: titles are being deprecated).
const (
	CodeAuth            = 0      // AuthException: the token cannot be used
	CodeTokenExpired    = 190    // access token expired or invalidated: the operator must connect again
	CodeInvalidParam    = 100    // invalid parameter; with subcode 33, the object (phone number) does not exist for this token
	CodeThroughput      = 130429 // Cloud API throughput reached for the business number
	CodePairRate        = 131056 // too many messages to the same user from the number in a short time
	CodeSpamRate        = 131048 // quality-based limit on the number
	CodeBusinessRate    = 80007  // the WhatsApp Business Account's rate limit
	CodeAppRate         = 4      // the app's call rate limit
	CodeReengagement    = 131047 // more than 24 hours since the user last wrote: only a template may go
	CodeUndeliverable   = 131026 // the user cannot receive it (no WhatsApp, old app, blocked the business, ...)
	CodeUnknownServer   = 1      // "invalid request or possible server error"
	CodeService         = 2      // temporary downtime or overload
	CodeSomethingWrong  = 131000 // something went wrong at Meta
	CodeServiceDown     = 131016 // service unavailable
	CodeUnsupportedType = 131051 // inbound message of a type Meta does not support
)

// Error is a failed Graph API call: either Meta answered with an error object
// ({"error":{"message","type","code","error_subcode","fbtrace_id",...}}) —
// then nothing was sent — or the call got no usable answer (Err is set), and
// whether Meta acted on it is unknown.
type Error struct {
	Op         string // what was attempted: "send message", "get phone number"
	HTTPStatus int    // 0 when no answer arrived
	Code       int
	Subcode    int
	Type       string
	Message    string
	Details    string // error_data.details
	FBTraceID  string
	Err        error // transport error, or an answer that was not a Graph error
	answered   bool
}

func (e *Error) Error() string {
	switch {
	case e.answered:
		return fmt.Sprintf("whatsapp: %s: graph error %d (HTTP %d): %s", e.Op, e.Code, e.HTTPStatus, e.Message)
	case e.HTTPStatus != 0:
		return fmt.Sprintf("whatsapp: %s: HTTP %d: %v", e.Op, e.HTTPStatus, e.Err)
	default:
		return fmt.Sprintf("whatsapp: %s: %v", e.Op, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Answered reports whether Meta answered with a Graph error object: the
// request was refused and nothing was sent. A transport error or a lost
// answer is not answered: the message may have gone out.
func (e *Error) Answered() bool { return e.answered }

func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Code returns the Graph error code of err, or -1 when it carries none.
func Code(err error) int {
	if e, ok := asError(err); ok && e.answered {
		return e.Code
	}
	return -1
}

// Answered reports whether err is a refusal Meta answered (see Error.Answered).
func Answered(err error) bool {
	e, ok := asError(err)
	return ok && e.answered
}

// IsTokenInvalid reports whether the token was refused (190, or the
// AuthException code 0): sending with it again cannot work.
func IsTokenInvalid(err error) bool {
	e, ok := asError(err)
	return ok && e.answered && (e.Code == CodeTokenExpired || (e.Code == CodeAuth && e.HTTPStatus == http.StatusUnauthorized))
}

// IsRateLimited reports whether Meta asked to slow down.
func IsRateLimited(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	if e.answered {
		switch e.Code {
		case CodeThroughput, CodePairRate, CodeSpamRate, CodeBusinessRate, CodeAppRate:
			return true
		}
	}
	return e.HTTPStatus == http.StatusTooManyRequests
}

// IsTransient reports whether retrying the same request may succeed: rate
// limits, Meta's own server errors, and calls that got no answer.
func IsTransient(err error) bool {
	e, ok := asError(err)
	if !ok {
		return true
	}
	if IsRateLimited(err) {
		return true
	}
	if e.answered {
		switch e.Code {
		case CodeUnknownServer, CodeService, CodeSomethingWrong, CodeServiceDown:
			return true
		}
		return e.HTTPStatus >= 500
	}
	// No Graph error: a transport failure, or an answer from something in
	// between (a proxy's 502). A 4xx from elsewhere (a wrong API URL's 404)
	// answers the same next time.
	return e.HTTPStatus == 0 || e.HTTPStatus >= 500 || e.HTTPStatus == http.StatusRequestTimeout
}

// RetryDelay is how long to wait before trying again after a rate-limit
// error, growing with the attempt (1-based): Meta's throughput limit (130429)
// clears within seconds; the limit per user (131056) allows about one message
// every 6 seconds to the same user; the quality limit (131048) and account
// limits (80007, 4) need minutes.
func RetryDelay(err error, attempt int) time.Duration {
	base, ceiling := time.Second, 30*time.Second
	switch Code(err) {
	case CodePairRate:
		base, ceiling = 6*time.Second, time.Minute
	case CodeSpamRate, CodeBusinessRate, CodeAppRate:
		base, ceiling = 30*time.Second, 10*time.Minute
	}
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}
