package accounts_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
)

// UpdateTenant holds the rules the portal and the API share: a customer
// admin renames its own tenant but neither suspends it nor changes its
// limits; values are checked; each real change is audited once.
func TestUpdateTenantRules(t *testing.T) {
	ctx := context.Background()
	svc, s := newService(t)
	root := authz.Principal{UserID: uuid.New(), Role: store.RolePlatformAdmin}
	ten, err := svc.CreateTenant(ctx, root, "Initech")
	require.NoError(t, err)
	admin := authz.Principal{UserID: uuid.New(), TenantID: ten.ID, Role: store.RoleCustomerAdmin}
	str := func(v string) *string { return &v }
	limit := func(v int) **int { p := &v; return &p }

	got, err := svc.UpdateTenant(ctx, admin, ten.ID, store.TenantPatch{Name: str(" Initrode ")})
	require.NoError(t, err)
	require.Equal(t, "Initrode", got.Name)
	for _, up := range []store.TenantPatch{{Status: str(store.TenantSuspended)}, {Status: str("paused")},
		{RateLimitPerMinute: limit(5)}, {ChannelRatePerMinute: limit(0)}} {
		_, err = svc.UpdateTenant(ctx, admin, ten.ID, up)
		require.Equal(t, 403, apperr.From(err).Status, "%+v", up)
	}
	var fields apperr.Fields
	for field, up := range map[string]store.TenantPatch{
		"name":                    {Name: str("two\nlines")},
		"status":                  {Status: str("paused")},
		"rate_limit_per_minute":   {RateLimitPerMinute: limit(0)},
		"channel_rate_per_minute": {ChannelRatePerMinute: limit(accounts.MaxRatePerMinute + 1)},
	} {
		_, err = svc.UpdateTenant(ctx, root, ten.ID, up)
		require.ErrorAs(t, err, &fields, field)
		require.NotEmpty(t, fields.Message(field), field)
	}

	got, err = svc.UpdateTenant(ctx, root, ten.ID, store.TenantPatch{Status: str(store.TenantSuspended),
		RateLimitPerMinute: limit(600), ChannelRatePerMinute: limit(60)})
	require.NoError(t, err)
	require.Equal(t, store.TenantSuspended, got.Status)
	require.Equal(t, 600, *got.RateLimitPerMinute)
	_, err = svc.UpdateTenant(ctx, root, ten.ID, store.TenantPatch{Name: str("Initrode"), RateLimitPerMinute: limit(600)})
	require.NoError(t, err, "no change is no error")
	got, err = svc.UpdateTenant(ctx, root, ten.ID, store.TenantPatch{RateLimitPerMinute: new(*int)})
	require.NoError(t, err)
	require.Nil(t, got.RateLimitPerMinute, "a nil limit goes back to the default")
	_, err = svc.UpdateTenant(ctx, root, uuid.New(), store.TenantPatch{Name: str("Ghost")})
	require.Equal(t, 404, apperr.From(err).Status)

	require.NoError(t, s.WithTenant(ctx, ten.ID, func(tx *store.Tx) error {
		events, err := tx.ListAudit(ctx, 20)
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		require.Equal(t, []string{"tenant.limits_change", "tenant.limits_change", "tenant.suspend", "tenant.rename", "tenant.create"}, actions)
		return err
	}))
}
