package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	slackapi "github.com/slack-go/slack"
)

// Error is a failed Web API call. It wraps the underlying error (slack-go's
// SlackErrorResponse, RateLimitedError, StatusCodeError, or a transport error).
type Error struct {
	// Method is the Web API method, e.g. "chat.postMessage".
	Method string
	// Code is Slack's error code from an ok:false answer ("invalid_auth"), or "".
	Code string
	// StatusCode is the HTTP status when it was not 200, or 0.
	StatusCode int
	// RetryAfter is the wait Slack asked for with a 429 Retry-After header.
	RetryAfter time.Duration
	// Permanent reports that retrying the same call cannot succeed.
	Permanent bool
	Err       error
}

func (e *Error) Error() string {
	switch {
	case e.Code != "":
		return fmt.Sprintf("slack: %s: %s", e.Method, e.Code)
	case e.StatusCode == http.StatusTooManyRequests:
		return fmt.Sprintf("slack: %s: rate limited, retry after %s", e.Method, e.RetryAfter)
	default:
		return fmt.Sprintf("slack: %s: %v", e.Method, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a Slack failure that retrying cannot fix
// (bad or revoked token, missing channel, text too long, ...). Rate limits,
// 5xx answers, network errors and Slack's own transient error codes are not
// permanent; nor is an error this package did not produce.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// RetryAfter returns the wait Slack asked for (HTTP 429 with Retry-After), if
// it asked for one.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// ErrorCode returns Slack's error code ("invalid_auth", "channel_not_found",
// ...) when err carries one, else "".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// transientCodes are ok:false error codes that Slack documents as temporary.
// Every other ok:false code (invalid_auth, not_authed, account_inactive,
// token_revoked, channel_not_found, not_in_channel, is_archived, msg_too_long,
// missing_scope, invalid_arguments, ...) describes the request or the
// workspace and is permanent.
var transientCodes = map[string]bool{
	"ratelimited":         true,
	"rate_limited":        true,
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"team_added_to_org":   true,
}

// wrapErr classifies an error from slack-go for method.
func wrapErr(method string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Method: method, Err: err}
	var (
		apiErr  slackapi.SlackErrorResponse
		rateErr *slackapi.RateLimitedError
		codeErr slackapi.StatusCodeError
	)
	switch {
	case errors.As(err, &apiErr):
		e.Code = apiErr.Err
		e.Permanent = !transientCodes[apiErr.Err]
	case errors.As(err, &rateErr):
		e.StatusCode = http.StatusTooManyRequests
		e.RetryAfter = rateErr.RetryAfter
	case errors.As(err, &codeErr):
		e.StatusCode = codeErr.Code
		// 5xx, 408 and 429 (without Retry-After) are worth retrying; any other
		// non-200 status (404 for a wrong API URL, 400, 403 from a proxy) will
		// answer the same way next time.
		e.Permanent = !(codeErr.Code >= 500 || codeErr.Code == http.StatusTooManyRequests ||
			codeErr.Code == http.StatusRequestTimeout)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller gave up; not a property of the request.
	default:
		// Network errors, a lost response, an unreadable body: retry (callers
		// that post must look the message up first, see FindByKey).
	}
	return e
}
