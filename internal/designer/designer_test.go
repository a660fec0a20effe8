package designer_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

func TestDesignerLifecycle(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	tenant, other := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{tenant, other} {
		require.NoError(t, s.WithTenant(ctx, id, func(tx *store.Tx) error {
			_, err := tx.CreateTenant(ctx, id, "T "+id.String()[:4])
			return err
		}))
	}
	svc := &designer.Service{Store: s, KnownTools: []string{"current_time"}}
	p := authz.Principal{UserID: uuid.New(), TenantID: tenant, Role: store.RoleCustomerAdmin}

	_, err = svc.Create(ctx, p, tenant, agents.Input{Name: "", Models: []string{"gpt"}, Tools: []string{"nope"}})
	var fields apperr.Fields
	require.ErrorAs(t, err, &fields)
	require.NotEmpty(t, fields.Message("name"))
	require.NotEmpty(t, fields.Message("models"))
	require.NotEmpty(t, fields.Message("tools"))

	a, err := svc.Create(ctx, p, tenant, agents.Input{Name: " Sam ", Models: []string{"openai/gpt-4o-mini", ""}, Tools: []string{"current_time"}})
	require.NoError(t, err)
	require.Equal(t, "Sam", a.Name)
	require.Equal(t, []string{"openai/gpt-4o-mini"}, a.Models)
	require.Equal(t, store.AgentActive, a.Status)

	in := designer.InputOf(a)
	in.Role = "support"
	a, err = svc.Update(ctx, p, tenant, a.ID, in)
	require.NoError(t, err)
	require.Equal(t, "support", a.Role)
	a, err = svc.SetStatus(ctx, p, tenant, a.ID, store.AgentInactive)
	require.NoError(t, err)
	require.Equal(t, store.AgentInactive, a.Status)
	_, err = svc.SetStatus(ctx, p, tenant, a.ID, "paused")
	require.ErrorAs(t, err, &fields)

	// Another tenant reaches none of it.
	_, err = svc.Get(ctx, other, a.ID)
	require.Equal(t, 404, apperr.From(err).Status)
	_, err = svc.Update(ctx, p, other, a.ID, in)
	require.Equal(t, 404, apperr.From(err).Status)
	require.Equal(t, 404, apperr.From(svc.Delete(ctx, p, other, a.ID)).Status)

	// A channel routing to the agent blocks deleting it until disconnected.
	var ch store.ChannelConnection
	require.NoError(t, s.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		ch, err = tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: a.ID, Kind: store.ChannelSlack, ExternalID: "T1", Secret: []byte{1}})
		return err
	}))
	require.Equal(t, 409, apperr.From(svc.Delete(ctx, p, tenant, a.ID)).Status)
	_, err = svc.DisconnectChannel(ctx, p, other, ch.ID)
	require.Equal(t, 404, apperr.From(err).Status)
	got, err := svc.DisconnectChannel(ctx, p, tenant, ch.ID)
	require.NoError(t, err)
	require.Nil(t, got.Secret, "the token never leaves the service")
	require.NoError(t, svc.Delete(ctx, p, tenant, a.ID))

	require.NoError(t, s.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		events, err := tx.ListAudit(ctx, 20)
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		require.Equal(t, []string{"agent.delete", "channel.disconnect", "agent.deactivate", "agent.update", "agent.create"}, actions)
		return err
	}))
}
