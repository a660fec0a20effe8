package app

import (
	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/invitations"
	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/onboarding"
	"github.com/konstruct/konstruct/internal/testchat"
	"github.com/konstruct/konstruct/portal"
)

// Services are the services the REST API and the portal share, so each rule
// (validation, audit, not-found, permissions beyond the route's) lives once.
type Services struct {
	Accounts    *accounts.Service
	Invitations *invitations.Service
	Designer    *designer.Service
}

// services builds them from the App's clients and configuration.
func (a *App) services() *Services {
	sender, err := mail.New(a.Config.SMTPURL, a.Config.MailFrom, a.Logger.With("component", "mail"))
	if err != nil {
		// config.Load validates KONSTRUCT_SMTP_URL and KONSTRUCT_MAIL_FROM, so
		// this is a programming error, not a user's.
		panic("app: mail: " + err.Error())
	}
	if a.Config.SMTPURL == "" {
		a.Logger.Info("KONSTRUCT_SMTP_URL is not set: invitation emails are written to this log instead of being sent")
	}
	return &Services{
		Accounts: &accounts.Service{Store: a.Store, Logger: a.Logger},
		Invitations: &invitations.Service{Store: a.Store, Mail: sender, PublicURL: a.Config.PublicURL,
			TTL: a.Config.InvitationTTL, Logger: a.Logger},
		Designer: &designer.Service{Store: a.Store, KnownTools: a.Tools.Selectable(), Secrets: a.Secrets, Slack: a.Slack, WhatsApp: a.WhatsApp,
			Tools: a.Tools, Plans: a.Billing()},
	}
}

// portal builds the admin portal's mount. Templates are parsed here, so a
// broken one stops the server at start-up.
func (a *App) portal(svc *Services) api.Mount {
	p, err := portal.New(portal.Deps{
		Config: a.Config, Logger: a.Logger, Store: a.Store, Auth: a.Auth, Authz: a.Authz, Tools: a.Tools,
		Accounts: svc.Accounts, Invitations: svc.Invitations, Designer: svc.Designer,
		Knowledge: a.Knowledge, Escalations: a.escalationService(), Billing: a.Billing(), LLMKeys: a.LLMKeys,
		TestChat: &testchat.Service{Store: a.Store, Limiter: a.Limiter, Wake: a.Inbox().Wake, Settings: a.ConversationSettings(),
			TenantRatePerMinute: a.Config.TenantRatePerMinute},
		Onboarding: &onboarding.Service{Store: a.Store, Designer: svc.Designer},
	})
	if err != nil {
		panic("app: portal: " + err.Error())
	}
	return p
}
