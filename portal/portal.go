// Package portal is Konstruct's admin portal: server-rendered HTML
// (html/template, embedded and parsed once at start-up), served by the same
// Gin engine as the REST API. Every route is registered through the authz
// registry with the permission it needs, so the portal and the API share one
// policy; pages additionally hide controls the viewer's role may not use.
//
// URL scheme: everything a tenant owns lives under /t/:tenant_id/..., for
// customers and platform admins alike (the guard reads the tenant from the
// path: a customer asking for another tenant gets a 404 that reveals
// nothing). Platform-wide pages live under /admin/.... Sign-in, sign-up,
// invitation acceptance and static files are public.
package portal

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/config"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/invitations"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/llmkeys"
	"github.com/konstruct/konstruct/internal/onboarding"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testchat"
	"github.com/konstruct/konstruct/internal/tools"
)

// Deps are the services the portal calls.
type Deps struct {
	Config      config.Config
	Logger      *slog.Logger
	Store       *store.Store
	Auth        *auth.Service
	Authz       *authz.Enforcer
	Tools       *tools.Registry
	Accounts    *accounts.Service
	Invitations *invitations.Service
	Designer    *designer.Service
	Knowledge   *knowledge.Service
	Escalations *escalation.Service // nil: one on Store (staff actions wait for the inbox's next poll)
	Billing     *billing.Service    // the Billing and Costs pages, banners; nil: billing pages say it is off
	LLMKeys     *llmkeys.Service    // the organisation's own model keys (Settings)
	TestChat    *testchat.Service   // the "try it" chat
	Onboarding  *onboarding.Service // the setup stepper
	// SessionStore overrides the Postgres session store (tests).
	SessionStore scs.Store
}

// Portal is the mounted admin UI.
type Portal struct {
	d        Deps
	sessions *scs.SessionManager
	views    *views
	static   fs.FS
	version  string // static assets' content hash, for cache busting
	csp      string // the Content-Security-Policy of every page
}

// New parses every template and prepares the session manager. A broken
// template fails here, at start-up.
func New(d Deps) (*Portal, error) {
	if d.Store == nil || d.Auth == nil || d.Authz == nil || d.Accounts == nil || d.Invitations == nil || d.Designer == nil ||
		d.Knowledge == nil || d.LLMKeys == nil || d.TestChat == nil || d.Onboarding == nil {
		return nil, errors.New("portal: missing dependencies")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Tools == nil {
		d.Tools = tools.Builtin()
	}
	if d.Escalations == nil {
		d.Escalations = &escalation.Service{Store: d.Store}
	}
	p := &Portal{d: d, csp: contentSecurityPolicy(d.Config.SlackAPIURL, d.Config.SlackClientID != "")}
	var err error
	if p.static, p.version, err = staticFiles(); err != nil {
		return nil, err
	}
	if p.views, err = parseViews(p.funcs()); err != nil {
		return nil, err
	}
	sm := scs.New()
	if d.SessionStore != nil {
		sm.Store = d.SessionStore
	} else {
		// No background goroutine: expired rows are swept at each sign-in.
		sm.Store = pgxstore.NewWithCleanupInterval(d.Store.Pool(), 0)
	}
	sm.HashTokenInStore = true
	sm.IdleTimeout = d.Config.SessionIdleTimeout
	sm.Lifetime = d.Config.SessionLifetime
	if sm.Lifetime <= 0 {
		sm.Lifetime = 7 * 24 * time.Hour
	}
	if sm.IdleTimeout <= 0 || sm.IdleTimeout > sm.Lifetime {
		sm.IdleTimeout = min(12*time.Hour, sm.Lifetime)
	}
	sm.Cookie.Name = "konstruct_session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Path = "/"
	sm.Cookie.Secure = d.Config.SecureCookies()
	if sm.Cookie.Secure {
		sm.Cookie.Name = "__Host-konstruct_session" // bound to this host, HTTPS, path /
	}
	sm.Cookie.Persist = true
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		d.Logger.ErrorContext(r.Context(), "session store failed", "err", err)
	}
	p.sessions = sm
	return p, nil
}

// Sessions exposes the session manager (tests expire sessions through it).
func (p *Portal) Sessions() *scs.SessionManager { return p.sessions }

// CookieName is the session cookie's name.
func (p *Portal) CookieName() string { return p.sessions.Cookie.Name }

// route is one portal route and what it needs.
type route struct {
	method, path string
	perm         authz.Perm
	handler      gin.HandlerFunc
}

func (p *Portal) routes() []route {
	r := func(method, path string, perm authz.Perm, h gin.HandlerFunc) route {
		return route{method, path, perm, h}
	}
	get, post := http.MethodGet, http.MethodPost
	read, write := authz.Read, authz.Write
	const (
		t  = "/t/:tenant_id"
		ad = "/admin"
	)
	return []route{
		r(get, "/", authz.Public, p.home),
		r(get, "/sign-in", authz.Public, p.signInPage),
		r(post, "/sign-in", authz.Public, p.signIn),
		r(get, "/sign-out", authz.Public, p.signOutPage),
		r(post, "/sign-out", authz.Public, p.signOut),
		r(get, "/sign-up", authz.Public, p.signUpPage),
		r(post, "/sign-up", authz.Public, p.signUp),
		r(get, invitations.AcceptPath, authz.Public, p.acceptPage),
		r(post, invitations.AcceptPath, authz.Public, p.accept),

		// "Add to Slack" (OAuth v2): start, and where Slack sends the browser back.
		r(get, "/slack/install", write(authz.ObjChannels), p.slackInstall),
		r(get, "/slack/oauth/callback", write(authz.ObjChannels), p.slackCallback),

		r(get, "/account", read(authz.ObjSelf), p.accountPage),
		r(post, "/account/profile", write(authz.ObjSelf), p.updateProfile),
		r(post, "/account/password", write(authz.ObjSelf), p.changePassword),

		r(get, ad, read(authz.ObjPlatform), p.adminOverview),
		r(get, ad+"/tenants", read(authz.ObjTenants), p.adminTenants),
		r(post, ad+"/tenants", write(authz.ObjTenants), p.adminCreateTenant),
		r(get, ad+"/tenants/:tenant_id", read(authz.ObjTenants), p.adminTenant),
		r(post, ad+"/tenants/:tenant_id/rename", write(authz.ObjTenants), p.adminRenameTenant),
		r(post, ad+"/tenants/:tenant_id/status", write(authz.ObjTenants), p.adminTenantStatus),
		r(get, ad+"/tenants/:tenant_id/delete", write(authz.ObjTenants), p.adminDeleteTenantPage),
		r(post, ad+"/tenants/:tenant_id/delete", write(authz.ObjTenants), p.adminDeleteTenant),
		r(get, ad+"/agents", read(authz.ObjPlatform), p.adminAgents),
		r(get, ad+"/users", read(authz.ObjPlatform), p.adminUsers),
		r(get, ad+"/costs", read(authz.ObjPlatform), p.adminCosts),

		r(get, t, read(authz.ObjTenant), p.dashboard),
		r(get, t+"/onboarding", write(authz.ObjAgents), p.onboarding),
		r(post, t+"/onboarding/slack", write(authz.ObjChannels), p.onboardingSlack),
		r(post, t+"/onboarding/portal", write(authz.ObjAgents), p.onboardingPortal),
		r(post, t+"/onboarding/agent", write(authz.ObjAgents), p.onboardingAgent),
		r(post, t+"/onboarding/finish", write(authz.ObjAgents), p.onboardingFinish),
		r(get, t+"/agents", read(authz.ObjAgents), p.agentList),
		r(get, t+"/agents/new", write(authz.ObjAgents), p.agentNew),
		r(post, t+"/agents", write(authz.ObjAgents), p.agentCreate),
		r(post, t+"/agents/preview", write(authz.ObjAgents), p.agentPreview),
		r(get, t+"/agents/:agent_id", read(authz.ObjAgents), p.agentShow),
		r(get, t+"/agents/:agent_id/edit", write(authz.ObjAgents), p.agentEdit),
		r(post, t+"/agents/:agent_id", write(authz.ObjAgents), p.agentUpdate),
		r(post, t+"/agents/:agent_id/status", write(authz.ObjAgents), p.agentStatus),
		r(post, t+"/agents/:agent_id/delete", write(authz.ObjAgents), p.agentDelete),
		r(get, t+"/agents/:agent_id/tools", read(authz.ObjAgents), p.agentTools),
		r(post, t+"/agents/:agent_id/tools", write(authz.ObjAgents), p.agentToolCreate),
		r(post, t+"/agents/:agent_id/tools/:tool_id/delete", write(authz.ObjAgents), p.agentToolDelete),
		r(post, t+"/agents/:agent_id/tools/:tool_id/enabled", write(authz.ObjAgents), p.agentToolEnabled),
		r(post, t+"/agents/:agent_id/chat", write(authz.ObjAgents), p.chatSend),
		r(get, t+"/agents/:agent_id/chat/events", write(authz.ObjAgents), p.chatEvents),

		r(get, t+"/conversations", read(authz.ObjConversations), p.conversationList),
		r(get, t+"/conversations/:conversation_id", read(authz.ObjConversations), p.conversationShow),
		r(get, t+"/media/:media_id", read(authz.ObjConversations), p.mediaShow),

		r(get, t+"/escalations", read(authz.ObjEscalations), p.escalationList),
		r(get, t+"/escalations/:escalation_id", read(authz.ObjEscalations), p.escalationShow),
		r(get, t+"/escalations/:escalation_id/live", read(authz.ObjEscalations), p.escalationLive),
		r(post, t+"/escalations/:escalation_id/messages", write(authz.ObjEscalations), p.escalationReply),
		r(post, t+"/escalations/:escalation_id/resolve", write(authz.ObjEscalations), p.escalationResolve),

		r(get, t+"/knowledge", read(authz.ObjKnowledge), p.knowledgeList),
		r(post, t+"/knowledge", write(authz.ObjKnowledge), p.knowledgeUpload),
		r(get, t+"/knowledge/status", read(authz.ObjKnowledge), p.knowledgeStatus),
		r(get, t+"/knowledge/search", read(authz.ObjKnowledge), p.knowledgeSearch),
		r(get, t+"/knowledge/:document_id", read(authz.ObjKnowledge), p.knowledgeShow),
		r(post, t+"/knowledge/:document_id/retry", write(authz.ObjKnowledge), p.knowledgeRetry),
		r(post, t+"/knowledge/:document_id/delete", write(authz.ObjKnowledge), p.knowledgeDelete),

		r(get, t+"/channels", read(authz.ObjChannels), p.channelList),
		r(post, t+"/channels/slack", write(authz.ObjChannels), p.channelConnectSlack),
		r(get, t+"/channels/whatsapp", write(authz.ObjChannels), p.whatsAppSetup),
		r(post, t+"/channels/whatsapp", write(authz.ObjChannels), p.channelConnectWhatsApp),
		r(get, t+"/channels/:channel_id/webhook", read(authz.ObjChannels), p.whatsAppWebhookPage),
		r(get, t+"/channels/:channel_id/webhook/status", read(authz.ObjChannels), p.whatsAppWebhookStatus),
		r(post, t+"/channels/:channel_id/webhook/check", read(authz.ObjChannels), p.whatsAppWebhookCheck),
		r(post, t+"/channels/:channel_id/template", write(authz.ObjChannels), p.channelTemplate),
		r(post, t+"/channels/:channel_id/delete", write(authz.ObjChannels), p.channelDelete),

		r(get, t+"/users", read(authz.ObjUsers), p.team),
		r(post, t+"/users/:user_id/role", write(authz.ObjUsers), p.userRole),
		r(post, t+"/users/:user_id/delete", write(authz.ObjUsers), p.userRemove),
		r(post, t+"/invitations", write(authz.ObjInvitations), p.invite),
		r(post, t+"/invitations/:invitation_id/resend", write(authz.ObjInvitations), p.inviteResend),
		r(post, t+"/invitations/:invitation_id/revoke", write(authz.ObjInvitations), p.inviteRevoke),

		r(get, t+"/usage", read(authz.ObjUsage), p.costs),
		r(get, t+"/usage.csv", read(authz.ObjUsage), p.costsCSV),
		r(get, t+"/billing", read(authz.ObjBilling), p.billingPage),
		r(post, t+"/billing/checkout", write(authz.ObjBilling), p.billingCheckout),
		r(post, t+"/billing/portal", write(authz.ObjBilling), p.billingPortal),
		r(post, t+"/billing/budget", write(authz.ObjBilling), p.billingBudget),
		r(get, t+"/settings", read(authz.ObjSettings), p.settings),
		r(post, t+"/settings", write(authz.ObjTenant), p.settingsUpdate),
		r(post, t+"/settings/support", write(authz.ObjSettings), p.supportUpdate),
		r(post, t+"/settings/llm-keys/:provider", write(authz.ObjSettings), p.llmKeyPut),
		r(post, t+"/settings/llm-keys/:provider/delete", write(authz.ObjSettings), p.llmKeyDelete),
		r(get, t+"/activity", read(authz.ObjSettings), p.activity),
	}
}

// Mount registers the portal's routes and its 404 and 405 pages on the server.
func (p *Portal) Mount(s *api.Server) {
	// Static assets need no session.
	s.Registry.Handle(s.Public, http.MethodGet, "/static/*filepath", authz.Public, p.deny, p.serveStatic)
	s.Registry.Handle(s.Public, http.MethodGet, "/favicon.ico", authz.Public, p.deny, p.favicon)

	g := s.Public.Group("", p.secureHeaders, p.loadSession, p.identify, p.checkCSRF)
	for _, rt := range p.routes() {
		s.Registry.Handle(g, rt.method, rt.path, rt.perm, p.deny, rt.handler)
	}
	s.NotFound = p.notFound
	s.NoMethod = p.methodNotAllowed
}

func (p *Portal) String() string { return fmt.Sprintf("portal(%d routes)", len(p.routes())) }
