package invitations_test

import (
	"context"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/invitations"
	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/mail/mailtest"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

type fixture struct {
	store  *store.Store
	svc    *invitations.Service
	smtp   *mailtest.Server
	admin  authz.Principal
	tenant store.Tenant
	now    time.Time
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	srv := mailtest.Start(t)
	sender, err := mail.New(srv.URL(), "Konstruct <no-reply@konstruct.test>", slog.Default())
	require.NoError(t, err)
	f := &fixture{store: s, smtp: srv, now: time.Now()}
	f.svc = &invitations.Service{Store: s, Mail: sender, PublicURL: "http://portal.test/", Logger: slog.Default(),
		Now: func() time.Time { return f.now }}
	acc := &accounts.Service{Store: s, Logger: slog.Default()}
	u, ten, err := acc.SignUp(ctx, accounts.SignUpInput{Email: "owner@acme.test", Name: "Olive Owner",
		Password: "Correct-Horse-42", Organisation: "Acme"})
	require.NoError(t, err)
	f.admin, f.tenant = auth.PrincipalOf(u), ten
	return f
}

var linkRE = regexp.MustCompile(`http://portal\.test/invitations/accept\?token=[A-Za-z0-9_%-]+`)

func tokenFrom(t *testing.T, m mailtest.Mail) string {
	t.Helper()
	link := linkRE.FindString(m.Text)
	require.NotEmpty(t, link, "no link in: %s", m.Text)
	require.Contains(t, m.HTML, link, "the HTML part carries the same link")
	u, err := url.Parse(link)
	require.NoError(t, err)
	return u.Query().Get("token")
}

func TestInviteEmailAcceptOnce(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	out, err := f.svc.Invite(ctx, f.admin, f.tenant.ID, " Otto@Example.com ", store.RoleCustomerOperator)
	require.NoError(t, err)
	require.True(t, out.Delivered)
	require.Equal(t, "otto@example.com", out.Invitation.Email)
	require.WithinDuration(t, f.now.Add(72*time.Hour), out.Invitation.ExpiresAt, time.Second)

	m := f.smtp.Wait(t, "otto@example.com", 5*time.Second)
	require.Equal(t, "Olive Owner invited you to join Acme on Konstruct", m.Subject)
	require.Contains(t, m.Text, "as an Operator")
	token := tokenFrom(t, m)

	// Only the hash is stored.
	require.NoError(t, f.store.WithTenant(ctx, f.tenant.ID, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM invitations WHERE position($1::bytea IN token_hash) > 0`, []byte(token))
		require.Zero(t, n)
		return err
	}))

	p, err := f.svc.Lookup(ctx, token)
	require.NoError(t, err)
	require.Equal(t, "Acme", p.TenantName)

	// A weak password changes nothing.
	_, err = f.svc.Accept(ctx, token, "Otto", "password", "password")
	var fields apperr.Fields
	require.ErrorAs(t, err, &fields)
	require.Contains(t, fields.Message("password"), "at least 12")
	_, err = f.svc.Accept(ctx, token, "", "Tr1cky-Passphrase", "other")
	require.ErrorAs(t, err, &fields)
	require.Equal(t, "is required", fields.Message("name"))
	require.Equal(t, "does not match the password", fields.Message("confirm_password"))

	u, err := f.svc.Accept(ctx, token, "Otto Operator", "Tr1cky-Passphrase", "Tr1cky-Passphrase")
	require.NoError(t, err)
	require.Equal(t, store.RoleCustomerOperator, u.Role)
	require.Equal(t, f.tenant.ID, *u.TenantID)
	require.Equal(t, "otto@example.com", u.Email)

	_, err = f.svc.Accept(ctx, token, "Otto again", "Tr1cky-Passphrase", "Tr1cky-Passphrase")
	require.ErrorIs(t, err, invitations.ErrUsed)
	_, err = f.svc.Lookup(ctx, token)
	require.ErrorIs(t, err, invitations.ErrUsed)

	// The accepted invitation is no longer listed, and the audit trail has both ends.
	list, err := f.svc.List(ctx, f.tenant.ID)
	require.NoError(t, err)
	require.Empty(t, list)
	require.NoError(t, f.store.WithTenant(ctx, f.tenant.ID, func(tx *store.Tx) error {
		events, err := tx.ListAudit(ctx, 20)
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		require.Subset(t, actions, []string{"tenant.signup", "invitation.create", "invitation.accept"})
		return err
	}))

	// The address now has an account: inviting it again is refused clearly.
	_, err = f.svc.Invite(ctx, f.admin, f.tenant.ID, "otto@example.com", store.RoleCustomerAdmin)
	require.ErrorAs(t, err, &fields)
	require.Contains(t, fields.Message("email"), "already has a Konstruct account")
}

func TestTamperedExpiredRevokedAndResentLinks(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	out, err := f.svc.Invite(ctx, f.admin, f.tenant.ID, "ann@example.com", store.RoleCustomerAdmin)
	require.NoError(t, err)
	first := tokenFrom(t, f.smtp.Wait(t, "ann@example.com", 5*time.Second))

	for _, bad := range []string{"", "x", first[:len(first)-1], first + "A", strings.ToUpper(first), strings.Repeat("a", 500)} {
		_, err := f.svc.Lookup(ctx, bad)
		require.ErrorIs(t, err, invitations.ErrInvalidLink, bad)
		_, err = f.svc.Accept(ctx, bad, "Ann", "Tr1cky-Passphrase", "Tr1cky-Passphrase")
		require.ErrorIs(t, err, invitations.ErrInvalidLink, bad)
	}

	// A pending invitation to the same address is refused; resend replaces the token.
	_, err = f.svc.Invite(ctx, f.admin, f.tenant.ID, "ann@example.com", store.RoleCustomerAdmin)
	var fields apperr.Fields
	require.ErrorAs(t, err, &fields)
	require.Contains(t, fields.Message("email"), "already pending")

	re, err := f.svc.Resend(ctx, f.admin, f.tenant.ID, out.Invitation.ID)
	require.NoError(t, err)
	require.True(t, re.Delivered)
	second := tokenFrom(t, f.smtp.Wait(t, "ann@example.com", 5*time.Second))
	require.NotEqual(t, first, second)
	_, err = f.svc.Lookup(ctx, first)
	require.ErrorIs(t, err, invitations.ErrInvalidLink, "the old link died")
	_, err = f.svc.Lookup(ctx, second)
	require.NoError(t, err)

	// Expiry: 72 hours later the link shows as expired and cannot be used.
	f.now = f.now.Add(72*time.Hour + time.Minute)
	_, err = f.svc.Lookup(ctx, second)
	require.ErrorIs(t, err, invitations.ErrExpired)
	_, err = f.svc.Accept(ctx, second, "Ann", "Tr1cky-Passphrase", "Tr1cky-Passphrase")
	require.ErrorIs(t, err, invitations.ErrExpired)
	f.now = time.Now()

	// Revoke kills it.
	_, err = f.svc.Revoke(ctx, f.admin, f.tenant.ID, out.Invitation.ID)
	require.NoError(t, err)
	_, err = f.svc.Lookup(ctx, second)
	require.ErrorIs(t, err, invitations.ErrRevoked)
	_, err = f.svc.Revoke(ctx, f.admin, f.tenant.ID, out.Invitation.ID)
	require.Equal(t, 404, apperr.From(err).Status)
	_, err = f.svc.Resend(ctx, f.admin, f.tenant.ID, out.Invitation.ID)
	require.Equal(t, 404, apperr.From(err).Status)

	// After revoking, the address can be invited again.
	_, err = f.svc.Invite(ctx, f.admin, f.tenant.ID, "ann@example.com", store.RoleCustomerOperator)
	require.NoError(t, err)
}

func TestInvitationsStayInTheirTenant(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	acc := &accounts.Service{Store: f.store, Logger: slog.Default()}
	bu, bt, err := acc.SignUp(ctx, accounts.SignUpInput{Email: "boss@beta.test", Name: "Bea", Password: "Correct-Horse-42", Organisation: "Beta"})
	require.NoError(t, err)
	b := auth.PrincipalOf(bu)

	out, err := f.svc.Invite(ctx, f.admin, f.tenant.ID, "x@example.com", store.RoleCustomerOperator)
	require.NoError(t, err)
	list, err := f.svc.List(ctx, bt.ID)
	require.NoError(t, err)
	require.Empty(t, list, "B lists none of A's invitations")
	_, err = f.svc.Revoke(ctx, b, bt.ID, out.Invitation.ID)
	require.Equal(t, 404, apperr.From(err).Status)
	_, err = f.svc.Resend(ctx, b, bt.ID, out.Invitation.ID)
	require.Equal(t, 404, apperr.From(err).Status)
	_, err = f.svc.Get(ctx, bt.ID, out.Invitation.ID)
	require.Equal(t, 404, apperr.From(err).Status)
	_, err = f.svc.Get(ctx, f.tenant.ID, out.Invitation.ID)
	require.NoError(t, err)
	_, err = f.svc.Get(ctx, f.tenant.ID, uuid.New())
	require.Equal(t, 404, apperr.From(err).Status)
}

func TestUndeliverableEmailKeepsTheInvitation(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	sender, err := mail.New("smtp://127.0.0.1:1?tls=none", "no-reply@konstruct.test", slog.Default())
	require.NoError(t, err)
	f.svc.Mail = sender
	out, err := f.svc.Invite(ctx, f.admin, f.tenant.ID, "lost@example.com", store.RoleCustomerOperator)
	require.NoError(t, err)
	require.False(t, out.Delivered)
	list, err := f.svc.List(ctx, f.tenant.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Nil(t, list[0].SentAt)
}

func TestInviteValidatesInput(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	_, err := f.svc.Invite(ctx, f.admin, f.tenant.ID, "not-an-email", store.RolePlatformAdmin)
	var fields apperr.Fields
	require.ErrorAs(t, err, &fields)
	require.NotEmpty(t, fields.Message("email"))
	require.NotEmpty(t, fields.Message("role"))
	_, err = f.svc.Invite(ctx, f.admin, f.tenant.ID, strings.Repeat("a", 250)+"@example.com", store.RoleCustomerAdmin)
	require.ErrorAs(t, err, &fields)
	require.Contains(t, fields.Message("email"), "at most 254")
	require.Empty(t, f.smtp.Messages())
}
