package activities

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

type outletFixture struct {
	ctx    context.Context
	st     *store.Store
	graph  *fakewhatsapp.Server
	outlet *WhatsAppOutlet
	conn   Connection
	tenant uuid.UUID
	n      int
}

const waNumber = "1065000222"

func newOutletFixture(t *testing.T) *outletFixture {
	t.Helper()
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	st, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	graph := fakewhatsapp.New(t)
	graph.AddNumber(waNumber, "EAAG-token", "+1 555-0222", "Outlet")
	graph.AddTemplate(waNumber, "we_have_a_reply", "en_US")
	f := &outletFixture{ctx: ctx, st: st, graph: graph, tenant: uuid.New(),
		outlet: &WhatsAppOutlet{Client: whatsapp.NewClient(graph.URL(), "v25.0", nil), Store: st,
			StatusGrace: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}}
	require.NoError(t, st.WithTenant(ctx, f.tenant, func(tx *store.Tx) error {
		if _, err := tx.CreateTenant(ctx, f.tenant, "T"); err != nil {
			return err
		}
		a, err := tx.CreateAgent(ctx, store.Agent{Name: "A", BusinessFunction: "Support"})
		if err != nil {
			return err
		}
		f.conn.Row, err = tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: a.ID, Kind: store.ChannelWhatsApp,
			ExternalID: waNumber, Secret: []byte{1}, TemplateName: "we_have_a_reply", TemplateLanguage: "en_US"})
		return err
	}))
	f.conn.Token = "EAAG-token"
	return f
}

// user records that user last wrote at when (opening or not the window).
func (f *outletFixture) user(t *testing.T, key, waID string, when time.Time) Address {
	t.Helper()
	require.NoError(t, f.st.WithTenant(f.ctx, f.tenant, func(tx *store.Tx) error {
		return tx.TouchWhatsAppContact(f.ctx, store.WhatsAppContact{PhoneNumberID: waNumber, UserKey: key, WAID: waID, LastInboundAt: when})
	}))
	return Address{PhoneNumberID: waNumber, Recipient: key}
}

// part claims a new key and returns the part to post.
func (f *outletFixture) part(t *testing.T, kind string, index int, text string) Part {
	t.Helper()
	f.n++
	key := "conversation/" + f.tenant.String() + "/whatsapp/k:" + string(rune('0'+f.n)) + ":" + kind + ":" + string(rune('0'+index))
	require.NoError(t, f.st.WithTenant(f.ctx, f.tenant, func(tx *store.Tx) error {
		_, err := tx.ClaimOutbound(f.ctx, store.Outbound{Key: key, Channel: store.ChannelWhatsApp})
		return err
	}))
	return Part{Key: key, Kind: kind, Index: index, Text: text, ReplyTo: "wamid.IN"}
}

func (f *outletFixture) sentAs(t *testing.T, key string) string {
	t.Helper()
	var s string
	require.NoError(t, f.st.WithTenant(f.ctx, f.tenant, func(tx *store.Tx) error {
		return tx.QueryRowScan(f.ctx, `SELECT sent_as FROM outbound_messages WHERE key = $1`, []any{key}, &s)
	}))
	return s
}

func appErrType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	return ""
}

// Inside the window each part is text (the first quoting); outside it the
// template stands in for the whole message; a user known only by their
// business-scoped ID is addressed by it.
func TestWhatsAppOutletWindow(t *testing.T) {
	f := newOutletFixture(t)
	addr := f.user(t, "US.1", "16505551234", time.Now())
	p0, p1 := f.part(t, KindReply, 0, "first"), f.part(t, KindReply, 1, "second")
	id, err := f.outlet.Post(f.ctx, f.conn, addr, p0)
	require.NoError(t, err)
	_, err = f.outlet.Post(f.ctx, f.conn, addr, p1)
	require.NoError(t, err)
	sent := f.graph.Sent()
	require.Len(t, sent, 2)
	require.Equal(t, fakewhatsapp.Sent{WAMID: id, PhoneNumberID: waNumber, To: "16505551234", Type: "text", Text: "first",
		ReplyTo: "wamid.IN", BizOpaque: p0.Key, Authorization: "Bearer EAAG-token"}, sent[0])
	require.Empty(t, sent[1].ReplyTo, "only the first part quotes")
	require.Equal(t, "text", f.sentAs(t, p0.Key))

	closed := f.user(t, "US.2", "", time.Now().Add(-25*time.Hour))
	q0, q1 := f.part(t, KindReply, 0, "late answer"), f.part(t, KindReply, 1, "more")
	_, err = f.outlet.Post(f.ctx, f.conn, closed, q0)
	require.NoError(t, err)
	id, err = f.outlet.Post(f.ctx, f.conn, closed, q1)
	require.NoError(t, err)
	require.Empty(t, id, "the later part is skipped")
	sent = f.graph.Sent()
	require.Len(t, sent, 3)
	require.Equal(t, "template", sent[2].Type)
	require.Equal(t, "US.2", sent[2].Recipient, "no phone number known: the BSUID")
	require.Equal(t, "we_have_a_reply", sent[2].Template)
	require.Equal(t, "template", f.sentAs(t, q0.Key))
	require.Equal(t, "skipped", f.sentAs(t, q1.Key))

	// Without a template, nothing can be sent outside the window.
	noTemplate := f.conn
	noTemplate.Row.TemplateName, noTemplate.Row.TemplateLanguage = "", ""
	_, err = f.outlet.Post(f.ctx, noTemplate, closed, f.part(t, KindReply, 0, "x"))
	require.Equal(t, ErrChannelGone, appErrType(err))
	require.Contains(t, err.Error(), "no approved template")

	// Meta refusing a free-form message at once (131047): the template instead.
	// (The user wrote seconds ago: Meta's timestamps are whole seconds, and a
	// message of the refusal's second would reopen the window.)
	edge := f.user(t, "US.3", "16505553333", time.Now().Add(-23*time.Hour-59*time.Minute))
	f.graph.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131047})
	r0 := f.part(t, KindReply, 0, "refused")
	_, err = f.outlet.Post(f.ctx, f.conn, edge, r0)
	require.NoError(t, err)
	sent = f.graph.Sent()
	require.Equal(t, "template", sent[len(sent)-1].Type)
	require.Equal(t, r0.Key, sent[len(sent)-1].BizOpaque)
	var c store.WhatsAppContact
	require.NoError(t, f.st.WithTenant(f.ctx, f.tenant, func(tx *store.Tx) error {
		var err error
		c, err = tx.GetWhatsAppContact(f.ctx, waNumber, "US.3")
		return err
	}))
	require.False(t, c.WindowOpen, "Meta's word closes the window")
}

// Find, for a claim an earlier attempt left pending: never attempted or
// refused means not sent; a status webhook's wamid means sent; an attempt
// whose answer was lost is waited on for StatusGrace, then sent again.
func TestWhatsAppOutletFind(t *testing.T) {
	f := newOutletFixture(t)
	addr := f.user(t, "16505550001", "16505550001", time.Now())

	fresh := f.part(t, KindReply, 0, "x")
	_, found, err := f.outlet.Find(f.ctx, f.conn, addr, fresh.Key)
	require.NoError(t, err)
	require.False(t, found, "never attempted")

	f.graph.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131000})
	refused := f.part(t, KindReply, 0, "x")
	_, err = f.outlet.Post(f.ctx, f.conn, addr, refused)
	require.Error(t, err)
	require.Empty(t, appErrType(err), "retryable")
	_, found, err = f.outlet.Find(f.ctx, f.conn, addr, refused.Key)
	require.NoError(t, err)
	require.False(t, found, "Meta refused it: not sent, no need to wait")

	f.graph.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{LoseResponse: true})
	lost := f.part(t, KindReply, 0, "lost")
	_, err = f.outlet.Post(f.ctx, f.conn, addr, lost)
	require.Error(t, err)
	_, _, err = f.outlet.Find(f.ctx, f.conn, addr, lost.Key)
	require.Equal(t, ErrWhatsAppStatusPending, appErrType(err), "the answer was lost: wait for Meta's status")
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Positive(t, ae.NextRetryDelay())
	require.LessOrEqual(t, ae.NextRetryDelay(), 300*time.Millisecond)

	// Meta's status names the message: found, with its wamid.
	wamid := f.graph.Sent()[0].WAMID
	require.NoError(t, f.st.WithTenant(f.ctx, f.tenant, func(tx *store.Tx) error {
		_, _, err := tx.ApplyWhatsAppStatus(f.ctx, store.WhatsAppStatus{Key: lost.Key, WAMID: wamid, Status: "sent", Rank: 1, At: time.Now()})
		return err
	}))
	id, found, err := f.outlet.Find(f.ctx, f.conn, addr, lost.Key)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, wamid, id)

	// No status within the grace: sent again.
	f.graph.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{LoseResponse: true})
	silent := f.part(t, KindReply, 0, "silent")
	_, err = f.outlet.Post(f.ctx, f.conn, addr, silent)
	require.Error(t, err)
	time.Sleep(350 * time.Millisecond)
	_, found, err = f.outlet.Find(f.ctx, f.conn, addr, silent.Key)
	require.NoError(t, err)
	require.False(t, found)
}

// Rate limits retry after a delay and hold back this worker's sends to the
// same user (131056) or from the same number (130429) meanwhile; 131026
// marks the user unreachable and nothing is sent to them until they write.
func TestWhatsAppOutletErrors(t *testing.T) {
	f := newOutletFixture(t)
	alice := f.user(t, "16505550001", "16505550001", time.Now())
	bob := f.user(t, "16505550002", "16505550002", time.Now())

	f.graph.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131056})
	_, err := f.outlet.Post(f.ctx, f.conn, alice, f.part(t, KindReply, 0, "a"))
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "WhatsAppRateLimited", ae.Type())
	require.Equal(t, 6*time.Second, ae.NextRetryDelay())
	posts := len(f.graph.Requests())
	_, err = f.outlet.Post(f.ctx, f.conn, alice, f.part(t, KindReply, 0, "a again"))
	require.ErrorAs(t, err, &ae)
	require.Greater(t, ae.NextRetryDelay(), 5*time.Second)
	require.Len(t, f.graph.Requests(), posts, "held back without asking Meta")
	_, err = f.outlet.Post(f.ctx, f.conn, bob, f.part(t, KindReply, 0, "b"))
	require.NoError(t, err, "another user of the number is not held back")

	f.graph.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131026})
	_, err = f.outlet.Post(f.ctx, f.conn, bob, f.part(t, KindReply, 0, "b2"))
	require.Equal(t, ErrChannelGone, appErrType(err))
	posts = len(f.graph.Requests())
	_, err = f.outlet.Post(f.ctx, f.conn, bob, f.part(t, KindReply, 0, "b3"))
	require.Equal(t, ErrChannelGone, appErrType(err))
	require.Contains(t, err.Error(), "until they write again")
	require.Len(t, f.graph.Requests(), posts, "nothing sent to an unreachable user")
	bob = f.user(t, "16505550002", "16505550002", time.Now().Add(time.Second))
	_, err = f.outlet.Post(f.ctx, f.conn, bob, f.part(t, KindReply, 0, "b4"))
	require.NoError(t, err, "reachable again once they wrote")

	f.graph.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 130429})
	_, err = f.outlet.Post(f.ctx, f.conn, bob, f.part(t, KindReply, 0, "b5"))
	require.ErrorAs(t, err, &ae)
	require.Equal(t, time.Second, ae.NextRetryDelay())
	_, err = f.outlet.Post(f.ctx, f.conn, alice, f.part(t, KindReply, 0, "a3"))
	require.ErrorAs(t, err, &ae, "the whole number waits out 130429")
}

// SentTemplate tells Deliver which messages reached the user only as the
// template (so the conversation shows them when the user writes again).
func TestWhatsAppOutletSentTemplate(t *testing.T) {
	f := newOutletFixture(t)
	open := f.user(t, "US.3", "16505550003", time.Now())
	closed := f.user(t, "US.4", "16505550004", time.Now().Add(-25*time.Hour))
	text, tmpl := f.part(t, KindStaff, 0, "Jane: on it"), f.part(t, KindStaff, 0, "Jane: refunded")
	_, err := f.outlet.Post(f.ctx, f.conn, open, text)
	require.NoError(t, err)
	_, err = f.outlet.Post(f.ctx, f.conn, closed, tmpl)
	require.NoError(t, err)
	got, err := f.outlet.SentTemplate(f.ctx, f.conn, text.Key)
	require.NoError(t, err)
	require.False(t, got)
	got, err = f.outlet.SentTemplate(f.ctx, f.conn, tmpl.Key)
	require.NoError(t, err)
	require.True(t, got, "outside the window the template went instead")
	_, err = f.outlet.SentTemplate(f.ctx, f.conn, "no-such-key")
	require.ErrorIs(t, err, store.ErrNotFound)
}
