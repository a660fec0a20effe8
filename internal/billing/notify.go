package billing

import (
	"context"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/store"
)

type email struct {
	subject, text, link string
}

// sendToAdmins emails every active customer admin of the tenant. A failure
// is logged: billing state is already committed and the portal shows the
// same news as a banner.
func (s *Service) sendToAdmins(ctx context.Context, tenantID uuid.UUID, m email) {
	var to []string
	var name string
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		t, err := tx.GetTenant(ctx, tenantID)
		if err != nil {
			return err
		}
		name = t.Name
		users, err := tx.ListUsers(ctx)
		for _, u := range users {
			if u.Role == store.RoleCustomerAdmin && u.DisabledAt == nil {
				to = append(to, u.Email)
			}
		}
		return err
	})
	if err != nil {
		s.logger().WarnContext(ctx, "billing: email: find the customer admins", "tenant_id", tenantID, "err", err)
		return
	}
	if len(to) == 0 {
		s.logger().InfoContext(ctx, "billing: no customer admin to email", "tenant_id", tenantID, "subject", m.subject)
		return
	}
	for _, addr := range to {
		msg := mail.Message{To: addr, Subject: m.subject + " · " + name, Text: "Hello,\n\n" + m.text + "\n— Konstruct\n", Link: m.link}
		if s.Mail == nil {
			s.logger().InfoContext(ctx, "billing: email (no mail sender)", "to", addr, "subject", msg.Subject)
			continue
		}
		if err := s.Mail.Send(ctx, msg); err != nil {
			s.logger().WarnContext(ctx, "billing: email not sent", "to", addr, "subject", msg.Subject, "err", err)
		}
	}
}
