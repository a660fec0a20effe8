package v1

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
)

type tokenRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

type tokenResponse struct {
	Token     string  `json:"token"`
	TokenID   string  `json:"token_id"`
	ExpiresAt *string `json:"expires_at"`
}

// createToken exchanges email + password for a bearer token.
func (a *API) createToken(c *gin.Context) error {
	var req tokenRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Email) == "" {
		return apperr.Invalid("email", "is required")
	}
	if req.Password == "" {
		return apperr.Invalid("password", "is required")
	}
	if len(req.Name) > 200 {
		return apperr.Invalid("name", "must be at most 200 characters")
	}
	if strings.ContainsRune(req.Name, 0) {
		return apperr.Invalid("name", "contains invalid characters")
	}
	if strings.ContainsRune(req.Email, 0) {
		// No account has such an address, and Postgres cannot even compare
		// it: answer as for any unknown email instead of failing there.
		return apperr.Unauthorized(auth.ErrInvalidCredentials.Error())
	}
	user, err := a.Auth.Authenticate(c.Request.Context(), req.Email, req.Password, c.ClientIP())
	var limited *auth.RateLimitedError
	switch {
	case errors.As(err, &limited):
		c.Header("Retry-After", strconv.Itoa(int(limited.RetryAfter.Seconds())+1))
		return apperr.TooManyRequests(limited.Error())
	case errors.Is(err, auth.ErrInvalidCredentials):
		a.Logger.InfoContext(c.Request.Context(), "token request refused: bad credentials", "email", req.Email, "ip", c.ClientIP())
		return apperr.Unauthorized(err.Error())
	case errors.Is(err, auth.ErrSuspended):
		return apperr.Forbidden(err.Error())
	case err != nil:
		return err
	}
	name := req.Name
	if name == "" {
		name = "api"
	}
	raw, tok, err := a.Auth.IssueToken(c.Request.Context(), user, name)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, tokenResponse{Token: raw, TokenID: tok.ID.String(), ExpiresAt: tsPtr(tok.ExpiresAt)})
	return nil
}

type meResponse struct {
	UserID   string  `json:"user_id"`
	Email    string  `json:"email"`
	Name     string  `json:"name"`
	Role     string  `json:"role"`
	TenantID *string `json:"tenant_id"`
}

func (a *API) me(c *gin.Context) error {
	p := principal(c)
	out := meResponse{UserID: p.UserID.String(), Email: p.Email, Name: p.Name, Role: p.Role}
	if p.TenantID.String() != "00000000-0000-0000-0000-000000000000" {
		s := p.TenantID.String()
		out.TenantID = &s
	}
	c.JSON(http.StatusOK, out)
	return nil
}
