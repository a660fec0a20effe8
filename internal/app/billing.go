package app

import (
	"context"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api/webhooks"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/config"
	"github.com/konstruct/konstruct/internal/llmkeys"
	"github.com/konstruct/konstruct/internal/mail"
)

// Billing is the billing service (plans, Stripe, budgets), built once: the
// API, the portal, the inbox dispatcher and the worker's activities share it.
// Without KONSTRUCT_STRIPE_SECRET_KEY it has no Stripe client, and plan
// limits are not enforced; budgets always are.
func (a *App) Billing() *billing.Service {
	a.billingOnce.Do(func() {
		sender, err := mail.New(a.Config.SMTPURL, a.Config.MailFrom, a.Logger.With("component", "mail"))
		if err != nil {
			panic("app: mail: " + err.Error()) // config.Load validated both settings
		}
		log := a.Logger.With("component", "billing")
		a.billing = &billing.Service{Store: a.Store, Prices: a.Config.StripePrices, PublicURL: a.Config.PublicURL,
			Grace: a.Config.BillingGrace, Mail: sender, Logger: log}
		if a.Config.StripeSecretKey != "" {
			a.billing.Stripe = billing.NewStripe(a.Config.StripeSecretKey, a.Config.StripeAPIURL, a.HTTP, log)
			for _, plan := range config.PaidPlans {
				if a.Config.StripePrices[plan] == "" {
					log.Warn("a paid plan has no Stripe price: its checkout answers 503 until KONSTRUCT_STRIPE_PRICE_<PLAN> is set", "plan", plan)
				}
			}
		}
	})
	return a.billing
}

// stripeWebhook builds the Stripe webhook receiver.
func (a *App) stripeWebhook() *webhooks.Stripe {
	return &webhooks.Stripe{Secret: a.Config.StripeWebhookSecret, Billing: a.Billing(), Store: a.Store, Wake: a.Inbox().Wake,
		Metrics: a.slackWebhook().Metrics, Logger: a.Logger.With("component", "webhook", "source", "stripe")}
}

// planKeyPolicy lets the tenant's plan decide whose LLM keys its model calls
// may use (llmkeys.Plans): its own where the plan allows bringing them, the
// platform's while the plan pays for tokens and this month's are not used up.
type planKeyPolicy struct{ app *App }

func (p planKeyPolicy) LLMKeyPolicy(ctx context.Context, tenantID uuid.UUID) (llmkeys.Policy, error) {
	own, platform, err := p.app.Billing().KeyPolicy(ctx, tenantID)
	return llmkeys.Policy{OwnKeys: own, PlatformKeys: platform}, err
}
