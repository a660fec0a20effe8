// Package invitations lets a tenant's admin invite people by email. The email
// carries a single-use link with a random token; only the token's SHA-256 is
// stored. The link expires (72 hours by default); resending issues a new
// token and kills the old one; revoking kills it for good. The invitee opens
// the link, sets a password and is signed in with the invited role. The
// portal and the REST API both go through this service.
package invitations

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/store"
)

// DefaultTTL is how long a link works unless configured otherwise.
const DefaultTTL = 72 * time.Hour

// AcceptPath is the portal page an invitation link opens.
const AcceptPath = "/invitations/accept"

// Service issues, sends, lists, resends, revokes and accepts invitations.
type Service struct {
	Store     *store.Store
	Mail      mail.Sender
	PublicURL string // e.g. https://konstruct.example.com
	TTL       time.Duration
	Logger    *slog.Logger
	Now       func() time.Time // for tests; time.Now when nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultTTL
}

// Link problems, each with a message the accept page shows as is.
var (
	ErrInvalidLink = errors.New("this invitation link is not valid: it may have been copied incompletely, or replaced by a newer invitation")
	ErrExpired     = errors.New("this invitation has expired")
	ErrUsed        = errors.New("this invitation has already been used")
	ErrRevoked     = errors.New("this invitation was withdrawn")
	ErrSuspended   = errors.New("this organisation is suspended, so it cannot take new members right now")
)

// Outcome is an issued invitation and whether its email went out. A failed
// send keeps the invitation; Resend tries again.
type Outcome struct {
	Invitation store.Invitation
	Delivered  bool
}

// newToken returns a random link token and its hash.
func newToken() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	raw := base64.RawURLEncoding.EncodeToString(b)
	return raw, hashToken(raw)
}

func hashToken(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

// Link is the URL an invitee opens.
func (s *Service) Link(token string) string {
	return strings.TrimRight(s.PublicURL, "/") + AcceptPath + "?token=" + url.QueryEscape(token)
}

// Invite invites email to tenantID as role (customer_admin or
// customer_operator) and emails the link. An address with an account, or with
// an open invitation to this tenant, is refused with a clear message; an
// expired one is replaced.
func (s *Service) Invite(ctx context.Context, actor authz.Principal, tenantID uuid.UUID, email, role string) (Outcome, error) {
	var errs apperr.Fields
	email, msg := accounts.NormaliseEmail(email)
	if msg != "" {
		errs.Add("email", msg)
	}
	if !accounts.ValidTenantRole(role) {
		errs.Add("role", "must be customer_admin (Admin) or customer_operator (Operator)")
	}
	if err := errs.Err(); err != nil {
		return Outcome{}, err
	}
	// Addresses are unique across the platform, so the check looks at every
	// tenant; it answers only whether the address is taken.
	var taken bool
	if err := s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		taken, err = tx.EmailRegistered(ctx, email)
		return err
	}); err != nil {
		return Outcome{}, fmt.Errorf("invitations: invite: %w", err)
	}
	if taken {
		return Outcome{}, apperr.Fields{apperr.Invalid("email", "this email address already has a Konstruct account, so it cannot be invited")}
	}
	raw, hash := newToken()
	var inv store.Invitation
	var tenant store.Tenant
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if tenant, err = tx.GetTenant(ctx, tenantID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return apperr.NotFound("organisation").Wrap(err)
			}
			return err
		}
		if open, err := tx.OpenInvitationFor(ctx, email); err == nil {
			if open.State(s.now()) == store.InvitationPending {
				return apperr.Fields{apperr.Invalid("email", "an invitation to this address is already pending; resend or revoke it instead")}
			}
			if _, err := tx.RevokeInvitation(ctx, open.ID); err != nil {
				return err
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		by := actor.UserID
		if inv, err = tx.CreateInvitation(ctx, store.Invitation{Email: email, Role: role, InvitedBy: &by,
			InviterName: inviterName(actor), ExpiresAt: s.now().Add(s.ttl())}, hash); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: accounts.Actor(actor), Action: "invitation.create",
			TargetType: "invitation", TargetID: inv.ID.String(), Data: map[string]any{"email": email, "role": role}})
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) { // a concurrent invite of the same address
			return Outcome{}, apperr.Fields{apperr.Invalid("email", "an invitation to this address is already pending; resend or revoke it instead")}
		}
		return Outcome{}, err
	}
	return s.deliver(ctx, inv, tenant, raw), nil
}

func inviterName(p authz.Principal) string {
	if p.Name != "" {
		return p.Name
	}
	return p.Email
}

// deliver emails the link and records the send. A failure is logged and
// reported in the outcome, not as an error: the invitation exists either way.
func (s *Service) deliver(ctx context.Context, inv store.Invitation, tenant store.Tenant, raw string) Outcome {
	link := s.Link(raw)
	msg, err := render(emailData{Tenant: tenant.Name, Inviter: inv.InviterName, Role: accounts.RoleLabel(inv.Role),
		RoleHelp: roleHelp(inv.Role), Link: link, Expires: inv.ExpiresAt.UTC().Format("Monday 2 January 2006, 15:04 MST"),
		Hours: int(s.ttl().Hours())})
	if err == nil {
		msg.To = inv.Email
		msg.Link = link
		sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		err = s.Mail.Send(sendCtx, msg)
		cancel()
	}
	if err != nil {
		s.Logger.ErrorContext(ctx, "invitation email not sent; the admin can resend it", "invitation_id", inv.ID,
			"tenant_id", inv.TenantID, "err", err)
		return Outcome{Invitation: inv}
	}
	if err := s.Store.WithTenant(ctx, inv.TenantID, func(tx *store.Tx) error { return tx.MarkInvitationSent(ctx, inv.ID) }); err != nil {
		s.Logger.WarnContext(ctx, "invitation sent but not marked", "invitation_id", inv.ID, "err", err)
	}
	now := s.now()
	inv.SentAt = &now
	inv.SendCount++
	return Outcome{Invitation: inv, Delivered: true}
}

func roleHelp(role string) string {
	if role == store.RoleCustomerAdmin {
		return "Admins design agents, connect channels, manage the team and see everything."
	}
	return "Operators watch agents, conversations and usage; they cannot change settings."
}

// List returns a tenant's open invitations (pending and expired), newest first.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID) ([]store.Invitation, error) {
	var out []store.Invitation
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListOpenInvitations(ctx)
		return err
	})
	return out, err
}

// Get returns one invitation of a tenant.
func (s *Service) Get(ctx context.Context, tenantID, id uuid.UUID) (store.Invitation, error) {
	var inv store.Invitation
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		inv, err = tx.GetInvitation(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Invitation{}, apperr.NotFound("invitation").Wrap(err)
	}
	return inv, err
}

// Resend issues a new token and expiry for an open invitation and emails it;
// the previous link stops working at once.
func (s *Service) Resend(ctx context.Context, actor authz.Principal, tenantID, id uuid.UUID) (Outcome, error) {
	raw, hash := newToken()
	var inv store.Invitation
	var tenant store.Tenant
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if tenant, err = tx.GetTenant(ctx, tenantID); err != nil {
			return err
		}
		if inv, err = tx.ReissueInvitation(ctx, id, hash, s.now().Add(s.ttl())); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: accounts.Actor(actor), Action: "invitation.resend",
			TargetType: "invitation", TargetID: id.String(), Data: map[string]any{"email": inv.Email}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return Outcome{}, apperr.NotFound("pending invitation").Wrap(err)
	}
	if err != nil {
		return Outcome{}, err
	}
	return s.deliver(ctx, inv, tenant, raw), nil
}

// Revoke withdraws an open invitation; its link stops working.
func (s *Service) Revoke(ctx context.Context, actor authz.Principal, tenantID, id uuid.UUID) (store.Invitation, error) {
	var inv store.Invitation
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if inv, err = tx.RevokeInvitation(ctx, id); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: accounts.Actor(actor), Action: "invitation.revoke",
			TargetType: "invitation", TargetID: id.String(), Data: map[string]any{"email": inv.Email}})
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Invitation{}, apperr.NotFound("pending invitation").Wrap(err)
	}
	return inv, err
}

// Pending is a usable invitation as its link shows it.
type Pending struct {
	Invitation store.Invitation
	TenantName string
}

// Lookup finds the invitation a link's token names and checks it is usable.
// The errors are ErrInvalidLink, ErrExpired, ErrUsed, ErrRevoked and
// ErrSuspended; their messages are safe to show.
func (s *Service) Lookup(ctx context.Context, token string) (Pending, error) {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 100 {
		return Pending{}, ErrInvalidLink
	}
	var p Pending
	var tenant store.Tenant
	// The invitee is anonymous: only the token says which tenant this is.
	err := s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		if p.Invitation, err = tx.GetInvitationByTokenHash(ctx, hashToken(token)); err != nil {
			return err
		}
		tenant, err = tx.GetTenant(ctx, p.Invitation.TenantID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Pending{}, ErrInvalidLink
	}
	if err != nil {
		return Pending{}, fmt.Errorf("invitations: lookup: %w", err)
	}
	p.TenantName = tenant.Name
	switch p.Invitation.State(s.now()) {
	case store.InvitationAccepted:
		return p, ErrUsed
	case store.InvitationRevoked:
		return p, ErrRevoked
	case store.InvitationExpired:
		return p, ErrExpired
	}
	if tenant.Status != store.TenantActive {
		return p, ErrSuspended
	}
	return p, nil
}

// Accept turns a usable invitation into an account: it checks the name and
// the password's strength, claims the invitation (once: a second use of the
// link fails) and creates the user with the invited role, in one transaction.
func (s *Service) Accept(ctx context.Context, token, name, password, confirm string) (store.User, error) {
	p, err := s.Lookup(ctx, token)
	if err != nil {
		return store.User{}, err
	}
	inv := p.Invitation
	var errs apperr.Fields
	name, msg := accounts.NormaliseText(name, accounts.MaxName, true)
	if msg != "" {
		errs.Add("name", msg)
	}
	if err := auth.ValidatePassword(password, inv.Email); err != nil {
		errs.Add("password", strings.TrimPrefix(err.Error(), auth.ErrWeakPassword.Error()+": "))
	} else if confirm != password {
		errs.Add("confirm_password", "does not match the password")
	}
	if err := errs.Err(); err != nil {
		return store.User{}, err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	var user store.User
	userID := uuid.New()
	err = s.Store.WithTenant(ctx, inv.TenantID, func(tx *store.Tx) error {
		if _, err := tx.ClaimInvitation(ctx, inv.ID, hashToken(strings.TrimSpace(token)), userID); err != nil {
			return err
		}
		var err error
		if user, err = tx.CreateUser(ctx, store.User{ID: userID, Email: inv.Email, Name: name, PasswordHash: hash,
			Role: inv.Role}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "user:" + user.ID.String(), Action: "invitation.accept",
			TargetType: "invitation", TargetID: inv.ID.String(), Data: map[string]any{"email": inv.Email, "role": inv.Role}})
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Claimed, revoked or reissued between the lookup and now.
		if _, lerr := s.Lookup(ctx, token); lerr != nil {
			return store.User{}, lerr
		}
		return store.User{}, ErrInvalidLink
	case errors.Is(err, store.ErrConflict):
		return store.User{}, apperr.Conflict("this email address already has a Konstruct account; sign in instead").Wrap(err)
	case err != nil:
		return store.User{}, fmt.Errorf("invitations: accept: %w", err)
	}
	return user, nil
}
