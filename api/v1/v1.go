// Package v1 is the REST API under /api/v1, described by api/openapi.yaml.
// JSON fields are snake_case, IDs are UUIDs, creation answers 201 with the
// object, and errors are {"error":{"code","message","field"}}.
package v1

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/invitations"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/llmkeys"
	"github.com/konstruct/konstruct/internal/store"
)

// API holds the handlers' dependencies. The changes go through the same
// services as the portal's (Accounts: tenants and members; Invitations;
// Designer: agents and channels), so each rule lives in one place; the
// handlers decode requests and shape answers.
type API struct {
	Store         *store.Store // conversations, read directly
	Auth          *auth.Service
	Accounts      *accounts.Service
	Invitations   *invitations.Service
	Designer      *designer.Service
	Knowledge     *knowledge.Service
	Escalations   *escalation.Service
	Billing       *billing.Service // plans, subscriptions, budgets and usage; nil: those routes answer 503
	LLMKeys       *llmkeys.Service
	TemporalUIURL string
	Namespace     string
	Logger        *slog.Logger
}

func deny(c *gin.Context, d authz.Decision) {
	switch d {
	case authz.Unauthenticated:
		c.Header("WWW-Authenticate", `Bearer realm="konstruct"`)
		apiutil.Error(c, apperr.Unauthorized("send a bearer token: POST /api/v1/auth/token exchanges email and password for one"))
	case authz.NotFound:
		apiutil.Error(c, apperr.NotFound("resource"))
	default:
		apiutil.Error(c, apperr.Forbidden(authz.StatusText(d)))
	}
}

// Register adds every v1 route to g, each behind its permission.
func (a *API) Register(reg *authz.Registry, g *gin.RouterGroup) {
	h := func(method, path string, perm authz.Perm, fn func(*gin.Context) error) {
		reg.Handle(g, method, path, perm, deny, apiutil.Handler(fn))
	}
	h(http.MethodPost, "/auth/token", authz.Public, a.createToken)
	h(http.MethodGet, "/me", authz.Read(authz.ObjSelf), a.me)

	h(http.MethodGet, "/tenants", authz.Read(authz.ObjTenants), a.listTenants)
	h(http.MethodPost, "/tenants", authz.Write(authz.ObjTenants), a.createTenant)
	h(http.MethodGet, "/tenants/:tenant_id", authz.Read(authz.ObjTenant), a.getTenant)
	h(http.MethodPatch, "/tenants/:tenant_id", authz.Write(authz.ObjTenant), a.updateTenant)
	h(http.MethodDelete, "/tenants/:tenant_id", authz.Write(authz.ObjTenants), a.deleteTenant)

	h(http.MethodGet, "/tenants/:tenant_id/agents", authz.Read(authz.ObjAgents), a.listAgents)
	h(http.MethodPost, "/tenants/:tenant_id/agents", authz.Write(authz.ObjAgents), a.createAgent)
	h(http.MethodGet, "/tenants/:tenant_id/agents/:agent_id", authz.Read(authz.ObjAgents), a.getAgent)
	h(http.MethodPatch, "/tenants/:tenant_id/agents/:agent_id", authz.Write(authz.ObjAgents), a.updateAgent)
	h(http.MethodDelete, "/tenants/:tenant_id/agents/:agent_id", authz.Write(authz.ObjAgents), a.deleteAgent)

	h(http.MethodGet, "/tenants/:tenant_id/agents/:agent_id/tools", authz.Read(authz.ObjAgents), a.listAgentTools)
	h(http.MethodPost, "/tenants/:tenant_id/agents/:agent_id/tools", authz.Write(authz.ObjAgents), a.createHTTPTool)
	h(http.MethodGet, "/tenants/:tenant_id/agents/:agent_id/tools/:tool_id", authz.Read(authz.ObjAgents), a.getHTTPTool)
	h(http.MethodPatch, "/tenants/:tenant_id/agents/:agent_id/tools/:tool_id", authz.Write(authz.ObjAgents), a.updateHTTPTool)
	h(http.MethodDelete, "/tenants/:tenant_id/agents/:agent_id/tools/:tool_id", authz.Write(authz.ObjAgents), a.deleteHTTPTool)

	h(http.MethodGet, "/tenants/:tenant_id/channels", authz.Read(authz.ObjChannels), a.listChannels)
	h(http.MethodPost, "/tenants/:tenant_id/channels/slack", authz.Write(authz.ObjChannels), a.connectSlack)
	h(http.MethodPost, "/tenants/:tenant_id/channels/whatsapp", authz.Write(authz.ObjChannels), a.connectWhatsApp)
	h(http.MethodPatch, "/tenants/:tenant_id/channels/:channel_id", authz.Write(authz.ObjChannels), a.updateChannel)
	h(http.MethodDelete, "/tenants/:tenant_id/channels/:channel_id", authz.Write(authz.ObjChannels), a.deleteChannel)

	h(http.MethodGet, "/tenants/:tenant_id/users", authz.Read(authz.ObjUsers), a.listUsers)
	h(http.MethodPost, "/tenants/:tenant_id/users", authz.Write(authz.ObjUsers), a.createUser)
	h(http.MethodPatch, "/tenants/:tenant_id/users/:user_id", authz.Write(authz.ObjUsers), a.updateUser)
	h(http.MethodDelete, "/tenants/:tenant_id/users/:user_id", authz.Write(authz.ObjUsers), a.deleteUser)

	h(http.MethodGet, "/tenants/:tenant_id/invitations", authz.Read(authz.ObjInvitations), a.listInvitations)
	h(http.MethodPost, "/tenants/:tenant_id/invitations", authz.Write(authz.ObjInvitations), a.createInvitation)
	h(http.MethodPost, "/tenants/:tenant_id/invitations/:invitation_id/resend", authz.Write(authz.ObjInvitations), a.resendInvitation)
	h(http.MethodDelete, "/tenants/:tenant_id/invitations/:invitation_id", authz.Write(authz.ObjInvitations), a.revokeInvitation)

	h(http.MethodGet, "/tenants/:tenant_id/conversations", authz.Read(authz.ObjConversations), a.listConversations)
	h(http.MethodGet, "/tenants/:tenant_id/conversations/:conversation_id", authz.Read(authz.ObjConversations), a.getConversation)
	h(http.MethodGet, "/tenants/:tenant_id/conversations/:conversation_id/messages", authz.Read(authz.ObjConversations), a.listMessages)

	// The audit trail is read by whoever may read the tenant's settings, as
	// on the portal's Activity page.
	h(http.MethodGet, "/tenants/:tenant_id/audit", authz.Read(authz.ObjSettings), a.listAudit)
	h(http.MethodGet, "/tenants/:tenant_id/knowledge", authz.Read(authz.ObjKnowledge), a.listDocuments)
	h(http.MethodPost, "/tenants/:tenant_id/knowledge", authz.Write(authz.ObjKnowledge), a.createDocument)
	h(http.MethodPost, "/tenants/:tenant_id/knowledge/search", authz.Read(authz.ObjKnowledge), a.searchKnowledge)
	h(http.MethodGet, "/tenants/:tenant_id/knowledge/:document_id", authz.Read(authz.ObjKnowledge), a.getDocument)
	h(http.MethodDelete, "/tenants/:tenant_id/knowledge/:document_id", authz.Write(authz.ObjKnowledge), a.deleteDocument)
	h(http.MethodPost, "/tenants/:tenant_id/knowledge/:document_id/retry", authz.Write(authz.ObjKnowledge), a.retryDocument)
	h(http.MethodDelete, "/tenants/:tenant_id/end-users/:user_ref/memory", authz.Write(authz.ObjMemory), a.forgetEndUser)

	// Escalations: operators may reply and resolve; the support settings
	// (where handoffs are posted, the SLA) are the admins'.
	h(http.MethodGet, "/tenants/:tenant_id/escalations", authz.Read(authz.ObjEscalations), a.listEscalations)
	h(http.MethodGet, "/tenants/:tenant_id/escalations/:escalation_id", authz.Read(authz.ObjEscalations), a.getEscalation)
	h(http.MethodPost, "/tenants/:tenant_id/escalations/:escalation_id/messages", authz.Write(authz.ObjEscalations), a.replyToEscalation)
	h(http.MethodPost, "/tenants/:tenant_id/escalations/:escalation_id/resolve", authz.Write(authz.ObjEscalations), a.resolveEscalation)
	h(http.MethodGet, "/tenants/:tenant_id/support-settings", authz.Read(authz.ObjSettings), a.getSupportSettings)
	h(http.MethodPut, "/tenants/:tenant_id/support-settings", authz.Write(authz.ObjSettings), a.putSupportSettings)

	// Billing: only those who may change billing (customer and platform
	// admins) see or act on it; usage is read by operators too.
	h(http.MethodGet, "/tenants/:tenant_id/billing", authz.Read(authz.ObjBilling), a.getBilling)
	h(http.MethodPost, "/tenants/:tenant_id/billing/checkout", authz.Write(authz.ObjBilling), a.createCheckout)
	h(http.MethodPost, "/tenants/:tenant_id/billing/portal", authz.Write(authz.ObjBilling), a.createPortalSession)
	h(http.MethodPut, "/tenants/:tenant_id/billing/budget", authz.Write(authz.ObjBilling), a.putBudget)
	h(http.MethodGet, "/tenants/:tenant_id/usage", authz.Read(authz.ObjUsage), a.usage)

	// Tenants' own LLM keys, with the organisation's other settings.
	h(http.MethodGet, "/tenants/:tenant_id/llm-keys", authz.Read(authz.ObjSettings), a.listLLMKeys)
	h(http.MethodPut, "/tenants/:tenant_id/llm-keys/:provider", authz.Write(authz.ObjSettings), a.putLLMKey)
	h(http.MethodDelete, "/tenants/:tenant_id/llm-keys/:provider", authz.Write(authz.ObjSettings), a.deleteLLMKey)
}

// pathID parses a UUID path parameter; a malformed one names nothing (404).
func pathID(c *gin.Context, name, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, apperr.NotFound(what)
	}
	return id, nil
}

// principal is set by the guard for every non-public route.
func principal(c *gin.Context) authz.Principal { return *authz.PrincipalFrom(c) }

// notFoundAs renames a store.ErrNotFound for the client.
func notFoundAs(err error, what string) error {
	if err != nil && apperr.From(err).Code == "not_found" {
		return apperr.NotFound(what).Wrap(err)
	}
	return err
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func tsPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := ts(*t)
	return &s
}
