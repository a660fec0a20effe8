package accounts_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

func newService(t *testing.T) (*accounts.Service, *store.Store) {
	t.Helper()
	db := testkit.NewDatabase(t)
	s, err := store.Open(context.Background(), db.AppURL)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return &accounts.Service{Store: s, Logger: slog.Default()}, s
}

func TestSignUpCreatesTenantAndAdmin(t *testing.T) {
	ctx := context.Background()
	svc, s := newService(t)
	u, ten, err := svc.SignUp(ctx, accounts.SignUpInput{Email: " Ada@Example.COM ", Name: " Ada ", Password: "Correct-Horse-42",
		Organisation: "  Acme <script>  "})
	require.NoError(t, err)
	require.Equal(t, "ada@example.com", u.Email)
	require.Equal(t, store.RoleCustomerAdmin, u.Role)
	require.Equal(t, ten.ID, *u.TenantID)
	require.Equal(t, "Acme <script>", ten.Name, "stored as typed; templates escape it")
	require.True(t, auth.CheckPassword(u.PasswordHash, "Correct-Horse-42"))

	// The same email again: a clear field error, nothing created.
	_, _, err = svc.SignUp(ctx, accounts.SignUpInput{Email: "ada@example.com", Name: "Other", Password: "Correct-Horse-42", Organisation: "Other"})
	var fields apperr.Fields
	require.ErrorAs(t, err, &fields)
	require.Equal(t, accounts.ErrEmailTaken, fields.Message("email"))
	require.NoError(t, s.WithPlatform(ctx, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM tenants`)
		require.Equal(t, int64(1), n, "the failed sign-up left no tenant behind")
		return err
	}))

	_, _, err = svc.SignUp(ctx, accounts.SignUpInput{Email: "nope", Name: strings.Repeat("n", 201), Password: "short",
		Organisation: ""})
	require.ErrorAs(t, err, &fields)
	require.Len(t, fields, 4)
	require.Contains(t, fields.Message("email"), "email address")
	require.Contains(t, fields.Message("name"), "at most 200")
	require.Contains(t, fields.Message("password"), "at least 12")
	require.Equal(t, "is required", fields.Message("organisation"))
}

func TestMembershipRules(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	u, ten, err := svc.SignUp(ctx, accounts.SignUpInput{Email: "ada@example.com", Name: "Ada", Password: "Correct-Horse-42", Organisation: "Acme"})
	require.NoError(t, err)
	ada := auth.PrincipalOf(u)

	op, err := svc.CreateUser(ctx, ada, ten.ID, accounts.CreateUserInput{Email: "otto@example.com", Name: "Otto",
		Password: "Tr1cky-Passphrase", Role: store.RoleCustomerOperator})
	require.NoError(t, err)

	admin := store.RoleCustomerAdmin
	operator := store.RoleCustomerOperator
	// No one changes their own role, and the last admin stays an admin.
	_, err = svc.UpdateUser(ctx, ada, ten.ID, ada.UserID, accounts.UserUpdate{Role: &operator})
	require.Equal(t, 409, apperr.From(err).Status)
	require.NoError(t, svc.RemoveUser(ctx, ada, ten.ID, op.ID))
	err = svc.RemoveUser(ctx, ada, ten.ID, ada.UserID)
	require.Equal(t, 409, apperr.From(err).Status)

	op2, err := svc.CreateUser(ctx, ada, ten.ID, accounts.CreateUserInput{Email: "bob@example.com", Password: "Tr1cky-Passphrase",
		Role: store.RoleCustomerOperator})
	require.NoError(t, err)
	up, err := svc.UpdateUser(ctx, ada, ten.ID, op2.ID, accounts.UserUpdate{Role: &admin})
	require.NoError(t, err)
	require.Equal(t, admin, up.Role)
	// Bob, now an admin, demotes Ada: allowed, Bob remains.
	bob := auth.PrincipalOf(up)
	_, err = svc.UpdateUser(ctx, bob, ten.ID, ada.UserID, accounts.UserUpdate{Role: &operator})
	require.NoError(t, err)
	// Ada (now operator) cannot demote the last admin.
	_, err = svc.UpdateUser(ctx, authz.Principal{UserID: uuid.New(), TenantID: ten.ID}, ten.ID, bob.UserID, accounts.UserUpdate{Role: &operator})
	require.Equal(t, 409, apperr.From(err).Status)

	bad := store.RolePlatformAdmin
	_, err = svc.UpdateUser(ctx, bob, ten.ID, ada.UserID, accounts.UserUpdate{Role: &bad})
	var fields apperr.Fields
	require.ErrorAs(t, err, &fields)

	// Another tenant's admin cannot see or change these users.
	u2, t2, err := svc.SignUp(ctx, accounts.SignUpInput{Email: "eve@evil.test", Name: "Eve", Password: "Correct-Horse-42", Organisation: "Evil"})
	require.NoError(t, err)
	eve := auth.PrincipalOf(u2)
	_, err = svc.UpdateUser(ctx, eve, t2.ID, ada.UserID, accounts.UserUpdate{Role: &admin})
	require.Equal(t, 404, apperr.From(err).Status)
	require.Equal(t, 404, apperr.From(svc.RemoveUser(ctx, eve, t2.ID, ada.UserID)).Status)
	list, err := svc.ListUsers(ctx, t2.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func TestPasswordAndProfile(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	u, _, err := svc.SignUp(ctx, accounts.SignUpInput{Email: "ada@example.com", Name: "Ada", Password: "Correct-Horse-42", Organisation: "Acme"})
	require.NoError(t, err)
	p := auth.PrincipalOf(u)
	_, err = svc.ChangePassword(ctx, p, "wrong", "short", "other")
	var fields apperr.Fields
	require.ErrorAs(t, err, &fields)
	require.Len(t, fields, 3)
	u2, err := svc.ChangePassword(ctx, p, "Correct-Horse-42", "Another-Horse-43", "Another-Horse-43")
	require.NoError(t, err)
	require.True(t, auth.CheckPassword(u2.PasswordHash, "Another-Horse-43"))
	u3, err := svc.UpdateProfile(ctx, p, " Ada L. ")
	require.NoError(t, err)
	require.Equal(t, "Ada L.", u3.Name)
	_, err = svc.UpdateProfile(ctx, p, "line\nbreak")
	require.ErrorAs(t, err, &fields)
}

func TestTenantLifecycle(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	root := authz.Principal{UserID: uuid.New(), Role: store.RolePlatformAdmin}
	ten, err := svc.CreateTenant(ctx, root, " Globex ")
	require.NoError(t, err)
	require.Equal(t, "Globex", ten.Name)
	_, err = svc.RenameTenant(ctx, root, ten.ID, "Globex Corp")
	require.NoError(t, err)
	_, err = svc.SetTenantStatus(ctx, root, ten.ID, store.TenantSuspended)
	require.NoError(t, err)
	_, err = svc.SetTenantStatus(ctx, authz.Principal{UserID: uuid.New(), TenantID: ten.ID, Role: store.RoleCustomerAdmin}, ten.ID, store.TenantActive)
	require.Equal(t, 403, apperr.From(err).Status)

	err = svc.DeleteTenant(ctx, root, ten.ID, "Globex")
	var fields apperr.Fields
	require.ErrorAs(t, err, &fields, "the confirmation must repeat the name")
	_, err = svc.GetTenant(ctx, ten.ID)
	require.NoError(t, err, "still there")
	require.NoError(t, svc.DeleteTenant(ctx, root, ten.ID, "Globex Corp"))
	_, err = svc.GetTenant(ctx, ten.ID)
	require.Equal(t, 404, apperr.From(err).Status)
	require.Equal(t, 404, apperr.From(svc.DeleteTenant(ctx, root, ten.ID, "Globex Corp")).Status)
}
