package app

import (
	"context"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/api/webhooks"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/llm"
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
		AttemptTimeout: a.Config.LLMAttemptTimeout,
		Metrics:        llm.NewMetrics(a.Metrics),
		Logger:         a.Logger.With("component", "llm"),
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
	if a.slack == nil {
		a.slack = &webhooks.Slack{
			SigningSecret:        a.Config.SlackSigningSecret,
			Routes:               webhooks.NewRoutes(a.Store, 30*time.Second),
			Redis:                a.Redis,
			Limiter:              a.Limiter,
			Sender:               workflows.Starter{Client: a.Temporal, TaskQueue: a.Config.TemporalTaskQueue},
			Settings:             a.ConversationSettings(),
			TenantRatePerMinute:  a.Config.TenantRatePerMinute,
			ChannelRatePerMinute: a.Config.ChannelRatePerMinute,
			Metrics:              webhooks.NewMetrics(a.Metrics),
			Logger:               a.Logger.With("component", "slack"),
		}
	}
	return a.slack
}

// RunSlackSocketMode receives Slack events over Socket Mode when an app token
// is configured, feeding the same path as the webhook. It returns when ctx ends.
func (a *App) RunSlackSocketMode(ctx context.Context) error {
	if a.Config.SlackAppToken == "" {
		return nil
	}
	a.Logger.InfoContext(ctx, "receiving Slack events over Socket Mode")
	return slack.NewSocketMode(a.Config.SlackAppToken, a.Config.SlackAPIURL, a.slackWebhook().SocketHandler,
		a.Logger.With("component", "slack-socket")).Run(ctx)
}

// Worker builds the Temporal worker executing conversations.
func (a *App) Worker() worker.Worker {
	acts := &activities.Conversation{
		Store: a.Store, Secrets: a.Secrets, LLM: a.newLLMPool(), Slack: a.Slack, Tools: a.Tools,
		DefaultModels: a.Config.DefaultModels, Metrics: activities.NewMetrics(a.Metrics),
		Logger: a.Logger.With("component", "activities"),
	}
	return workers.NewConversationWorker(a.Temporal, a.Config.TemporalTaskQueue, acts, workers.Options{})
}
