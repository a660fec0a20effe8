// Package api is Konstruct's HTTP surface: one Gin engine serving the REST
// API (/api/v1), the webhooks (/webhooks/...), health and metrics, and the
// portal, which mounts itself through the same route registry so every route
// carries a permission.
package api

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/api/middleware"
	v1 "github.com/konstruct/konstruct/api/v1"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
)

// Mount adds a group of routes (webhooks, portal) to the server.
type Mount interface {
	Mount(s *Server)
}

// Deps are what the server needs; the app package builds them.
type Deps struct {
	Logger       *slog.Logger
	Authz        *authz.Enforcer
	Health       *Health
	V1           *v1.API
	Gatherer     prometheus.Gatherer
	MaxBodyBytes int64
	// UploadRoutes ("POST /api/v1/tenants/:tenant_id/knowledge", ...) take
	// files, and bodies of up to MaxUploadBytes instead.
	UploadRoutes   []string
	MaxUploadBytes int64
}

// Server is the assembled engine and its route registry.
type Server struct {
	Engine   *gin.Engine
	Registry *authz.Registry
	// Public is the root group, with logging, recovery and body limits applied.
	Public *gin.RouterGroup
	// NotFound answers unknown routes outside /api and /webhooks; the portal
	// replaces it with its own page.
	NotFound gin.HandlerFunc
	// NoMethod answers a known path asked with a method it does not serve
	// (status 405), outside /api, /webhooks and the health and metrics
	// endpoints; the portal replaces it with its own page.
	NoMethod gin.HandlerFunc
}

// machinePath reports whether a path belongs to the API, the webhooks or
// the endpoints the server itself registers (health, metrics): their
// clients are programs, which get the JSON error envelope.
func machinePath(p string) bool {
	switch p {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/webhooks/")
}

// New assembles the server.
func New(d Deps, mounts ...Mount) *Server {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	// A trailing slash is a different (unknown) route: a JSON 404 tells an API
	// client more than an HTML redirect would.
	e.RedirectTrailingSlash = false
	e.ContextWithFallback = true // c.Done()/c.Value() follow the request context
	// Trust only a local reverse proxy for the client address (rate limits key on it).
	_ = e.SetTrustedProxies([]string{"127.0.0.1", "::1"})

	s := &Server{Engine: e, Registry: authz.NewRegistry(d.Authz)}
	uploads := make(map[string]bool, len(d.UploadRoutes))
	for _, r := range d.UploadRoutes {
		uploads[r] = true
	}
	bodyLimit := func(c *gin.Context) int64 {
		if uploads[c.Request.Method+" "+c.FullPath()] {
			return max(d.MaxUploadBytes, d.MaxBodyBytes)
		}
		return d.MaxBodyBytes
	}
	e.Use(middleware.RequestLog(d.Logger), middleware.Recover(d.Logger, apiutil.Error),
		middleware.BodyLimit(bodyLimit, apiutil.Error))
	s.Public = &e.RouterGroup

	s.Registry.Handle(s.Public, http.MethodGet, "/healthz", authz.Public, nil, d.Health.Live)
	s.Registry.Handle(s.Public, http.MethodGet, "/readyz", authz.Public, nil, d.Health.Ready)
	if d.Gatherer != nil {
		s.Registry.Handle(s.Public, http.MethodGet, "/metrics", authz.Public, nil,
			gin.WrapH(promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{})))
	}
	d.V1.Register(s.Registry, e.Group("/api/v1", middleware.Bearer(d.V1.Auth)))

	notFound := func(c *gin.Context) {
		apiutil.Error(c, apperr.NotFound("route "+c.Request.Method+" "+c.Request.URL.Path))
	}
	noMethod := func(c *gin.Context) {
		apiutil.Error(c, apperr.New(http.StatusMethodNotAllowed, "method_not_allowed",
			"method "+c.Request.Method+" is not allowed on "+c.Request.URL.Path))
	}
	s.NotFound, s.NoMethod = notFound, noMethod
	for _, m := range mounts {
		m.Mount(s)
	}
	e.NoRoute(func(c *gin.Context) {
		if machinePath(c.Request.URL.Path) {
			notFound(c)
			return
		}
		s.NotFound(c)
	})
	e.NoMethod(func(c *gin.Context) {
		if machinePath(c.Request.URL.Path) {
			noMethod(c)
			return
		}
		s.NoMethod(c)
	})
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Engine.ServeHTTP(w, r) }
