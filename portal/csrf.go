package portal

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"
)

// CSRF protection: a random token bound to the session is put in every form
// (a hidden csrf_token field) and sent by scripts in the X-CSRF-Token header.
// Every request with an unsafe method must carry it, and, when the browser
// says where the request comes from (Origin), come from this site. A request
// that fails gets a 403 page and changes nothing.

const (
	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
)

// csrfToken returns the session's form token, creating it on first use.
func (p *Portal) csrfToken(c *gin.Context) string {
	ctx := c.Request.Context()
	if t := p.sessions.GetString(ctx, keyCSRF); t != "" {
		return t
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	t := base64.RawURLEncoding.EncodeToString(b)
	p.sessions.Put(ctx, keyCSRF, t)
	return t
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

var errCrossOrigin = errors.New("cross-origin request")

func (p *Portal) checkCSRF(c *gin.Context) {
	if safeMethod(c.Request.Method) {
		c.Next()
		return
	}
	if err := p.verifyCSRF(c); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p.renderError(c, http.StatusRequestEntityTooLarge, "That was too much to send",
				"The form was larger than the server accepts, so nothing was saved. Shorten the longest fields and try again.")
			c.Abort()
			return
		}
		p.d.Logger.InfoContext(c.Request.Context(), "portal request refused: CSRF check failed", "path", c.Request.URL.Path, "err", err)
		p.renderError(c, http.StatusForbidden, "This form has expired",
			"For your security, the form you sent could not be verified: it was open too long, your session ended, or it did not come from this site. Nothing was changed. Go back, reload the page and try again.")
		c.Abort()
		return
	}
	c.Next()
}

func (p *Portal) verifyCSRF(c *gin.Context) error {
	if origin := c.GetHeader("Origin"); origin != "" && origin != "null" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != c.Request.Host {
			return errCrossOrigin
		}
	}
	want := p.sessions.GetString(c.Request.Context(), keyCSRF)
	if want == "" {
		return errors.New("the session has no form token (expired or new session)")
	}
	got := c.GetHeader(csrfHeader)
	if got == "" {
		var err error
		if got, err = formValue(c, csrfField); err != nil {
			return err
		}
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errors.New("wrong or missing form token")
	}
	return nil
}

// formValue reads one field of a urlencoded or multipart form.
func formValue(c *gin.Context, name string) (string, error) {
	if err := c.Request.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return "", err
	}
	return c.Request.PostFormValue(name), nil
}

// contentSecurityPolicy allows only this site's own scripts and styles (no
// inline script). Forms post to this site only — and, when "Add to Slack" is
// set up, may end at Slack's consent page: browsers hold a form's redirects
// to form-action too.
func contentSecurityPolicy(slackAPIURL string, slackOAuth bool) string {
	formAction := "'self'"
	if u, err := url.Parse(slackAPIURL); slackOAuth && err == nil && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action " + formAction + "; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
}

// secureHeaders sets the portal's security headers.
func (p *Portal) secureHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if p.d.Config.SecureCookies() {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.Next()
}
