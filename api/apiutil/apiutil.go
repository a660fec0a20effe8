// Package apiutil holds what every JSON handler shares: strict decoding,
// the error envelope {"error":{"code","message","field"}}, and a handler
// adapter that turns returned errors into responses and log lines.
package apiutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/apperr"
)

// ErrorBody is the JSON shape of every API error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail names what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	URL     string `json:"url,omitempty"` // where to act on it (plan_limit: the Billing page)
}

// Handler adapts a handler that returns an error.
func Handler(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			Error(c, err)
		}
	}
}

// Error writes err as the JSON error envelope and logs the detail: server
// errors at error level, client errors at info.
func Error(c *gin.Context, err error) {
	e := apperr.From(err)
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	slog.Log(c.Request.Context(), level, "request failed", "method", c.Request.Method, "path", c.FullPath(),
		"status", e.Status, "code", e.Code, "err", e.Error())
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		if c.Writer.Header().Get("Retry-After") == "" {
			c.Header("Retry-After", "60")
		}
	}
	c.AbortWithStatusJSON(e.Status, ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message, Field: e.Field, URL: e.URL}})
}

// Decode reads a JSON body into v strictly: one object, no unknown fields,
// within the body limit. Each failure is an *apperr.Error naming the problem.
func Decode(c *gin.Context, v any) error {
	// Media types are case-insensitive (RFC 9110 §8.3.1).
	if ct := c.ContentType(); ct != "" && !strings.EqualFold(ct, "application/json") {
		return apperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as JSON with the header Content-Type: application/json")
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apperr.New(http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit))
		}
		return apperr.BadRequest("unreadable_body", "the request body could not be read").Wrap(err)
	}
	return DecodeBytes(body, v)
}

// DecodeBytes is Decode on a body already read.
func DecodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.BadRequest("empty_body", "the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return apperr.BadRequest("malformed_json", "the body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.BadRequest("malformed_json", "the body has data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return apperr.BadRequest("malformed_json", fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())).Wrap(err)
	case errors.As(err, &typ):
		field := typ.Field
		e := apperr.BadRequest("wrong_type", fmt.Sprintf("field %q must be %s", field, jsonType(typ.Type.Kind().String())))
		e.Field = field
		return e.Wrap(err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apperr.BadRequest("malformed_json", "the JSON body ends too early").Wrap(err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e := apperr.BadRequest("unknown_field", fmt.Sprintf("unknown field %q", field))
		e.Field = field
		return e.Wrap(err)
	}
	return apperr.BadRequest("malformed_json", "the body is not valid JSON").Wrap(err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return "of another type"
}
