package portal

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/store"
)

//go:embed templates
var templateFiles embed.FS

//go:embed static
var staticEmbed embed.FS

// Layouts a page can render in.
const (
	layoutApp  = "app"  // signed-in shell: sidebar, top bar
	layoutAuth = "auth" // sign-in, sign-up, invitation: a centred card
)

// views holds one parsed template set per page: the layouts and partials
// plus that page's "main" block.
type views struct {
	pages map[string]*template.Template
}

// parseViews parses every template once. Page names are their paths under
// templates/pages without .html, e.g. "agents/list".
func parseViews(funcs template.FuncMap) (*views, error) {
	base := template.New("").Funcs(funcs)
	var shared []string
	for _, dir := range []string{"templates/layouts", "templates/partials"} {
		entries, err := fs.ReadDir(templateFiles, dir)
		if err != nil {
			return nil, fmt.Errorf("portal: templates: %w", err)
		}
		for _, e := range entries {
			shared = append(shared, dir+"/"+e.Name())
		}
	}
	if _, err := base.ParseFS(templateFiles, shared...); err != nil {
		return nil, fmt.Errorf("portal: templates: %w", err)
	}
	v := &views{pages: map[string]*template.Template{}}
	err := fs.WalkDir(templateFiles, "templates/pages", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") {
			return err
		}
		t, err := base.Clone()
		if err != nil {
			return err
		}
		if _, err := t.ParseFS(templateFiles, p); err != nil {
			return fmt.Errorf("portal: template %s: %w", p, err)
		}
		if t.Lookup("main") == nil {
			return fmt.Errorf("portal: template %s defines no \"main\" block", p)
		}
		v.pages[strings.TrimSuffix(strings.TrimPrefix(p, "templates/pages/"), ".html")] = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Names lists the pages, for the test that renders each one.
func (v *views) Names() []string {
	out := make([]string, 0, len(v.pages))
	for k := range v.pages {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// staticFiles returns the embedded static files and a hash of their content.
func staticFiles() (fs.FS, string, error) {
	sub, err := fs.Sub(staticEmbed, "static")
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("portal: static files: %w", err)
	}
	return sub, hex.EncodeToString(h.Sum(nil))[:10], nil
}

func (p *Portal) serveStatic(c *gin.Context) {
	name := strings.TrimPrefix(path.Clean(c.Param("filepath")), "/")
	b, err := fs.ReadFile(p.static, name)
	if err != nil || name == "" || name == "." {
		c.Header("Cache-Control", "no-store")
		c.String(http.StatusNotFound, "not found")
		return
	}
	ct := "application/octet-stream"
	switch path.Ext(name) {
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	case ".png":
		ct = "image/png"
	}
	c.Header("X-Content-Type-Options", "nosniff")
	if c.Query("v") == p.version {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "public, max-age=300")
	}
	c.Data(http.StatusOK, ct, b)
}

func (p *Portal) favicon(c *gin.Context) {
	c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg")
}

// Flash is a one-time message.
type Flash struct {
	Kind    string // success | info | error
	Message string
}

// Crumb is one step of the breadcrumb.
type Crumb struct {
	Label, URL string
}

// Form carries submitted values and their errors back into a form.
type Form struct {
	Values  map[string]string
	Lists   map[string][]string
	Errors  apperr.Fields
	Message string // a problem with the form as a whole
}

// Get returns a submitted value.
func (f *Form) Get(name string) string {
	if f == nil {
		return ""
	}
	return f.Values[name]
}

// List returns a submitted list value (checkboxes, repeated inputs).
func (f *Form) List(name string) []string {
	if f == nil {
		return nil
	}
	return f.Lists[name]
}

// Err returns the error message for a field, or "".
func (f *Form) Err(name string) string {
	if f == nil {
		return ""
	}
	return f.Errors.Message(name)
}

// HasErrors reports whether anything is wrong with the form.
func (f *Form) HasErrors() bool { return f != nil && (len(f.Errors) > 0 || f.Message != "") }

// Page is what every template receives.
type Page struct {
	Title   string
	Section string // highlighted navigation entry
	Layout  string
	Viewer  *viewer
	Tenant  *store.Tenant // the tenant the page is about, if any
	CSRF    string
	Flash   *Flash
	Version string
	Crumbs  []Crumb
	Form    *Form
	Data    any
	Now     time.Time
	// Billing news for the tenant in view (a failed payment, a spent budget,
	// a used-up allowance), shown on every page, and the budget badge of the
	// Costs entry ("80%", "100%"; "" below 80%).
	Banners     []billing.Banner
	BudgetBadge string

	enforcer *authz.Enforcer
}

// SignedIn reports whether someone is signed in.
func (pg *Page) SignedIn() bool { return pg.Viewer != nil }

// IsPlatformAdmin reports whether the viewer is a platform admin.
func (pg *Page) IsPlatformAdmin() bool {
	return pg.Viewer != nil && pg.Viewer.Principal.Role == store.RolePlatformAdmin
}

// NavTenant is the tenant whose pages the navigation links to: the one in
// view, or the viewer's own.
func (pg *Page) NavTenant() *store.Tenant {
	if pg.Tenant != nil {
		return pg.Tenant
	}
	if pg.Viewer != nil {
		return pg.Viewer.Tenant
	}
	return nil
}

// Can reports whether the viewer may act on obj in the tenant in view; the
// templates show a control only when it is true (the route checks again).
func (pg *Page) Can(act, obj string) bool {
	if pg.Viewer == nil || pg.enforcer == nil {
		return false
	}
	tenant := ""
	if t := pg.NavTenant(); t != nil {
		tenant = t.ID.String()
	}
	return pg.enforcer.Decide(&pg.Viewer.Principal, tenant, authz.Perm{Obj: obj, Act: act}) == authz.Allow
}

// CanPlatform reports whether the viewer may use a platform-wide permission.
func (pg *Page) CanPlatform(act, obj string) bool {
	if pg.Viewer == nil || pg.enforcer == nil {
		return false
	}
	return pg.enforcer.Decide(&pg.Viewer.Principal, "", authz.Perm{Obj: obj, Act: act}) == authz.Allow
}

// T builds a URL inside the tenant in view: {{.T "/agents"}}.
func (pg *Page) T(suffix string) string {
	t := pg.NavTenant()
	if t == nil {
		return "/"
	}
	return "/t/" + t.ID.String() + suffix
}

// ViewingAsPlatform reports a platform admin looking at a customer's tenant.
func (pg *Page) ViewingAsPlatform() bool { return pg.IsPlatformAdmin() && pg.Tenant != nil }

// RoleLabel names the viewer's role.
func (pg *Page) RoleLabel() string {
	if pg.Viewer == nil {
		return ""
	}
	return accounts.RoleLabel(pg.Viewer.Principal.Role)
}

// DisplayName is the viewer's name, or their email.
func (pg *Page) DisplayName() string {
	if pg.Viewer == nil {
		return ""
	}
	if pg.Viewer.User.Name != "" {
		return pg.Viewer.User.Name
	}
	return pg.Viewer.User.Email
}

// render executes a page into a buffer and sends it, so a template failure
// becomes a clean error page rather than half a page.
func (p *Portal) render(c *gin.Context, status int, name string, pg *Page) {
	t, ok := p.views.pages[name]
	if !ok {
		p.d.Logger.ErrorContext(c.Request.Context(), "portal: no such template", "name", name)
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	p.fill(c, pg)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, pg.Layout, pg); err != nil {
		p.d.Logger.ErrorContext(c.Request.Context(), "portal: render", "template", name, "err", err)
		if name != "error" {
			p.renderError(c, http.StatusInternalServerError, "Something went wrong",
				"The page could not be displayed. The problem has been logged; please try again.")
			return
		}
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

func (p *Portal) fill(c *gin.Context, pg *Page) {
	pg.Viewer = viewerOf(c)
	pg.enforcer = p.d.Authz
	pg.Version = p.version
	pg.Now = time.Now()
	if pg.Form == nil {
		pg.Form = &Form{}
	}
	if pg.Layout == "" {
		pg.Layout = layoutAuth
		if pg.Viewer != nil {
			pg.Layout = layoutApp
		}
	}
	pg.CSRF = p.csrfToken(c)
	p.fillBilling(c, pg)
	if f := p.sessions.PopString(c.Request.Context(), keyFlash); f != "" {
		kind, msg, _ := strings.Cut(f, "|")
		pg.Flash = &Flash{Kind: kind, Message: msg}
	}
}

// errorPage is the data of the error template.
type errorPage struct {
	Status    int
	Heading   string
	Message   string
	RequestID string
	// An action that resolves it (a plan limit's upgrade link), when there is one.
	ActionURL, ActionLabel string
}

// fillBilling adds the tenant's billing banners and budget badge to app pages.
func (p *Portal) fillBilling(c *gin.Context, pg *Page) {
	t := pg.NavTenant()
	if p.d.Billing == nil || pg.Layout != layoutApp || t == nil {
		return
	}
	o, err := p.d.Billing.Overview(c.Request.Context(), t.ID)
	if err != nil {
		p.d.Logger.WarnContext(c.Request.Context(), "portal: billing banners", "tenant_id", t.ID, "err", err)
		return
	}
	pg.Banners = o.Banners
	for _, b := range o.Budgets {
		switch {
		case b.SpentMicroUSD >= b.LimitMicroUSD:
			pg.BudgetBadge = "100%"
		case b.SpentMicroUSD*10 >= b.LimitMicroUSD*8 && pg.BudgetBadge == "":
			pg.BudgetBadge = "80%"
		}
	}
}

// renderError shows an error page in the viewer's usual shell.
func (p *Portal) renderError(c *gin.Context, status int, heading, message string) {
	pg := &Page{Title: heading, Data: errorPage{Status: status, Heading: heading, Message: message,
		RequestID: c.Writer.Header().Get("X-Request-Id")}}
	p.render(c, status, "error", pg)
}

func (p *Portal) notFoundPage(c *gin.Context) {
	p.renderError(c, http.StatusNotFound, "Page not found",
		"There is nothing here, or it is not yours to see. Check the address, or go back to your dashboard.")
}

func (p *Portal) forbiddenPage(c *gin.Context) {
	p.renderError(c, http.StatusForbidden, "You don't have access to this",
		"Your role does not allow this action. Nothing was changed. If you need it, ask an admin of your organisation to change your role.")
}

// deny answers a request the guard refused.
func (p *Portal) deny(c *gin.Context, d authz.Decision) {
	switch d {
	case authz.Unauthenticated:
		if strings.HasPrefix(c.Request.URL.Path, "/slack/") {
			// Slack's install links are followed, not browsed to: say why
			// it stopped rather than send the person to sign in mid-install.
			p.renderError(c, http.StatusUnauthorized, "Sign in to add Slack",
				"You are not signed in (or your session ended), so Slack was not connected. Sign in, then press Add to Slack again.")
			return
		}
		if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
			c.Redirect(http.StatusSeeOther, "/sign-in?next="+url.QueryEscape(c.Request.URL.RequestURI()))
			return
		}
		p.renderError(c, http.StatusUnauthorized, "Sign in to continue",
			"You are not signed in (or your session ended), so nothing was changed. Sign in and try again.")
	case authz.Forbidden:
		p.forbiddenPage(c)
	default:
		p.notFoundPage(c)
	}
}

// notFound answers unknown paths outside /api and /webhooks.
func (p *Portal) notFound(c *gin.Context) {
	p.outsidePage(c, http.StatusNotFound, "Page not found",
		"There is nothing at this address. Check it for typos, or go back to your dashboard.")
}

// methodNotAllowed answers a portal address asked with a method it does not
// serve (a form posted to a page that only shows, say).
func (p *Portal) methodNotAllowed(c *gin.Context) {
	p.outsidePage(c, http.StatusMethodNotAllowed, "This page can't do that",
		"This address does not accept a "+c.Request.Method+" request, so nothing was changed. Go back and use the page's own links and buttons.")
}

// outsidePage shows an error page for a request no portal route took. It
// runs outside the portal's route group, so it loads the session itself to
// show the viewer's navigation.
func (p *Portal) outsidePage(c *gin.Context, status int, heading, message string) {
	ctx, err := p.sessions.Load(c.Request.Context(), sessionCookie(c, p.sessions.Cookie.Name))
	if err == nil {
		c.Request = c.Request.WithContext(ctx)
		if v, _, err := p.resolve(ctx); err == nil && v != nil {
			c.Set(viewerKey, v)
		}
	}
	p.secureHeaders(c)
	if err != nil {
		c.String(status, strings.ToLower(heading))
		return
	}
	// The session is not committed here; an error page changes nothing in
	// it. Pages still need a form token for the sign-out button, which
	// exists already for any signed-in session.
	p.renderError(c, status, heading, message)
}

func sessionCookie(c *gin.Context, name string) string {
	if ck, err := c.Request.Cookie(name); err == nil {
		return ck.Value
	}
	return ""
}

// fail answers a handler error: an error page for missing or forbidden
// things, a 500 page (details logged) for the rest.
func (p *Portal) fail(c *gin.Context, err error) {
	e := apperr.From(err)
	switch {
	case e.Status == http.StatusNotFound:
		p.notFoundPage(c)
	case e.Status == http.StatusForbidden:
		p.renderError(c, http.StatusForbidden, "You don't have access to this", e.Message)
	case e.Code == billing.ErrPlanLimitCode:
		// The message ends with the link; the page offers it as a button.
		msg, _, _ := strings.Cut(e.Message, " Upgrade the plan")
		p.render(c, e.Status, "error", &Page{Title: "Upgrade to add more", Data: errorPage{Status: e.Status,
			Heading: "Your plan is full", Message: msg + " Nothing was created.", ActionURL: e.URL, ActionLabel: "See plans and upgrade",
			RequestID: c.Writer.Header().Get("X-Request-Id")}})
	case e.Status >= 500:
		p.d.Logger.ErrorContext(c.Request.Context(), "portal handler failed", "path", c.FullPath(), "err", err)
		p.renderError(c, e.Status, "Something went wrong",
			"We could not complete this request. The problem has been logged; please try again in a moment.")
	default:
		p.renderError(c, e.Status, "That did not work", e.Message)
	}
}

// back redirects after a POST (post/redirect/get) with a flash message.
func (p *Portal) back(c *gin.Context, to, kind, msg string) {
	if msg != "" {
		p.setFlash(c, kind, msg)
	}
	c.Redirect(http.StatusSeeOther, to)
}

// pathUUID reads a UUID path parameter; a malformed one is a 404.
func pathUUID(c *gin.Context, name string) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param(name))
	return id, err == nil
}

// tenantInView loads the tenant named by :tenant_id (the guard has checked
// the viewer may see it). It renders the 404 page and returns false when the
// tenant does not exist.
func (p *Portal) tenantInView(c *gin.Context) (*store.Tenant, bool) {
	id, ok := pathUUID(c, "tenant_id")
	if !ok {
		p.notFoundPage(c)
		return nil, false
	}
	if v := viewerOf(c); v != nil && v.Tenant != nil && v.Tenant.ID == id {
		return v.Tenant, true
	}
	t, err := p.d.Accounts.GetTenant(c.Request.Context(), id)
	if err != nil {
		p.fail(c, err)
		return nil, false
	}
	return &t, true
}
