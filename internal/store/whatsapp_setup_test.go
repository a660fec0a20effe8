package store_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

// Meta's verifications are kept per verify token: a verification with an
// earlier token does not count for the current one, and a later one moves
// the time forward.
func TestWhatsAppVerification(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "v")
	old, cur := sha256.Sum256([]byte("old-token")), sha256.Sum256([]byte("current-token"))
	get := func(token []byte) (store.WhatsAppVerification, bool) {
		t.Helper()
		var v store.WhatsAppVerification
		var found bool
		// Read in a tenant's transaction, as the wizard's check does: the
		// table holds no tenant's rows, so every tenant reads the same.
		require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
			var err error
			v, found, err = tx.GetWhatsAppVerification(ctx, token)
			return err
		}))
		return v, found
	}

	require.NoError(t, s.RecordWhatsAppVerification(ctx, old[:]))
	_, found := get(cur[:])
	require.False(t, found, "verified with another token")
	first, found := get(old[:])
	require.True(t, found)
	require.Equal(t, int64(1), first.Count)

	require.NoError(t, s.RecordWhatsAppVerification(ctx, cur[:]))
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, s.RecordWhatsAppVerification(ctx, cur[:]))
	v, found := get(cur[:])
	require.True(t, found)
	require.Equal(t, int64(2), v.Count)
	require.True(t, v.LastAt.After(v.FirstAt), "%s, %s", v.FirstAt, v.LastAt)
	again, _ := get(old[:])
	require.Equal(t, first, again, "the earlier token's record is left alone")

	require.Error(t, s.RecordWhatsAppVerification(ctx, []byte("short")), "only a SHA-256 is stored")
}

// A number's deliveries — an inbound message (its contact) and the status of
// a message sent from it — are seen by the tenant that has the number only,
// and not mixed up with another number's.
func TestWhatsAppActivity(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a, b := seed(t, ctx, s, "a"), seed(t, ctx, s, "b")
	activity := func(tenant store.Tenant, number string) store.WhatsAppActivity {
		t.Helper()
		var out store.WhatsAppActivity
		require.NoError(t, s.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
			var err error
			out, err = tx.GetWhatsAppActivity(ctx, number)
			return err
		}))
		return out
	}
	require.False(t, activity(a.tenant, "1065").Any())

	// A's customer writes to A's number 1065.
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		return tx.TouchWhatsAppContact(ctx, store.WhatsAppContact{PhoneNumberID: "1065", UserKey: "US.1", LastInboundAt: time.Now()})
	}))
	got := activity(a.tenant, "1065")
	require.True(t, got.Any())
	require.NotNil(t, got.LastMessageAt)
	require.Nil(t, got.LastStatusAt)
	require.Equal(t, got.LastMessageAt, got.Last())
	require.False(t, activity(a.tenant, "10650").Any(), "another number, however alike")
	require.False(t, activity(b.tenant, "1065").Any(), "B sees nothing of A's number")

	// A's agent answered from 1065, and Meta reported it read, later.
	readAt := time.Now().Add(time.Minute).Truncate(time.Second)
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		cv, err := tx.EnsureConversation(ctx, store.Conversation{AgentID: a.agent.ID, Channel: store.ChannelWhatsApp,
			ExternalKey: "1065:US.1", WorkflowID: "wf-wa-" + a.tenant.ID.String(), UserRef: "US.1"})
		if err != nil {
			return err
		}
		const key = "conversation/x/whatsapp/1065:US.1:1:reply:0"
		if _, err := tx.ClaimOutbound(ctx, store.Outbound{Key: key, ConversationID: &cv.ID, Channel: store.ChannelWhatsApp}); err != nil {
			return err
		}
		_, _, err = tx.ApplyWhatsAppStatus(ctx, store.WhatsAppStatus{Key: key, WAMID: "wamid.R", Status: "read", Rank: 3, At: readAt})
		return err
	}))
	got = activity(a.tenant, "1065")
	require.NotNil(t, got.LastStatusAt)
	require.True(t, got.LastStatusAt.Equal(readAt))
	require.Equal(t, got.LastStatusAt, got.Last(), "the later of the two")
	require.False(t, activity(b.tenant, "1065").Any())
}
