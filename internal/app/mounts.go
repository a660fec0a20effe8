package app

import "github.com/konstruct/konstruct/api"

// mounts lists the route groups beyond the REST API: webhooks and the portal.
func (a *App) mounts() []api.Mount {
	m := []api.Mount{a.slackWebhook()}
	if p := a.portal(); p != nil {
		m = append(m, p)
	}
	return m
}
