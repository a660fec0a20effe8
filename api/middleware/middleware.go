// Package middleware holds the Gin middleware every request passes through:
// request IDs and logs, panic recovery, body limits and bearer authentication.
package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/logging"
)

// RequestLog gives each request an ID (kept from X-Request-Id when sane),
// attaches it to the request context's log attributes and logs the outcome.
func RequestLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := c.GetHeader("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Header("X-Request-Id", id)
		c.Request = c.Request.WithContext(logging.With(c.Request.Context(), slog.String("request_id", id)))
		c.Next()

		status := c.Writer.Status()
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case c.Request.URL.Path == "/healthz" || c.Request.URL.Path == "/readyz" || c.Request.URL.Path == "/metrics" ||
			strings.HasPrefix(c.Request.URL.Path, "/static/"):
			level = slog.LevelDebug
		}
		attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "status", status,
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "bytes", c.Writer.Size()}
		logger.Log(c.Request.Context(), level, "http request", attrs...)
	}
}

// Recover turns a panic into a 500 with a safe message and logs the stack.
// respond writes the error (JSON for the API, a page for the portal).
func Recover(logger *slog.Logger, respond func(c *gin.Context, err error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(r) // the client went away; let net/http handle it
				}
				logger.ErrorContext(c.Request.Context(), "panic in handler", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				if !c.Writer.Written() {
					respond(c, apperr.From(fmt.Errorf("panic: %v", r)))
				}
				c.Abort()
			}
		}()
		c.Next()
	}
}

// BodyLimit caps request bodies at limit(c) bytes (the route is matched
// already, so the limit may depend on it: uploads get a larger one). A
// declared Content-Length over the limit is refused at once; an undeclared
// one fails on read (http.MaxBytesError).
func BodyLimit(limit func(c *gin.Context) int64, respond func(c *gin.Context, err error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		n := limit(c)
		if c.Request.ContentLength > n {
			respond(c, apperr.New(http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("the body is larger than %d bytes", n)))
			c.Abort()
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}

// TokenResolver resolves a bearer token to a principal.
type TokenResolver interface {
	PrincipalForToken(ctx context.Context, raw string) (authz.Principal, error)
}

// Bearer authenticates "Authorization: Bearer <token>" when present. A bad
// token is refused at once; no header leaves the request anonymous, and the
// route's guard decides whether that is enough.
func Bearer(tokens TokenResolver) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		if h == "" {
			c.Next()
			return
		}
		scheme, raw, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
			c.Header("WWW-Authenticate", `Bearer realm="konstruct"`)
			apiutil.Error(c, apperr.Unauthorized("use the header Authorization: Bearer <token>"))
			return
		}
		p, err := tokens.PrincipalForToken(c.Request.Context(), strings.TrimSpace(raw))
		if err != nil {
			c.Header("WWW-Authenticate", `Bearer realm="konstruct", error="invalid_token"`)
			switch {
			case errors.Is(err, auth.ErrInvalidToken):
				apiutil.Error(c, apperr.Unauthorized(err.Error()))
			case errors.Is(err, auth.ErrSuspended):
				apiutil.Error(c, apperr.Forbidden(err.Error()))
			default:
				apiutil.Error(c, err)
			}
			return
		}
		authz.SetPrincipal(c, p)
		c.Request = c.Request.WithContext(logging.With(c.Request.Context(),
			slog.String("user_id", p.UserID.String()), slog.String("tenant_id", p.TenantID.String())))
		c.Next()
	}
}
