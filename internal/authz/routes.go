package authz

import (
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"
)

const principalKey = "konstruct.principal"

// SetPrincipal records the authenticated caller on the request.
func SetPrincipal(c *gin.Context, p Principal) { c.Set(principalKey, &p) }

// PrincipalFrom returns the authenticated caller, or nil when anonymous.
func PrincipalFrom(c *gin.Context) *Principal {
	if v, ok := c.Get(principalKey); ok {
		return v.(*Principal)
	}
	return nil
}

// DenyFunc answers a refused request: JSON for the API, a page for the portal.
type DenyFunc func(c *gin.Context, d Decision)

// Registry registers routes together with the permission each needs, and
// remembers them so tests can walk every route.
type Registry struct {
	enforcer *Enforcer
	perms    map[string]Perm
}

// NewRegistry returns an empty registry checking with e.
func NewRegistry(e *Enforcer) *Registry {
	return &Registry{enforcer: e, perms: map[string]Perm{}}
}

// Enforcer returns the enforcer the registry checks with.
func (r *Registry) Enforcer() *Enforcer { return r.enforcer }

// Handle registers method+path on g behind a guard for perm. The tenant the
// request targets comes from the :tenant_id path parameter, if the route has one.
func (r *Registry) Handle(g *gin.RouterGroup, method, path string, perm Perm, deny DenyFunc, handlers ...gin.HandlerFunc) {
	full := joinPath(g.BasePath(), path)
	r.perms[method+" "+full] = perm
	guard := func(c *gin.Context) {
		d := r.enforcer.Decide(PrincipalFrom(c), c.Param("tenant_id"), perm)
		if d != Allow {
			deny(c, d)
			c.Abort()
			return
		}
		c.Next()
	}
	g.Handle(method, path, append([]gin.HandlerFunc{guard}, handlers...)...)
}

// Perm returns the permission registered for a route (method and full path
// pattern as gin reports it).
func (r *Registry) Perm(method, fullPath string) (Perm, bool) {
	p, ok := r.perms[method+" "+fullPath]
	return p, ok
}

// Routes lists registered routes as "METHOD /path", sorted.
func (r *Registry) Routes() []string {
	out := make([]string, 0, len(r.perms))
	for k := range r.perms {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func joinPath(base, rel string) string {
	if rel == "" || rel == "/" {
		if base == "" {
			return "/"
		}
		return base
	}
	if base == "/" || base == "" {
		return rel
	}
	if base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + rel
}

// StatusText is a short message for a refusal.
func StatusText(d Decision) string {
	switch d {
	case Unauthenticated:
		return "sign in first: this needs an authenticated user"
	case Forbidden:
		return "your role does not allow this"
	case NotFound:
		return "not found"
	}
	return http.StatusText(int(d))
}
