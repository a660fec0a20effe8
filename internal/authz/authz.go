// Package authz decides who may do what, for the REST API and the portal alike.
//
// The policy (policy.csv, a Casbin RBAC-with-domains model) maps a role, the
// domain of the request relative to the principal, an object and an action to
// allow. Every route is registered with the permission it needs through
// Registry, so a route without a policy entry cannot exist: Registry refuses
// it, and the route × role test walks the table.
package authz

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/google/uuid"
)

//go:embed model.conf
var modelConf string

//go:embed policy.csv
var policyCSV string

// Objects and actions the policy speaks of.
const (
	ObjPublic        = "public"        // no sign-in needed
	ObjSelf          = "self"          // the signed-in user's own profile and tokens
	ObjTenants       = "tenants"       // the platform's tenant list
	ObjTenant        = "tenant"        // one tenant's profile
	ObjAgents        = "agents"        //
	ObjUsers         = "users"         //
	ObjInvitations   = "invitations"   //
	ObjChannels      = "channels"      //
	ObjConversations = "conversations" //
	ObjUsage         = "usage"         //
	ObjBilling       = "billing"       //
	ObjSettings      = "settings"      //
	ObjKnowledge     = "knowledge"     // knowledge-base documents and search
	ObjMemory        = "memory"        // end users' long-term memory (forgetting them)
	ObjEscalations   = "escalations"   // conversations handed to people: replying, resolving
	ObjPlatform      = "platform"      // platform-wide views (all agents, all users)

	ActRead  = "read"
	ActWrite = "write"
)

// Perm is what a route needs.
type Perm struct {
	Obj string
	Act string
}

func (p Perm) String() string { return p.Obj + ":" + p.Act }

// Public marks routes anyone may call (health, webhooks, sign-in).
var Public = Perm{Obj: ObjPublic, Act: ActRead}

// Read and Write build permissions.
func Read(obj string) Perm  { return Perm{Obj: obj, Act: ActRead} }
func Write(obj string) Perm { return Perm{Obj: obj, Act: ActWrite} }

// Principal is the authenticated caller.
type Principal struct {
	UserID   uuid.UUID
	TenantID uuid.UUID // uuid.Nil for platform admins
	Role     string
	Email    string
	Name     string
}

// Decision is the outcome of a check; its value doubles as the HTTP status.
type Decision int

const (
	Allow           Decision = 200
	Unauthenticated Decision = 401
	Forbidden       Decision = 403
	// NotFound answers requests for another tenant's resources: saying
	// "forbidden" would confirm the ID exists.
	NotFound Decision = 404
)

// Domains of a request relative to the principal.
const (
	DomOwn      = "own"
	DomOther    = "other"
	DomPlatform = "platform"
)

// Enforcer evaluates the embedded policy.
type Enforcer struct {
	e *casbin.Enforcer
}

// New loads the embedded model and policy.
func New() (*Enforcer, error) {
	m, err := model.NewModelFromString(modelConf)
	if err != nil {
		return nil, fmt.Errorf("authz: model: %w", err)
	}
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("authz: enforcer: %w", err)
	}
	for i, line := range strings.Split(policyCSV, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		for j := range fields {
			fields[j] = strings.TrimSpace(fields[j])
		}
		if len(fields) != 5 || fields[0] != "p" {
			return nil, fmt.Errorf("authz: policy.csv line %d: want p, role, dom, obj, act", i+1)
		}
		if _, err := e.AddPolicy(fields[1], fields[2], fields[3], fields[4]); err != nil {
			return nil, fmt.Errorf("authz: policy.csv line %d: %w", i+1, err)
		}
	}
	return &Enforcer{e: e}, nil
}

// Domain places the requested tenant relative to the principal. pathTenant is
// the tenant named in the URL, or "" when the route names none.
func Domain(p Principal, pathTenant string) (string, bool) {
	if pathTenant == "" {
		if p.TenantID == uuid.Nil {
			return DomPlatform, true
		}
		return DomOwn, true
	}
	id, err := uuid.Parse(pathTenant)
	if err != nil {
		return "", false
	}
	if p.TenantID != uuid.Nil && id == p.TenantID {
		return DomOwn, true
	}
	return DomOther, true
}

// Decide checks whether p (nil when anonymous) may use perm on pathTenant.
func (e *Enforcer) Decide(p *Principal, pathTenant string, perm Perm) Decision {
	if perm == Public {
		return Allow
	}
	if p == nil {
		return Unauthenticated
	}
	dom, ok := Domain(*p, pathTenant)
	if !ok {
		return NotFound // a malformed tenant ID names nothing
	}
	allowed, err := e.e.Enforce(p.Role, dom, perm.Obj, perm.Act)
	if err == nil && allowed {
		return Allow
	}
	if dom == DomOther {
		return NotFound
	}
	return Forbidden
}

// Can reports whether p may use perm in its own tenant; templates use it to
// show or hide controls (the route check still guards the action).
func (e *Enforcer) Can(p Principal, perm Perm) bool {
	dom, _ := Domain(p, "")
	ok, err := e.e.Enforce(p.Role, dom, perm.Obj, perm.Act)
	return err == nil && ok
}
