package app

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"go.temporal.io/sdk/worker"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/api/webhooks"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/memory"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools/httptool"
	"github.com/konstruct/konstruct/workers"
	"github.com/konstruct/konstruct/workflows"
)

// newLLMPool builds every provider from configuration; the unconfigured ones
// stay in the pool so a chain naming them is skipped with a message saying
// which variable to set.
func (a *App) newLLMPool() *llm.Pool {
	return llm.NewPool([]llm.Provider{
		llm.NewOpenAI(llm.OpenAIConfig{APIKey: a.Config.OpenAIAPIKey, BaseURL: a.Config.OpenAIBaseURL}),
		llm.NewAnthropic(llm.AnthropicConfig{APIKey: a.Config.AnthropicAPIKey, BaseURL: a.Config.AnthropicBaseURL}),
		llm.NewOllama(llm.OllamaConfig{BaseURL: a.Config.OllamaURL}),
	}, llm.PoolConfig{
		AttemptTimeout:  a.Config.LLMAttemptTimeout,
		BreakerFailures: a.Config.LLMBreakerFailures,
		BreakerCooldown: a.Config.LLMBreakerCooldown,
		Metrics:         llm.NewMetrics(a.Metrics),
		Logger:          a.Logger.With("component", "llm"),
		// Tenants' own keys go to URLs tenants chose: guarded.
		TenantHTTPClient: a.TenantHTTP,
	})
}

// ConversationSettings are the workflow settings the webhooks start conversations with.
func (a *App) ConversationSettings() workflows.Settings {
	return workflows.Settings{
		IdleTimeout:       a.Config.ConversationIdle,
		UnavailableNotice: a.Config.LLMUnavailableNotice,
		// A call walks the chain, each model bounded by the attempt timeout.
		LLMCallTimeout: 4*a.Config.LLMAttemptTimeout + 10*time.Second,
		HistoryWindow:  workflows.DefaultSettings.HistoryWindow,
		MaxToolRounds:  workflows.DefaultSettings.MaxToolRounds,
	}
}

// slackWebhook builds the Slack Events API receiver.
func (a *App) slackWebhook() *webhooks.Slack {
	// Once: the HTTP server and Socket Mode ask for it from two goroutines.
	a.slackOnce.Do(func() {
		a.slack = &webhooks.Slack{
			SigningSecret:        a.Config.SlackSigningSecret,
			Routes:               a.webhookRoutes(),
			Store:                a.Store,
			Limiter:              a.Limiter,
			Wake:                 a.Inbox().Wake,
			Settings:             a.ConversationSettings(),
			TenantRatePerMinute:  a.Config.TenantRatePerMinute,
			ChannelRatePerMinute: a.Config.ChannelRatePerMinute,
			Metrics:              a.webhookMetrics(),
			Logger:               a.Logger.With("component", "slack"),
			Escalations:          a.escalationService(),
		}
		a.slackButtons = &webhooks.SlackInteractions{SigningSecret: a.Config.SlackSigningSecret, Routes: a.slack.Routes,
			Escalations: a.slack.Escalations, Metrics: a.slack.Metrics, Logger: a.slack.Logger}
	})
	return a.slack
}

// webhookRoutes is the connection cache the webhooks share.
func (a *App) webhookRoutes() *webhooks.Routes {
	a.routesMu.Lock()
	defer a.routesMu.Unlock()
	if a.routes == nil {
		a.routes = webhooks.NewRoutes(a.Store, 30*time.Second)
	}
	return a.routes
}

// webhookMetrics are the webhooks' series, registered once.
func (a *App) webhookMetrics() *webhooks.Metrics {
	a.routesMu.Lock()
	defer a.routesMu.Unlock()
	if a.webhookMx == nil {
		a.webhookMx = webhooks.NewMetrics(a.Metrics)
	}
	return a.webhookMx
}

// whatsAppWebhook builds the WhatsApp Cloud API webhook receiver.
func (a *App) whatsAppWebhook() *webhooks.WhatsApp {
	return &webhooks.WhatsApp{
		AppSecret:            a.Config.WhatsAppAppSecret,
		VerifyToken:          a.Config.WhatsAppVerifyToken,
		Routes:               a.webhookRoutes(),
		Store:                a.Store,
		Limiter:              a.Limiter,
		Wake:                 a.Inbox().Wake,
		Settings:             a.ConversationSettings(),
		TenantRatePerMinute:  a.Config.TenantRatePerMinute,
		ChannelRatePerMinute: a.Config.ChannelRatePerMinute,
		Metrics:              a.webhookMetrics(),
		Logger:               a.Logger.With("component", "whatsapp"),
	}
}

// slackInteractions builds the receiver of Slack's button clicks (handoff
// messages' Take it and Resolve), sharing the events webhook's routes.
func (a *App) slackInteractions() *webhooks.SlackInteractions {
	a.slackWebhook()
	return a.slackButtons
}

// escalationService records staff actions for conversation workflows
// (through the inbox) and reads escalations, for the API, the portal and
// the Slack webhooks.
func (a *App) escalationService() *escalation.Service {
	return &escalation.Service{Store: a.Store, Wake: a.Inbox().Wake}
}

// RunSlackSocketMode receives Slack events over Socket Mode when an app token
// is configured, feeding the same path as the webhook. A refused token or a
// Slack outage is logged and retried with backoff — it must not take the
// HTTP server down with it. It returns when ctx ends.
func (a *App) RunSlackSocketMode(ctx context.Context) error {
	if a.Config.SlackAppToken == "" {
		return nil
	}
	log := a.Logger.With("component", "slack-socket")
	sm := slack.NewSocketMode(a.Config.SlackAppToken, a.Config.SlackAPIURL, a.slackWebhook().SocketHandler, log)
	sm.OnInteraction(a.slackInteractions().SocketHandler) // handoff buttons
	backoff := time.Second
	for {
		log.InfoContext(ctx, "receiving Slack events over Socket Mode")
		err := sm.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.ErrorContext(ctx, "Socket Mode stopped; reconnecting", "err", err, "in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// WorkerEndpoints is the worker process's own small HTTP surface: /metrics
// (model calls, fallbacks, circuits, turn latency are counted in the worker),
// /healthz, and Go's profiler under /debug/pprof/ — KONSTRUCT_WORKER_ADDR is
// an operator's address (loopback by default), never a public one.
func (a *App) WorkerEndpoints() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Worker builds the Temporal worker executing conversations.
func (a *App) Worker() worker.Worker {
	pool := a.llmPool()
	sender, err := mail.New(a.Config.SMTPURL, a.Config.MailFrom, a.Logger.With("component", "mail"))
	if err != nil {
		panic("app: mail: " + err.Error()) // config.Load validated both settings
	}
	acts := &activities.Conversation{
		Store: a.Store, Secrets: a.Secrets, LLM: pool, LLMKeys: a.LLMKeys, Slack: a.Slack, Tools: a.Tools,
		Outlets: map[string]activities.Outlet{
			store.ChannelWhatsApp: &activities.WhatsAppOutlet{Client: a.WhatsApp, Store: a.Store, Mail: sender,
				PublicURL: a.Config.PublicURL, Logger: a.Logger.With("component", "whatsapp")},
			store.ChannelPortal: activities.PortalOutlet{},
		},
		HTTPTools: httptool.NewClient(httptool.Options{Allow: a.Config.HTTPToolAllowCIDRs,
			MaxResponseBytes: a.Config.HTTPToolMaxResponseBytes}),
		Memory:        memory.New(a.Store, pool, memory.Config{Models: a.Config.EmbeddingModels}, a.Logger.With("component", "memory")),
		Billing:       a.Billing(),
		DefaultModels: a.Config.DefaultModels, Metrics: activities.NewMetrics(a.Metrics),
		Logger:        a.Logger.With("component", "activities"),
		MediaMaxBytes: a.Config.MediaMaxBytes,
		Links: activities.Links{PublicURL: a.Config.PublicURL, TemporalUIURL: a.Config.TemporalUIURL,
			Namespace: a.Config.TemporalNamespace},
	}
	// Files are downloaded with the pooled client (30 s a request: 5 MB
	// from Slack or Meta takes a fraction of that).
	if wa, err := whatsapp.NewMediaClient(whatsapp.MediaConfig{BaseURL: a.Config.WhatsAppAPIURL, Version: a.Config.WhatsAppAPIVersion, HTTPClient: a.HTTP}); err == nil {
		acts.WhatsAppMedia = wa
	} else {
		a.Logger.Warn("WhatsApp media cannot be downloaded", "error", err)
	}
	w := workers.NewConversationWorker(a.Temporal, a.Config.TemporalTaskQueue, acts, workers.Options{})
	workers.RegisterKnowledge(w, a.knowledgeActivities(pool))
	return w
}

// knowledgeActivities are the ingestion workflow's activities, embedding with
// the worker's LLM pool along KONSTRUCT_EMBEDDING_MODEL.
func (a *App) knowledgeActivities(pool *llm.Pool) *activities.Knowledge {
	return &activities.Knowledge{Store: a.Store, Embedder: knowledge.PoolEmbedder{Pool: pool, Chain: a.Config.EmbeddingModels},
		Logger: a.Logger.With("component", "knowledge")}
}
