package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/invitations"
	"github.com/konstruct/konstruct/internal/store"
)

// home sends each viewer to their start page.
func (p *Portal) home(c *gin.Context) {
	v := viewerOf(c)
	switch {
	case v == nil:
		c.Redirect(http.StatusSeeOther, "/sign-in")
	case v.Tenant == nil:
		c.Redirect(http.StatusSeeOther, "/admin")
	default:
		c.Redirect(http.StatusSeeOther, "/t/"+v.Tenant.ID.String())
	}
}

// homeOf is where a user lands after signing in.
func homeOf(u store.User) string {
	if u.TenantID == nil {
		return "/admin"
	}
	return "/t/" + u.TenantID.String()
}

// localNext accepts only a path on this site as a place to return to.
func localNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") || len(next) > 500 {
		return ""
	}
	return next
}

type signInData struct {
	Next    string
	Expired bool
}

func (p *Portal) signInPage(c *gin.Context) {
	if v := viewerOf(c); v != nil {
		target := localNext(c.Query("next"))
		if target == "" {
			target = homeOf(v.User)
		}
		c.Redirect(http.StatusSeeOther, target)
		return
	}
	expired := p.sessions.PopBool(c.Request.Context(), keyExpired)
	p.render(c, http.StatusOK, "sign_in", &Page{Title: "Sign in", Data: signInData{Next: localNext(c.Query("next")), Expired: expired}})
}

func (p *Portal) signIn(c *gin.Context) {
	ctx := c.Request.Context()
	email, password := strings.TrimSpace(c.PostForm("email")), c.PostForm("password")
	next := localNext(c.PostForm("next"))
	form := &Form{Values: map[string]string{"email": email}}
	page := &Page{Title: "Sign in", Form: form, Data: signInData{Next: next}}
	if email == "" || password == "" {
		if email == "" {
			form.Errors.Add("email", "enter your email address")
		}
		if password == "" {
			form.Errors.Add("password", "enter your password")
		}
		p.render(c, http.StatusUnprocessableEntity, "sign_in", page)
		return
	}
	user, err := p.d.Auth.Authenticate(ctx, email, password, c.ClientIP())
	var limited *auth.RateLimitedError
	switch {
	case errors.As(err, &limited):
		c.Header("Retry-After", itoa(int(limited.RetryAfter.Seconds())+1))
		form.Message = "Too many sign-in attempts. For your security, try again in " +
			plural(int(limited.RetryAfter.Seconds())+1, "second", "seconds") + "."
		p.render(c, http.StatusTooManyRequests, "sign_in", page)
		return
	case errors.Is(err, auth.ErrInvalidCredentials):
		form.Message = "That email and password do not match an account. Check them and try again."
		p.render(c, http.StatusUnprocessableEntity, "sign_in", page)
		return
	case errors.Is(err, auth.ErrSuspended):
		form.Message = "Your organisation is suspended, so you cannot sign in right now. Contact support to restore access."
		p.render(c, http.StatusForbidden, "sign_in", page)
		return
	case err != nil:
		p.fail(c, err)
		return
	}
	if err := p.startSession(ctx, user); err != nil {
		p.fail(c, err)
		return
	}
	p.afterSignIn(c, user, "auth.sign_in")
	if next == "" {
		next = homeOf(user)
	}
	c.Redirect(http.StatusSeeOther, next)
}

// afterSignIn records the sign-in and sweeps expired sessions (there is no
// background sweeper).
func (p *Portal) afterSignIn(c *gin.Context, u store.User, action string) {
	ctx := c.Request.Context()
	event := store.AuditEvent{TenantID: u.TenantID, Actor: "user:" + u.ID.String(), Action: action,
		TargetType: "user", TargetID: u.ID.String(), Data: map[string]any{"ip": c.ClientIP()}}
	err := p.d.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expiry < now()`); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, event)
	})
	if err != nil {
		p.d.Logger.WarnContext(ctx, "after sign-in bookkeeping failed", "err", err)
	}
}

// signOutPage answers a typed /sign-out address: signing out changes state,
// so it asks for a click (a form with the CSRF token) rather than doing it on GET.
func (p *Portal) signOutPage(c *gin.Context) {
	if viewerOf(c) == nil {
		c.Redirect(http.StatusSeeOther, "/sign-in")
		return
	}
	p.render(c, http.StatusOK, "sign_out", &Page{Title: "Sign out"})
}

func (p *Portal) signOut(c *gin.Context) {
	ctx := c.Request.Context()
	if v := viewerOf(c); v != nil {
		_ = p.d.Store.WithPlatform(ctx, func(tx *store.Tx) error {
			return tx.AppendAudit(ctx, store.AuditEvent{TenantID: v.User.TenantID, Actor: "user:" + v.User.ID.String(),
				Action: "auth.sign_out", TargetType: "user", TargetID: v.User.ID.String()})
		})
	}
	p.endSession(ctx, "success|You have signed out.")
	c.Redirect(http.StatusSeeOther, "/sign-in")
}

func (p *Portal) signUpPage(c *gin.Context) {
	if v := viewerOf(c); v != nil {
		c.Redirect(http.StatusSeeOther, homeOf(v.User))
		return
	}
	p.render(c, http.StatusOK, "sign_up", &Page{Title: "Create your account"})
}

func (p *Portal) signUp(c *gin.Context) {
	ctx := c.Request.Context()
	in := accounts.SignUpInput{Email: c.PostForm("email"), Name: c.PostForm("name"), Password: c.PostForm("password"),
		Organisation: c.PostForm("organisation")}
	user, tenant, err := p.d.Accounts.SignUp(ctx, in)
	var fields apperr.Fields
	if errors.As(err, &fields) {
		form := &Form{Values: map[string]string{"email": in.Email, "name": in.Name, "organisation": in.Organisation}, Errors: fields}
		p.render(c, http.StatusUnprocessableEntity, "sign_up", &Page{Title: "Create your account", Form: form})
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	if err := p.startSession(ctx, user); err != nil {
		p.fail(c, err)
		return
	}
	p.afterSignIn(c, user, "auth.sign_in")
	// A new organisation starts in the setup stepper: a channel, its agent,
	// a first answer.
	p.back(c, "/t/"+tenant.ID.String()+"/onboarding", "success",
		"Welcome to Konstruct! Three short steps and your first AI employee is answering.")
}

type acceptData struct {
	Token      string
	Pending    invitations.Pending
	Problem    string // why the link cannot be used
	ProblemKey string // invalid | expired | used | revoked | suspended
}

func problemKey(err error) string {
	switch {
	case errors.Is(err, invitations.ErrExpired):
		return "expired"
	case errors.Is(err, invitations.ErrUsed):
		return "used"
	case errors.Is(err, invitations.ErrRevoked):
		return "revoked"
	case errors.Is(err, invitations.ErrSuspended):
		return "suspended"
	}
	return "invalid"
}

// acceptPage shows the invitation a link names, or why it cannot be used.
func (p *Portal) acceptPage(c *gin.Context) {
	c.Header("Referrer-Policy", "no-referrer") // the URL carries the token
	token := c.Query("token")
	pending, err := p.d.Invitations.Lookup(c.Request.Context(), token)
	data := acceptData{Token: token, Pending: pending}
	page := &Page{Title: "Join your team", Layout: layoutAuth, Data: &data}
	if err != nil {
		if !isLinkProblem(err) {
			p.fail(c, err)
			return
		}
		data.Problem, data.ProblemKey, data.Token = err.Error(), problemKey(err), ""
		page.Title = "Invitation unavailable"
		p.render(c, linkStatus(err), "accept", page)
		return
	}
	p.render(c, http.StatusOK, "accept", page)
}

func isLinkProblem(err error) bool {
	for _, e := range []error{invitations.ErrInvalidLink, invitations.ErrExpired, invitations.ErrUsed, invitations.ErrRevoked, invitations.ErrSuspended} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func linkStatus(err error) int {
	switch {
	case errors.Is(err, invitations.ErrInvalidLink):
		return http.StatusNotFound
	case errors.Is(err, invitations.ErrSuspended):
		return http.StatusForbidden
	}
	return http.StatusGone
}

// accept creates the invitee's account and signs them in.
func (p *Portal) accept(c *gin.Context) {
	c.Header("Referrer-Policy", "no-referrer")
	ctx := c.Request.Context()
	token := c.PostForm("token")
	user, err := p.d.Invitations.Accept(ctx, token, c.PostForm("name"), c.PostForm("password"), c.PostForm("confirm_password"))
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		pending, lerr := p.d.Invitations.Lookup(ctx, token)
		if lerr != nil && !isLinkProblem(lerr) {
			p.fail(c, lerr)
			return
		}
		if lerr != nil {
			p.render(c, linkStatus(lerr), "accept", &Page{Title: "Invitation unavailable", Layout: layoutAuth,
				Data: &acceptData{Problem: lerr.Error(), ProblemKey: problemKey(lerr)}})
			return
		}
		form := &Form{Values: map[string]string{"name": c.PostForm("name")}, Errors: fields}
		p.render(c, http.StatusUnprocessableEntity, "accept", &Page{Title: "Join your team", Layout: layoutAuth, Form: form,
			Data: &acceptData{Token: token, Pending: pending}})
		return
	case isLinkProblem(err):
		p.render(c, linkStatus(err), "accept", &Page{Title: "Invitation unavailable", Layout: layoutAuth,
			Data: &acceptData{Problem: err.Error(), ProblemKey: problemKey(err)}})
		return
	case err != nil:
		if e := apperr.From(err); e.Status == http.StatusConflict {
			p.render(c, http.StatusConflict, "accept", &Page{Title: "Invitation unavailable", Layout: layoutAuth,
				Data: &acceptData{Problem: e.Message, ProblemKey: "exists"}})
			return
		}
		p.fail(c, err)
		return
	}
	if v := viewerOf(c); v != nil {
		p.endSession(ctx, "") // someone else was signed in on this browser
	}
	if err := p.startSession(ctx, user); err != nil {
		p.fail(c, err)
		return
	}
	p.afterSignIn(c, user, "auth.sign_in")
	p.back(c, homeOf(user), "success", "Welcome aboard! You joined as "+accounts.RoleLabel(user.Role)+".")
}
