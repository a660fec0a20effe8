// Package auth signs people in: passwords (argon2id), API tokens (random,
// stored hashed, revocable), the bootstrap platform admin, and sign-in rate
// limits. Sessions for the portal build on it.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/ratelimit"
	"github.com/konstruct/konstruct/internal/store"
)

// Errors callers map to responses. Messages are safe to show.
var (
	ErrInvalidCredentials = errors.New("email or password is incorrect")
	ErrInvalidToken       = errors.New("the token is invalid, expired or revoked")
	ErrSuspended          = errors.New("this account's organisation is suspended; contact support")
)

// RateLimitedError says how long to wait before trying again.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many sign-in attempts; try again in %d seconds", int(e.RetryAfter.Seconds())+1)
}

// Service authenticates users and tokens.
type Service struct {
	store          *store.Store
	limiter        *ratelimit.Limiter
	loginPerMinute int
	tokenTTL       time.Duration
	logger         *slog.Logger
}

// Config tunes the service.
type Config struct {
	LoginAttemptsPerMinute int           // per email and per client address
	TokenTTL               time.Duration // lifetime of tokens from /auth/token
}

// NewService wires the service.
func NewService(s *store.Store, l *ratelimit.Limiter, cfg Config, logger *slog.Logger) *Service {
	if cfg.LoginAttemptsPerMinute <= 0 {
		cfg.LoginAttemptsPerMinute = 10
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 30 * 24 * time.Hour
	}
	return &Service{store: s, limiter: l, loginPerMinute: cfg.LoginAttemptsPerMinute, tokenTTL: cfg.TokenTTL, logger: logger}
}

// Authenticate checks an email and password. Attempts are rate-limited per
// email and per client address, whether they succeed or not, so neither a
// single account nor a single client can be guessed at quickly.
func (s *Service) Authenticate(ctx context.Context, email, password, clientIP string) (store.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	for _, key := range []string{"login:email:" + email, "login:ip:" + clientIP} {
		res, err := s.limiter.Allow(ctx, key, s.loginPerMinute)
		if err != nil {
			return store.User{}, fmt.Errorf("auth: authenticate: %w", err)
		}
		if !res.Allowed {
			s.logger.WarnContext(ctx, "sign-in rate limited", "key", key)
			return store.User{}, &RateLimitedError{RetryAfter: res.RetryAfter}
		}
	}
	if len(password) > MaxPasswordLen {
		return store.User{}, ErrInvalidCredentials
	}
	var user store.User
	var tenant store.Tenant
	err := s.store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		if user, err = tx.GetUserByEmail(ctx, email); err != nil {
			return err
		}
		if user.TenantID != nil {
			if tenant, err = tx.GetTenant(ctx, *user.TenantID); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		burnPasswordCheck(password)
		return store.User{}, ErrInvalidCredentials
	}
	if err != nil {
		return store.User{}, fmt.Errorf("auth: authenticate: %w", err)
	}
	if !CheckPassword(user.PasswordHash, password) || user.DisabledAt != nil {
		return store.User{}, ErrInvalidCredentials
	}
	if user.TenantID != nil && tenant.Status != store.TenantActive {
		return store.User{}, ErrSuspended
	}
	if err := s.store.WithPlatform(ctx, func(tx *store.Tx) error { return tx.TouchLogin(ctx, user.ID) }); err != nil {
		return store.User{}, fmt.Errorf("auth: authenticate: %w", err)
	}
	return user, nil
}

// IssueToken creates an API token for user. The raw token is returned once.
func (s *Service) IssueToken(ctx context.Context, user store.User, name string) (string, store.APIToken, error) {
	raw, hash := NewToken()
	expires := time.Now().Add(s.tokenTTL)
	var tok store.APIToken
	err := s.store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		if tok, err = tx.CreateAPIToken(ctx, user, name, hash, &expires); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{TenantID: user.TenantID, Actor: "user:" + user.ID.String(),
			Action: "auth.token.issue", TargetType: "api_token", TargetID: tok.ID.String()})
	})
	if err != nil {
		return "", store.APIToken{}, fmt.Errorf("auth: issue token: %w", err)
	}
	return raw, tok, nil
}

// PrincipalForToken resolves a bearer token to its user.
func (s *Service) PrincipalForToken(ctx context.Context, raw string) (authz.Principal, error) {
	if !strings.HasPrefix(raw, TokenPrefix) || len(raw) > 100 {
		return authz.Principal{}, ErrInvalidToken
	}
	var user store.User
	var tenant store.Tenant
	err := s.store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		if _, user, err = tx.LookupAPIToken(ctx, HashToken(raw)); err != nil {
			return err
		}
		if user.TenantID != nil {
			tenant, err = tx.GetTenant(ctx, *user.TenantID)
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return authz.Principal{}, ErrInvalidToken
	}
	if err != nil {
		return authz.Principal{}, fmt.Errorf("auth: resolve token: %w", err)
	}
	if user.TenantID != nil && tenant.Status != store.TenantActive {
		return authz.Principal{}, ErrSuspended
	}
	return PrincipalOf(user), nil
}

// PrincipalOf turns a user into the principal authorization works with.
func PrincipalOf(u store.User) authz.Principal {
	p := authz.Principal{UserID: u.ID, Role: u.Role, Email: u.Email, Name: u.Name}
	if u.TenantID != nil {
		p.TenantID = *u.TenantID
	}
	return p
}

// Bootstrap creates the platform admin from configuration on first start. It
// does nothing when a platform admin already exists.
func (s *Service) Bootstrap(ctx context.Context, email, password string) (bool, error) {
	if email == "" {
		return false, nil
	}
	hash, err := HashPassword(password)
	if err != nil {
		return false, err
	}
	created := false
	err = s.store.WithPlatform(ctx, func(tx *store.Tx) error {
		// Serialise concurrent first starts (serve and worker together).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(4242)`); err != nil {
			return err
		}
		n, err := tx.CountUsersWithRole(ctx, store.RolePlatformAdmin)
		if err != nil || n > 0 {
			return err
		}
		u, err := tx.CreateUser(ctx, store.User{ID: uuid.New(), Email: email, Name: "Platform admin",
			PasswordHash: hash, Role: store.RolePlatformAdmin})
		if err != nil {
			return err
		}
		created = true
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "system", Action: "user.bootstrap_admin",
			TargetType: "user", TargetID: u.ID.String()})
	})
	if err != nil {
		return false, fmt.Errorf("auth: bootstrap admin: %w", err)
	}
	return created, nil
}
