package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/store"
)

// Session keys.
const (
	keyUser    = "uid"     // the signed-in user's ID
	keyTenant  = "tid"     // their tenant's ID ("" for a platform admin)
	keyPrint   = "fp"      // fingerprint of their password hash: a password change ends other sessions
	keyAuthAt  = "auth_at" // when they signed in (unix seconds)
	keyCSRF    = "csrf"    // the form token
	keyFlash   = "flash"   // "kind|message" shown once on the next page
	keyExpired = "expired" // the previous session had expired
)

// sessionWriter commits the session (and sets its cookie) just before the
// response's headers go out, like scs.LoadAndSave does for net/http.
type sessionWriter struct {
	gin.ResponseWriter
	commit func()
	done   bool
}

func (w *sessionWriter) before() {
	if !w.done {
		w.done = true
		w.commit()
	}
}

func (w *sessionWriter) WriteHeaderNow() { w.before(); w.ResponseWriter.WriteHeaderNow() }
func (w *sessionWriter) Write(b []byte) (int, error) {
	w.before()
	return w.ResponseWriter.Write(b)
}
func (w *sessionWriter) WriteString(s string) (int, error) {
	w.before()
	return w.ResponseWriter.WriteString(s)
}
func (w *sessionWriter) Flush() { w.before(); w.ResponseWriter.Flush() }

// loadSession loads the session named by the cookie into the request context
// and commits it before the response is written.
func (p *Portal) loadSession(c *gin.Context) {
	var token string
	if ck, err := c.Request.Cookie(p.sessions.Cookie.Name); err == nil {
		token = ck.Value
	}
	ctx, err := p.sessions.Load(c.Request.Context(), token)
	if err != nil {
		p.d.Logger.ErrorContext(c.Request.Context(), "load session", "err", err)
		p.renderError(c, http.StatusServiceUnavailable, "The portal cannot reach its session store",
			"Please try again in a moment. If this keeps happening, the database may be down.")
		c.Abort()
		return
	}
	// A cookie whose session is gone: it expired (or was signed out elsewhere).
	if token != "" && p.sessions.Token(ctx) == "" {
		p.sessions.Put(ctx, keyExpired, true)
	}
	c.Request = c.Request.WithContext(ctx)
	c.Header("Vary", "Cookie")
	sw := &sessionWriter{ResponseWriter: c.Writer}
	sw.commit = func() { p.commitSession(c.Writer, c.Request) }
	c.Writer = sw
	c.Next()
	sw.before()
}

func (p *Portal) commitSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch p.sessions.Status(ctx) {
	case scs.Modified:
		token, expiry, err := p.sessions.Commit(ctx)
		if err != nil {
			p.d.Logger.ErrorContext(ctx, "commit session", "err", err)
			return
		}
		p.sessions.WriteSessionCookie(ctx, w, token, expiry)
	case scs.Destroyed:
		p.sessions.WriteSessionCookie(ctx, w, "", time.Time{})
	}
}

// viewer is who is looking at a page.
type viewer struct {
	Principal authz.Principal
	User      store.User
	Tenant    *store.Tenant // the viewer's own tenant; nil for platform admins
}

const viewerKey = "konstruct.viewer"

func viewerOf(c *gin.Context) *viewer {
	if v, ok := c.Get(viewerKey); ok {
		return v.(*viewer)
	}
	return nil
}

// fingerprint ties a session to the password it was opened with.
func fingerprint(passwordHash string) string {
	sum := sha256.Sum256([]byte("session:" + passwordHash))
	return hex.EncodeToString(sum[:8])
}

var errSessionEnded = errors.New("session ended")

// identify turns the session into a principal, re-reading the user and tenant
// on every request: a removed user, a changed role, a suspended tenant or a
// changed password takes effect at once.
func (p *Portal) identify(c *gin.Context) {
	ctx := c.Request.Context()
	v, reason, err := p.resolve(ctx)
	switch {
	case errors.Is(err, errSessionEnded):
		p.d.Logger.InfoContext(ctx, "portal session ended", "reason", reason)
		p.endSession(ctx, "info|"+reason)
	case err != nil:
		p.d.Logger.ErrorContext(ctx, "resolve session", "err", err)
		p.renderError(c, http.StatusServiceUnavailable, "The portal cannot load your account",
			"Please try again in a moment.")
		c.Abort()
		return
	case v != nil:
		c.Set(viewerKey, v)
		authz.SetPrincipal(c, v.Principal)
		c.Request = c.Request.WithContext(logging.With(ctx, slog.String("user_id", v.Principal.UserID.String()),
			slog.String("tenant_id", v.Principal.TenantID.String())))
	}
	c.Next()
}

// resolve loads the session's user. It returns (nil, "", nil) when the
// session is anonymous and errSessionEnded (with a reason to show) when it
// no longer stands.
func (p *Portal) resolve(ctx context.Context) (*viewer, string, error) {
	uidS := p.sessions.GetString(ctx, keyUser)
	if uidS == "" {
		return nil, "", nil
	}
	uid, err := uuid.Parse(uidS)
	if err != nil {
		return nil, "You were signed out.", errSessionEnded
	}
	v := &viewer{}
	var tenant store.Tenant
	tidS := p.sessions.GetString(ctx, keyTenant)
	load := func(tx *store.Tx) error {
		var err error
		if v.User, err = tx.GetUser(ctx, uid); err != nil {
			return err
		}
		if v.User.TenantID != nil {
			tenant, err = tx.GetTenant(ctx, *v.User.TenantID)
		}
		return err
	}
	if tidS == "" {
		err = p.d.Store.WithPlatform(ctx, load) // platform admins belong to no tenant
	} else {
		tid, perr := uuid.Parse(tidS)
		if perr != nil {
			return nil, "You were signed out.", errSessionEnded
		}
		err = p.d.Store.WithTenant(ctx, tid, load)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, "Your account no longer exists; you were signed out.", errSessionEnded
	case err != nil:
		return nil, "", err
	}
	switch {
	case (v.User.TenantID == nil) != (tidS == ""), v.User.TenantID == nil && v.User.Role != store.RolePlatformAdmin:
		return nil, "You were signed out.", errSessionEnded
	case v.User.DisabledAt != nil:
		return nil, "Your account is disabled; you were signed out.", errSessionEnded
	case v.User.TenantID != nil && tenant.Status != store.TenantActive:
		return nil, "Your organisation is suspended, so you were signed out. Contact support to restore access.", errSessionEnded
	case p.sessions.GetString(ctx, keyPrint) != fingerprint(v.User.PasswordHash):
		return nil, "Your password was changed, so you were signed out. Sign in with the new password.", errSessionEnded
	}
	if v.User.TenantID != nil {
		v.Tenant = &tenant
	}
	v.Principal = auth.PrincipalOf(v.User)
	return v, "", nil
}

// startSession signs user in on this session, with a new session token
// (no fixation) and a new form token.
func (p *Portal) startSession(ctx context.Context, u store.User) error {
	if err := p.sessions.RenewToken(ctx); err != nil {
		return err
	}
	for _, k := range []string{keyCSRF, keyExpired} {
		p.sessions.Remove(ctx, k)
	}
	p.sessions.Put(ctx, keyUser, u.ID.String())
	tid := ""
	if u.TenantID != nil {
		tid = u.TenantID.String()
	}
	p.sessions.Put(ctx, keyTenant, tid)
	p.sessions.Put(ctx, keyPrint, fingerprint(u.PasswordHash))
	p.sessions.Put(ctx, keyAuthAt, time.Now().Unix())
	return nil
}

// endSession destroys the session (its row and token) and starts a fresh,
// anonymous one carrying only a flash message.
func (p *Portal) endSession(ctx context.Context, flash string) {
	if err := p.sessions.Destroy(ctx); err != nil {
		p.d.Logger.ErrorContext(ctx, "destroy session", "err", err)
	}
	if flash != "" {
		p.sessions.Put(ctx, keyFlash, flash)
	}
}

// setFlash shows a message on the next page.
func (p *Portal) setFlash(c *gin.Context, kind, msg string) {
	p.sessions.Put(c.Request.Context(), keyFlash, kind+"|"+msg)
}
