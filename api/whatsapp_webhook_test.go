package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

const waSecret = "meta-app-secret"

// whatsAppNumber connects number to a new agent of tenant, through the store.
func whatsAppNumber(t *testing.T, s *apitest.Server, tenant uuid.UUID, number string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		a, err := tx.CreateAgent(ctx, store.Agent{Name: "Ada", BusinessFunction: "Support"})
		if err != nil {
			return err
		}
		_, err = tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: a.ID, Kind: store.ChannelWhatsApp,
			ExternalID: number, Secret: []byte{1}})
		return err
	}))
}

// inboxEvent returns how many inbox rows tenant has for eventID, and the
// payload of one.
func inboxEvent(t *testing.T, s *apitest.Server, tenant uuid.UUID, eventID string) (int, map[string]any) {
	t.Helper()
	ctx := context.Background()
	var n int64
	var payload map[string]any
	require.NoError(t, s.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		var err error
		if n, err = tx.QueryInt(ctx, `SELECT count(*) FROM inbox WHERE event_id = $1`, eventID); err != nil || n == 0 {
			return err
		}
		var raw []byte
		if err := tx.QueryRowScan(ctx, `SELECT payload FROM inbox WHERE event_id = $1`, []any{eventID}, &raw); err != nil {
			return err
		}
		return json.Unmarshal(raw, &payload)
	}))
	return int(n), payload
}

// The WhatsApp webhook's contract: Meta's handshake; a body verified before
// it is parsed; a batch of several numbers (tenants) recorded each in its
// own tenant; odd but signed payloads and unknown numbers acknowledged; a
// body over the limit refused; and a 503 (Meta retries) only when something
// could not be recorded. Every answer is checked against openapi.yaml.
func TestWhatsAppWebhookContract(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"WHATSAPP_APP_SECRET": waSecret,
		"WHATSAPP_VERIFY_TOKEN": "verify-123", "MAX_BODY_BYTES": "4096"}})
	a, b := s.CreateTenant(t, "A"), s.CreateTenant(t, "B")
	whatsAppNumber(t, s, a.ID, "1110001")
	whatsAppNumber(t, s, b.ID, "2220002")
	post := func(body []byte, secret string) *apitest.Response {
		req := fakewhatsapp.NewWebhookRequest(s.URL+"/webhooks/whatsapp", secret, body)
		req.Header.Set("X-Forwarded-For", s.ClientIP)
		return s.Send(t, req)
	}

	// The handshake.
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"verify-123"}, "hub.challenge": {"987654"}}
	r := s.Do(t, http.MethodGet, "/webhooks/whatsapp?"+q.Encode(), "", nil).Expect(t, http.StatusOK)
	require.Equal(t, "987654", string(r.Body))
	require.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain"))
	q.Set("hub.verify_token", "verify-1234")
	s.Do(t, http.MethodGet, "/webhooks/whatsapp?"+q.Encode(), "", nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
	// Only the successful one is recorded, durably, under the right token's
	// digest (the setup wizard's "Check" reads it).
	for token, want := range map[string]int64{"verify-123": 1, "verify-1234": 0} {
		require.NoError(t, s.Store.WithTenant(context.Background(), a.ID, func(tx *store.Tx) error {
			v, found, err := tx.GetWhatsAppVerification(context.Background(), whatsapp.VerifyTokenSHA256(token))
			require.Equal(t, want > 0, found, token)
			require.Equal(t, want, v.Count, token)
			return err
		}))
	}

	// Unsigned or wrongly signed: 401, nothing recorded.
	m := fakewhatsapp.Text("16505551234", "hi")
	body := fakewhatsapp.Messages("1110001", m)
	post(body, "not-the-secret").ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	unsigned := s.NewRequest(t, http.MethodPost, "/webhooks/whatsapp", "", body)
	msg := s.Send(t, unsigned).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	require.Contains(t, msg, "missing X-Hub-Signature-256")
	n, _ := inboxEvent(t, s, a.ID, m.ID)
	require.Zero(t, n)

	// Signed but not JSON: 400. Odd but signed: 200.
	post([]byte("<xml/>"), waSecret).ExpectError(t, http.StatusBadRequest, "malformed_event", "")
	for _, odd := range []string{`{"object":"page","entry":[]}`, `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1110001"},"messages":[{"id":"wamid.NOSENDER","type":"text","text":{"body":"x"}}]}}]}]}`} {
		r := post([]byte(odd), waSecret).Expect(t, http.StatusOK)
		require.Empty(t, r.Body)
	}
	n, _ = inboxEvent(t, s, a.ID, "wamid.NOSENDER")
	require.Zero(t, n, "a message without a sender starts nothing")

	// A batch of two tenants' numbers and an unknown one: each message in its
	// own tenant's inbox, keyed by the BSUID, the unknown one acknowledged.
	ma := fakewhatsapp.Text("16505551234", "from A's customer")
	ma.UserID = "US.111"
	mb := fakewhatsapp.Text("447700900123", "from B's customer")
	mx := fakewhatsapp.Text("33612345678", "to nobody")
	batch := fakewhatsapp.Payload(fakewhatsapp.Change{PhoneNumberID: "1110001", Messages: []fakewhatsapp.Msg{ma}},
		fakewhatsapp.Change{PhoneNumberID: "2220002", Messages: []fakewhatsapp.Msg{mb}},
		fakewhatsapp.Change{PhoneNumberID: "9990009", Messages: []fakewhatsapp.Msg{mx}})
	post(batch, waSecret).Expect(t, http.StatusOK)
	post(batch, waSecret).Expect(t, http.StatusOK) // Meta's retry: deduped
	n, pa := inboxEvent(t, s, a.ID, ma.ID)
	require.Equal(t, 1, n)
	in := pa["input"].(map[string]any)
	require.Equal(t, "whatsapp", in["channel"])
	require.Equal(t, "1110001:US.111", in["external_key"])
	require.Equal(t, map[string]any{"phone_number_id": "1110001", "recipient": "US.111"}, in["address"])
	require.Equal(t, ma.ID, pa["message"].(map[string]any)["ts"], "the wamid, which the reply quotes")
	n, _ = inboxEvent(t, s, b.ID, ma.ID)
	require.Zero(t, n, "B does not get A's message")
	n, _ = inboxEvent(t, s, b.ID, mb.ID)
	require.Equal(t, 1, n)
	for _, tn := range []uuid.UUID{a.ID, b.ID} {
		n, _ = inboxEvent(t, s, tn, mx.ID)
		require.Zero(t, n, "the unknown number's message is nowhere")
	}

	// A status for a message neither tenant sent changes nothing, and is fine.
	post(fakewhatsapp.Statuses("1110001", fakewhatsapp.StatusSpec{ID: "wamid.UNKNOWN", Status: "read", RecipientID: "16505551234"}), waSecret).
		Expect(t, http.StatusOK)

	// Over the body limit: 413.
	big := fakewhatsapp.Messages("1110001", fakewhatsapp.Text("1", strings.Repeat("x", 5000)))
	post(big, waSecret).ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large", "")

	// Postgres gone: 503 with Retry-After, so Meta delivers it again.
	s.Store.Close()
	r = post(fakewhatsapp.Messages("1110001", fakewhatsapp.Text("16505551234", "while the database is down")), waSecret)
	r.ExpectError(t, http.StatusServiceUnavailable, "unavailable", "")
	require.Equal(t, "1", r.Header.Get("Retry-After"))
	// Meta's handshake is still answered: the record of it is not worth a
	// failed verification.
	q.Set("hub.verify_token", "verify-123")
	r = s.Do(t, http.MethodGet, "/webhooks/whatsapp?"+q.Encode(), "", nil).Expect(t, http.StatusOK)
	require.Equal(t, "987654", string(r.Body))
}

// Without an app secret the server cannot tell Meta's deliveries from
// anyone's: it refuses them all (503, so that Meta retries once configured),
// and without a verify token the handshake fails.
func TestWhatsAppWebhookNotConfigured(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	body := fakewhatsapp.Messages("1110001", fakewhatsapp.Text("16505551234", "hi"))
	req := fakewhatsapp.NewWebhookRequest(s.URL+"/webhooks/whatsapp", "", body)
	msg := s.Send(t, req).ExpectError(t, http.StatusServiceUnavailable, "unavailable", "")
	require.Contains(t, msg, "KONSTRUCT_WHATSAPP_APP_SECRET")
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {""}, "hub.challenge": {"1"}}
	resp, err := http.Get(s.URL + "/webhooks/whatsapp?" + q.Encode())
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}
