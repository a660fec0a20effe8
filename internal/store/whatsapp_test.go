package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

// The 24-hour window runs from the user's last message (a late, older
// delivery does not move it back), Meta's 131047 closes it until the user
// writes again, and a user marked unreachable is reachable once they write.
func TestWhatsAppContactWindow(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "w")
	in := func(c store.WhatsAppContact) {
		t.Helper()
		require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error { return tx.TouchWhatsAppContact(ctx, c) }))
	}
	get := func() store.WhatsAppContact {
		t.Helper()
		var c store.WhatsAppContact
		require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
			var err error
			c, err = tx.GetWhatsAppContact(ctx, "1065", "US.42")
			return err
		}))
		return c
	}

	in(store.WhatsAppContact{PhoneNumberID: "1065", UserKey: "US.42", UserID: "US.42", LastInboundAt: time.Now().Add(-25 * time.Hour)})
	c := get()
	require.False(t, c.WindowOpen, "last message 25 hours ago")
	require.Empty(t, c.WAID)

	now := time.Now().Add(-2 * time.Second).Truncate(time.Microsecond) // before the refusal below, by more than Meta's one-second resolution
	in(store.WhatsAppContact{PhoneNumberID: "1065", UserKey: "US.42", WAID: "16505551234", ProfileName: "Sheena", LastInboundAt: now})
	in(store.WhatsAppContact{PhoneNumberID: "1065", UserKey: "US.42", LastInboundAt: now.Add(-2 * time.Hour)}) // a late retry
	c = get()
	require.True(t, c.WindowOpen)
	require.True(t, c.LastInboundAt.Equal(now), "%s != %s", c.LastInboundAt, now)
	require.Equal(t, "16505551234", c.WAID, "kept when a later delivery omits it")
	require.Equal(t, "US.42", c.UserID)
	require.Equal(t, "Sheena", c.ProfileName)

	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		if err := tx.CloseWhatsAppWindow(ctx, "1065", "US.42"); err != nil {
			return err
		}
		return tx.MarkWhatsAppUnreachable(ctx, "1065", "US.42", 131026)
	}))
	c = get()
	require.False(t, c.WindowOpen, "Meta said 131047")
	require.NotNil(t, c.UnreachableAt)
	require.Equal(t, 131026, *c.UnreachableCode)

	in(store.WhatsAppContact{PhoneNumberID: "1065", UserKey: "US.42", LastInboundAt: time.Now().Add(time.Second)})
	c = get()
	require.True(t, c.WindowOpen, "the user wrote again")
	require.Nil(t, c.UnreachableAt)
}

// Statuses find their message by key or wamid, never move it backwards,
// keep the error and pricing, and turn a pending claim into a sent one.
func TestApplyWhatsAppStatus(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "s")
	const key = "conversation/x/whatsapp/1065:US.42:1:reply:0"
	apply := func(st store.WhatsAppStatus) (store.OutboundRef, bool) {
		t.Helper()
		var ref store.OutboundRef
		var found bool
		require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
			var err error
			ref, found, err = tx.ApplyWhatsAppStatus(ctx, st)
			return err
		}))
		return ref, found
	}
	delivery := func() store.OutboundDelivery {
		t.Helper()
		var out []store.OutboundDelivery
		require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
			var err error
			out, err = tx.ListOutbound(ctx, a.conversation.ID)
			return err
		}))
		require.Len(t, out, 1)
		return out[0]
	}
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.ClaimOutbound(ctx, store.Outbound{Key: key, ConversationID: &a.conversation.ID, Channel: store.ChannelWhatsApp})
		return err
	}))

	_, found := apply(store.WhatsAppStatus{WAMID: "wamid.unknown", Status: "sent", Rank: 1})
	require.False(t, found, "a message this tenant never sent")

	// The claim is still pending (the sender lost Meta's answer): the "sent"
	// status, carrying the key, names the message.
	ref, found := apply(store.WhatsAppStatus{Key: key, WAMID: "wamid.A", Status: "sent", Rank: 1, At: time.Now(),
		Pricing: json.RawMessage(`{"billable":false,"pricing_model":"PMP","category":"service"}`)})
	require.True(t, found)
	require.True(t, ref.Applied)
	require.Equal(t, key, ref.Key)
	require.Equal(t, a.conversation.ID, *ref.ConversationID)
	d := delivery()
	require.Equal(t, "sent", d.Status)
	require.Equal(t, "wamid.A", d.ExternalID)
	require.Equal(t, "sent", d.DeliveryStatus)
	require.JSONEq(t, `{"billable":false,"pricing_model":"PMP","category":"service"}`, string(d.Pricing))

	// read without delivered; then a late delivered and a repeated sent change nothing.
	ref, _ = apply(store.WhatsAppStatus{WAMID: "wamid.A", Status: "read", Rank: 3, At: time.Now()})
	require.True(t, ref.Applied)
	for _, st := range []store.WhatsAppStatus{{WAMID: "wamid.A", Status: "delivered", Rank: 2}, {WAMID: "wamid.A", Status: "sent", Rank: 1}} {
		ref, found = apply(st)
		require.True(t, found)
		require.False(t, ref.Applied, st.Status)
	}
	require.Equal(t, "read", delivery().DeliveryStatus)
	code := 131047
	ref, _ = apply(store.WhatsAppStatus{WAMID: "wamid.A", Status: "failed", Rank: 3, ErrorCode: &code, ErrorTitle: "Re-engagement message"})
	require.False(t, ref.Applied, "a read message does not fail afterwards")

	// A failure is kept with its code.
	const key2 = "conversation/x/whatsapp/1065:US.42:2:reply:0"
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		if _, err := tx.ClaimOutbound(ctx, store.Outbound{Key: key2, Channel: store.ChannelWhatsApp}); err != nil {
			return err
		}
		return tx.CompleteOutbound(ctx, key2, "wamid.B")
	}))
	ref, found = apply(store.WhatsAppStatus{WAMID: "wamid.B", Status: "failed", Rank: 3, ErrorCode: &code, ErrorTitle: "Re-engagement message"})
	require.True(t, found)
	require.True(t, ref.Applied)
	require.Equal(t, key2, ref.Key)
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		at, err := tx.GetOutboundAttempt(ctx, key2)
		require.NoError(t, err)
		require.Equal(t, "failed", at.DeliveryStatus)
		var got int
		require.NoError(t, tx.QueryRowScan(ctx, `SELECT error_code FROM outbound_messages WHERE key = $1`, []any{key2}, &got))
		require.Equal(t, 131047, got)
		return nil
	}))
}
