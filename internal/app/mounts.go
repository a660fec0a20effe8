package app

import "github.com/konstruct/konstruct/api"

// mounts lists the route groups beyond the REST API: webhooks and the portal.
func (a *App) mounts(svc *Services) []api.Mount {
	return []api.Mount{a.slackWebhook(), a.slackInteractions(), a.whatsAppWebhook(), a.stripeWebhook(), a.portal(svc)}
}
