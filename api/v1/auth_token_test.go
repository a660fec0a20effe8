package v1_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

const tokenPath = "/api/v1/auth/token"

func TestCreateToken(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})

	r := s.Do(t, http.MethodPost, tokenPath, "", map[string]string{"email": "  " + strings.ToUpper(s.AdminEmail) + " ",
		"password": s.AdminPassword, "name": "ci"}).Expect(t, http.StatusCreated)
	var tok struct {
		Token     string     `json:"token"`
		TokenID   uuid.UUID  `json:"token_id"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	r.JSON(t, &tok)
	require.True(t, strings.HasPrefix(tok.Token, "kst_"), "email is matched case- and space-insensitively")
	require.NotNil(t, tok.ExpiresAt)
	require.WithinDuration(t, time.Now().Add(30*24*time.Hour), *tok.ExpiresAt, time.Hour)

	me := s.Do(t, http.MethodGet, "/api/v1/me", tok.Token, nil).Expect(t, http.StatusOK).Object(t)
	require.Equal(t, s.AdminEmail, me["email"])
	require.Equal(t, "platform_admin", me["role"])
	require.Nil(t, me["tenant_id"], "a platform admin belongs to no tenant")

	// The token is stored hashed, under the name given.
	ctx := context.Background()
	require.NoError(t, s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM api_tokens WHERE id = $1 AND name = 'ci' AND token_hash <> convert_to($2, 'UTF8')`,
			tok.TokenID, tok.Token)
		require.EqualValues(t, 1, n)
		return err
	}))

	// A customer user's /me names its tenant.
	ten := s.CreateTenant(t, "Acme")
	u := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	me = s.Do(t, http.MethodGet, "/api/v1/me", u.Token, nil).Expect(t, http.StatusOK).Object(t)
	require.Equal(t, ten.ID.String(), me["tenant_id"])
	require.Equal(t, "customer_operator", me["role"])
}

// A wrong password and an unknown email get the same plain 401: the answer
// does not reveal which accounts exist.
func TestCreateTokenWrongCredentials(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	wrongPassword := s.Do(t, http.MethodPost, tokenPath, "", map[string]string{"email": s.AdminEmail, "password": "not-the-password"}).
		ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	unknownEmail := s.Do(t, http.MethodPost, tokenPath, "", map[string]string{"email": "nobody@example.test", "password": "whatever-it-is"}).
		ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	require.Equal(t, wrongPassword, unknownEmail)
	require.Equal(t, "email or password is incorrect", wrongPassword)

	// Missing fields are validation errors naming the field, not credential failures.
	s.Do(t, http.MethodPost, tokenPath, "", map[string]string{"password": "x"}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "email")
	s.Do(t, http.MethodPost, tokenPath, "", map[string]string{"email": s.AdminEmail}).ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "password")
	s.Do(t, http.MethodPost, tokenPath, "", map[string]string{"email": s.AdminEmail, "password": s.AdminPassword, "name": strings.Repeat("n", 201)}).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "name")
	// Characters Postgres cannot store are refused before they reach it.
	s.Do(t, http.MethodPost, tokenPath, "", `{"email":"a\u0000@example.test","password":"whatever-it-is"}`).
		ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	s.Do(t, http.MethodPost, tokenPath, "", `{"email":"`+s.AdminEmail+`","password":"`+s.AdminPassword+`","name":"ci\u0000"}`).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "name")
}

// Sign-in attempts are limited per email and per client address: over the
// limit the answer is 429 with Retry-After, even with the right password.
func TestCreateTokenRateLimited(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"RATE_LIMIT_LOGIN_PER_MINUTE": "3"}})
	ten := s.CreateTenant(t, "Limits")
	victim := s.NewUser(t, ten.ID, store.RoleCustomerAdmin) // one sign-in already counted for this email

	attempt := func(email, password, ip string) *apitest.Response {
		req := s.NewRequest(t, http.MethodPost, tokenPath, "", map[string]string{"email": email, "password": password})
		req.Header.Set("X-Forwarded-For", ip)
		return s.Send(t, req)
	}
	// Fresh addresses: the limiter's counts live in Redis, across test runs.
	freshIP := func() string {
		u := uuid.New()
		return fmt.Sprintf("2001:db8:%x:%x:%x:%x::1", u[0:2], u[2:4], u[4:6], u[6:8])
	}
	// Per address: three attempts, then 429 for any email.
	ip := freshIP()
	for i := range 3 {
		attempt("guess"+strconv.Itoa(i)+"@example.test", "wrong-password", ip).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	}
	r := attempt(s.AdminEmail, s.AdminPassword, ip)
	msg := r.ExpectError(t, http.StatusTooManyRequests, "rate_limited", "")
	require.Contains(t, msg, "too many sign-in attempts")
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.True(t, retry >= 1 && retry <= 61, "Retry-After %d", retry)

	// Per email: attempts on one account from many addresses are limited too.
	attempt(victim.Email, "wrong-password", freshIP()).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	attempt(victim.Email, "wrong-password", freshIP()).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	attempt(victim.Email, victim.Password, freshIP()).ExpectError(t, http.StatusTooManyRequests, "rate_limited", "")

	// Others are not affected.
	u := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	require.NotEmpty(t, u.Token)
}

// Bodies that cannot be decoded get a 4xx naming the problem, before any
// credential is checked.
func TestBadRequestBodies(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"MAX_BODY_BYTES": "2048"}})
	ten := s.CreateTenant(t, "Bodies")
	agents := "/api/v1/tenants/" + ten.ID.String() + "/agents"

	for _, path := range []string{tokenPath, "/api/v1/tenants", agents} {
		t.Run(strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			token := s.AdminToken
			if path == tokenPath {
				token = ""
			}
			cases := []struct {
				name, body, code, field string
				status                  int
			}{
				{"malformed", `{"name":`, "malformed_json", "", 400},
				{"not an object", `[1,2]`, "wrong_type", "", 400},
				{"trailing data", `{"name":"a"} {}`, "malformed_json", "", 400},
				{"empty", ``, "empty_body", "", 400},
				{"unknown field", `{"name":"a","nmae":"typo"}`, "unknown_field", "nmae", 400},
				{"wrong type", `{"name":5}`, "wrong_type", "name", 400},
			}
			if path == tokenPath {
				cases[4].body = `{"email":"a@b.c","password":"p","passwd":"typo"}`
				cases[4].field = "passwd"
				cases[5].body = `{"email":["a@b.c"],"password":"p"}`
				cases[5].field = "email"
			}
			for _, c := range cases {
				e := s.Do(t, http.MethodPost, path, token, c.body)
				msg := e.ExpectError(t, c.status, c.code, c.field)
				require.NotEmpty(t, msg, c.name)
				if c.field != "" {
					require.Contains(t, msg, c.field, "%s: the message names the field", c.name)
				}
			}

			// Media types are case-insensitive and may carry parameters.
			for _, ct := range []string{"Application/JSON", "application/json; charset=utf-8"} {
				req := s.NewRequest(t, http.MethodPost, path, token, `{}`)
				req.Header.Set("Content-Type", ct)
				require.NotEqual(t, http.StatusUnsupportedMediaType, s.Send(t, req).Status, ct)
			}
			// Another media type: 415.
			req := s.NewRequest(t, http.MethodPost, path, token, `{"name":"a"}`)
			req.Header.Set("Content-Type", "text/plain")
			s.Send(t, req).ExpectError(t, http.StatusUnsupportedMediaType, "unsupported_media_type", "")
			req = s.NewRequest(t, http.MethodPost, path, token, `name=a`)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			s.Send(t, req).ExpectError(t, http.StatusUnsupportedMediaType, "unsupported_media_type", "")

			// Over KONSTRUCT_MAX_BODY_BYTES: 413, declared or streamed.
			big := `{"name":"` + strings.Repeat("x", 4096) + `"}`
			s.Do(t, http.MethodPost, path, token, big).ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large", "")
			req = s.NewRequest(t, http.MethodPost, path, token, nil)
			req.Body = io.NopCloser(strings.NewReader(big)) // no Content-Length: chunked
			req.ContentLength = -1
			req.Header.Set("Content-Type", "application/json")
			s.Send(t, req).ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large", "")
		})
	}
}

// Bearer tokens: missing, malformed, unknown, revoked and expired tokens get
// 401 with WWW-Authenticate; a suspended tenant's token gets 403.
func TestBearerTokens(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ctx := context.Background()
	ten := s.CreateTenant(t, "Tokens")

	issue := func() (string, uuid.UUID) {
		u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
		var id uuid.UUID
		require.NoError(t, s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
			toks, err := tx.ListAPITokens(ctx, u.ID)
			if err == nil {
				id = toks[0].ID
			}
			return err
		}))
		s.Do(t, http.MethodGet, "/api/v1/me", u.Token, nil).Expect(t, http.StatusOK)
		return u.Token, id
	}
	me := func(header string) *apitest.Response {
		req := s.NewRequest(t, http.MethodGet, "/api/v1/me", "", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		return s.Send(t, req)
	}

	revoked, id := issue()
	require.NoError(t, s.Store.WithPlatform(ctx, func(tx *store.Tx) error { return tx.RevokeAPIToken(ctx, id) }))
	expired, id := issue()
	require.NoError(t, s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, id)
		return err
	}))
	for name, header := range map[string]string{
		"none":          "",
		"revoked":       "Bearer " + revoked,
		"expired":       "Bearer " + expired,
		"garbage":       "Bearer kst_garbage",
		"not ours":      "Bearer abc.def.ghi",
		"too long":      "Bearer kst_" + strings.Repeat("a", 500),
		"basic scheme":  "Basic YWRtaW46cGFzc3dvcmQ=",
		"empty bearer":  "Bearer ",
		"no scheme":     "kst_whatever",
		"only a scheme": "Bearer",
	} {
		r := me(header)
		r.ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
		require.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer", name)
	}
	// A bad token is refused even on the public sign-in route.
	req := s.NewRequest(t, http.MethodPost, tokenPath, "kst_garbage", map[string]string{"email": s.AdminEmail, "password": s.AdminPassword})
	s.Send(t, req).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	// The scheme is case-insensitive.
	good, _ := issue()
	me("bearer "+good).Expect(t, http.StatusOK)
}
