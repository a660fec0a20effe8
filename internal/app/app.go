// Package app is the composition root: it turns a Config into connected
// clients and the services built on them, once, at start-up. cmd/konstruct
// and the end-to-end tests both build the platform through it, so tests run
// the same wiring users do.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/konstruct/konstruct/api"
	v1 "github.com/konstruct/konstruct/api/v1"
	"github.com/konstruct/konstruct/api/webhooks"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/config"
	"github.com/konstruct/konstruct/internal/inbox"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/llmkeys"
	"github.com/konstruct/konstruct/internal/ratelimit"
	"github.com/konstruct/konstruct/internal/secrets"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
	"github.com/konstruct/konstruct/internal/tools/httptool"
)

// App holds the process's long-lived dependencies.
type App struct {
	Config   config.Config
	Logger   *slog.Logger
	Store    *store.Store
	Redis    *redis.Client
	Temporal client.Client
	Secrets  *secrets.Box
	Authz    *authz.Enforcer
	Limiter  *ratelimit.Limiter
	Auth     *auth.Service
	Slack    *slack.Client
	WhatsApp *whatsapp.Client // the Graph API (KONSTRUCT_WHATSAPP_API_URL, _API_VERSION)
	Metrics  *prometheus.Registry
	Tools    *tools.Registry
	HTTP     *http.Client // for outside APIs: pooled, with timeouts
	// Knowledge is the knowledge base; its kb_search is in Tools.
	Knowledge *knowledge.Service
	// LLMKeys are tenants' own LLM keys; its Plans says what each tenant's
	// plan allows (every tenant everything until billing sets it).
	LLMKeys *llmkeys.Service
	// TenantHTTP calls URLs tenants chose (their own LLM servers), refusing
	// the platform's internal addresses like HTTP tools do.
	TenantHTTP *http.Client

	pool *llm.Pool // built once: the worker's activities and the API's query embeddings share it

	slack     *webhooks.Slack // built once: Socket Mode and the webhook share it
	slackOnce sync.Once
	routes    *webhooks.Routes  // the webhooks' connection cache, shared
	webhookMx *webhooks.Metrics // registered once, shared by the webhooks
	routesMu  sync.Mutex
	inbox     *inbox.Dispatcher // built once: the HTTP server and RunInbox share it
	inboxOnce sync.Once

	slackButtons *webhooks.SlackInteractions // built with slack, under slackOnce
	billing      *billing.Service            // built once: API, portal, inbox and activities share it
	billingOnce  sync.Once
}

// New connects to Postgres and Redis (failing fast with a clear error when
// they are down) and creates a lazy Temporal client, so the API can start and
// report Temporal in /readyz while the dev server is still booting.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (*App, error) {
	a := &App{Config: cfg, Logger: logger}
	var err error
	if a.Store, err = store.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("app: postgres (KONSTRUCT_DATABASE_URL): %w", err)
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("app: KONSTRUCT_REDIS_URL: %w", err)
	}
	a.Redis = redis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.Redis.Ping(pingCtx).Err(); err != nil {
		a.Close()
		return nil, fmt.Errorf("app: redis (KONSTRUCT_REDIS_URL %s): %w", opt.Addr, err)
	}
	if a.Temporal, err = client.NewLazyClient(client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal")),
	}); err != nil {
		a.Close()
		return nil, fmt.Errorf("app: temporal client: %w", err)
	}
	if a.Secrets, err = secrets.New(cfg.EncryptionKey, cfg.OldEncryptionKeys...); err != nil {
		a.Close()
		return nil, fmt.Errorf("app: KONSTRUCT_ENCRYPTION_KEY: %w", err)
	}
	if a.Authz, err = authz.New(); err != nil {
		a.Close()
		return nil, err
	}
	a.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second, ForceAttemptHTTP2: true,
	}}
	a.Limiter = ratelimit.New(a.Redis)
	a.Auth = auth.NewService(a.Store, a.Limiter, auth.Config{LoginAttemptsPerMinute: cfg.LoginAttemptsPerMinute}, logger)
	a.Slack = slack.NewClient(cfg.SlackAPIURL, a.HTTP)
	a.WhatsApp = whatsapp.NewClient(cfg.WhatsAppAPIURL, cfg.WhatsAppAPIVersion, a.HTTP)
	a.TenantHTTP = httptool.NewGuardedHTTPClient(cfg.HTTPToolAllowCIDRs)
	a.LLMKeys = &llmkeys.Service{Store: a.Store, Secrets: a.Secrets, Plans: planKeyPolicy{a}, HTTP: a.TenantHTTP,
		DefaultBaseURLs: map[string]string{llm.ProviderOpenAI: cfg.OpenAIBaseURL, llm.ProviderAnthropic: cfg.AnthropicBaseURL},
		Logger:          logger.With("component", "llmkeys")}
	a.Tools = tools.Builtin()
	a.Metrics = prometheus.NewRegistry()
	a.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.registerKnowledge(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close releases every connection.
func (a *App) Close() {
	if a.Temporal != nil {
		a.Temporal.Close()
	}
	if a.Redis != nil {
		_ = a.Redis.Close()
	}
	if a.Store != nil {
		a.Store.Close()
	}
}

// Bootstrap creates the configured platform admin if none exists yet.
func (a *App) Bootstrap(ctx context.Context) error {
	created, err := a.Auth.Bootstrap(ctx, a.Config.BootstrapAdminEmail, a.Config.BootstrapAdminPassword)
	if err != nil {
		return err
	}
	if created {
		a.Logger.InfoContext(ctx, "created the platform admin", "email", a.Config.BootstrapAdminEmail)
	}
	return nil
}

// HTTPServer assembles the HTTP handler: API, webhooks, health, metrics,
// portal. The REST API and the portal share one set of services; the API
// registers every /api/v1 route itself, whether or not the portal is mounted.
func (a *App) HTTPServer() *api.Server {
	svc := a.services()
	health := &api.Health{Checks: []api.Check{
		{Name: "postgres", Probe: a.Store.Ping},
		{Name: "redis", Probe: func(ctx context.Context) error { return a.Redis.Ping(ctx).Err() }},
		// Webhooks are recorded in the inbox while Temporal is down: degraded, not down.
		{Name: "temporal", Degrades: true, Probe: func(ctx context.Context) error {
			_, err := a.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
		a.inboxCheck(),
	}}
	return api.New(api.Deps{
		Logger:       a.Logger,
		Authz:        a.Authz,
		Health:       health,
		Gatherer:     a.Metrics,
		MaxBodyBytes: a.Config.MaxBodyBytes,
		// The knowledge base's uploads, over REST and from the portal.
		UploadRoutes:   []string{"POST /api/v1/tenants/:tenant_id/knowledge", "POST /t/:tenant_id/knowledge"},
		MaxUploadBytes: a.Config.MaxUploadBytes,
		V1: &v1.API{
			Store: a.Store, Auth: a.Auth, Accounts: svc.Accounts, Invitations: svc.Invitations, Designer: svc.Designer,
			Knowledge: a.Knowledge, Billing: a.Billing(), LLMKeys: a.LLMKeys, TemporalUIURL: a.Config.TemporalUIURL, Namespace: a.Config.TemporalNamespace, Logger: a.Logger,
			Escalations: a.escalationService(),
		},
	}, a.mounts(svc)...)
}

// ListenAndServe serves h on addr until ctx ends, then drains in-flight
// requests for up to 10 seconds.
func (a *App) ListenAndServe(ctx context.Context, addr string, h http.Handler) error {
	srv := &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	a.Logger.InfoContext(ctx, "http server listening", "addr", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("app: http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("app: http shutdown: %w", err)
	}
	return nil
}
