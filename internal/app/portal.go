package app

import (
	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/api/middleware"
	v1 "github.com/konstruct/konstruct/api/v1"
	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/invitations"
	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/portal"
)

// PortalServices are the account services the portal and the REST API share.
type PortalServices struct {
	Accounts    *accounts.Service
	Invitations *invitations.Service
	Designer    *designer.Service
}

// portalServices builds them from the App's clients and configuration.
func (a *App) portalServices() (*PortalServices, error) {
	sender, err := mail.New(a.Config.SMTPURL, a.Config.MailFrom, a.Logger.With("component", "mail"))
	if err != nil {
		return nil, err
	}
	if a.Config.SMTPURL == "" {
		a.Logger.Info("KONSTRUCT_SMTP_URL is not set: invitation emails are written to this log instead of being sent")
	}
	return &PortalServices{
		Accounts: &accounts.Service{Store: a.Store, Logger: a.Logger},
		Invitations: &invitations.Service{Store: a.Store, Mail: sender, PublicURL: a.Config.PublicURL,
			TTL: a.Config.InvitationTTL, Logger: a.Logger},
		Designer: &designer.Service{Store: a.Store, KnownTools: a.Tools.Names()},
	}, nil
}

// portalMount mounts the admin portal and the REST endpoints for users and
// invitations, which need the same services (and the mailer) as the portal.
type portalMount struct {
	portal   *portal.Portal
	accounts *v1.Accounts
	tokens   middleware.TokenResolver
}

func (m *portalMount) Mount(s *api.Server) {
	m.accounts.Register(s.Registry, s.Engine.Group("/api/v1", middleware.Bearer(m.tokens)))
	m.portal.Mount(s)
}

// portal builds the admin portal's mount. Templates are parsed here, so a
// broken one stops the server at start-up.
func (a *App) portal() api.Mount {
	svc, err := a.portalServices()
	if err != nil {
		// config.Load validates KONSTRUCT_SMTP_URL and KONSTRUCT_MAIL_FROM, so
		// this is a programming error, not a user's.
		panic("app: portal: " + err.Error())
	}
	p, err := portal.New(portal.Deps{
		Config: a.Config, Logger: a.Logger, Store: a.Store, Auth: a.Auth, Authz: a.Authz, Tools: a.Tools,
		Accounts: svc.Accounts, Invitations: svc.Invitations, Designer: svc.Designer,
	})
	if err != nil {
		panic("app: portal: " + err.Error())
	}
	return &portalMount{portal: p, tokens: a.Auth,
		accounts: &v1.Accounts{Accounts: svc.Accounts, Invitations: svc.Invitations}}
}
