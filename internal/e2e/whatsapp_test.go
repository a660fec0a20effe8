package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/konstruct/konstruct/internal/mail/mailtest"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
	"github.com/konstruct/konstruct/internal/testkit/platform"
	"github.com/konstruct/konstruct/workflows"
)

// queryRow runs sql in platform scope as the owner role (tests only).
func queryRow(t *testing.T, p *platform.Platform, sql string, args []any, dest ...any) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DB.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT set_config('app.platform', 'on', false)`)
	require.NoError(t, err)
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

func inboxRows(t *testing.T, p *platform.Platform, eventID string) int {
	t.Helper()
	var n int
	require.NoError(t, queryRow(t, p, `SELECT count(*) FROM inbox WHERE event_id = $1`, []any{eventID}, &n))
	return n
}

// whatsAppBarrier sends user (phone number, and business-scoped user ID when
// bsuid is set) one more message and waits for its echo: the conversation
// answers in order, so whatever a duplicate would have sent has been sent by
// then.
func whatsAppBarrier(t *testing.T, p *platform.Platform, tn platform.WhatsAppTenant, user, bsuid string, want int) []fakewhatsapp.Sent {
	t.Helper()
	m := fakewhatsapp.Text(user, "barrier")
	m.UserID = bsuid
	status, _ := p.PostWhatsApp(tn.Messages(m))
	require.Equal(t, http.StatusOK, status)
	sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, want, replyTimeout)
	require.Equal(t, "echo: barrier", sent[len(sent)-1].Text)
	return sent
}

// A WhatsApp conversation through the real binary: a text in gets a reply
// out through the Graph API with the tenant's token, quoting it, scoped to
// the agent's business function; Meta's statuses are recorded; three
// deliveries of one webhook give one reply; a long reply is split at 4,096
// characters; a sticker gets a notice and a reaction nothing; a message the
// user wrote over 24 hours ago is answered with the template; a bad
// signature is refused and an unknown number acknowledged, neither starting
// anything.
func TestWhatsAppConversation(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	longAnswer := strings.Repeat("Returns are free within thirty days. ", 150) // 5,550 characters
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if strings.Contains(r.LastUserText(), "long") {
			return fakellm.Text(longAnswer)
		}
		return fakellm.Text("echo: " + r.LastUserText())
	})
	tn := p.NewWhatsAppTenant("Acme", platform.AgentSpec{Name: "Ada", BusinessFunction: "Order tracking and returns for Acme's web shop"})
	const sheena, bsuid = "16505551234", "US.13491208655302741918"

	// Handshake, as Meta's console does it.
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {p.WhatsAppVerifyToken}, "hub.challenge": {"1158201444"}}
	resp, err := http.Get(p.URL + "/webhooks/whatsapp?" + q.Encode())
	require.NoError(t, err)
	challenge, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "1158201444", string(challenge))
	q.Set("hub.verify_token", "wrong")
	resp, err = http.Get(p.URL + "/webhooks/whatsapp?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// A text in, a reply out.
	m := fakewhatsapp.Text(sheena, "where is my order?")
	m.UserID, m.Name = bsuid, "Sheena Nelson"
	status, _ := p.PostWhatsApp(tn.Messages(m))
	require.Equal(t, http.StatusOK, status)
	sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, sheena, 1, replyTimeout)
	reply := sent[0]
	require.Equal(t, "echo: where is my order?", reply.Text)
	require.Equal(t, "text", reply.Type)
	require.Equal(t, "Bearer "+tn.Token, reply.Authorization, "sent with the tenant's token")
	require.Equal(t, m.ID, reply.ReplyTo, "the reply quotes the message it answers")
	workflowID := workflows.ConversationID(tn.ID, "whatsapp", workflows.WhatsAppKey(tn.PhoneNumberID, bsuid))
	require.Equal(t, workflowID+":1:reply:0", reply.BizOpaque, "one conversation per number and user (keyed by the BSUID)")
	req := p.LLM.Requests()[0]
	require.Contains(t, req.System, "You are chatting on WhatsApp")
	require.Contains(t, req.System, "Scope on WhatsApp: you act only for this business function: Order tracking and returns for Acme's web shop")

	// Meta's statuses (sent, then delivered) land on the outbound record.
	require.Eventually(t, func() bool {
		var st, model string
		err := queryRow(t, p, `SELECT delivery_status, coalesce(pricing->>'pricing_model', '') FROM outbound_messages
			WHERE tenant_id = $1 AND external_id = $2`, []any{tn.ID, reply.WAMID}, &st, &model)
		return err == nil && st == "delivered" && model == "PMP"
	}, 20*time.Second, 100*time.Millisecond, "the delivered status and its pricing are recorded")
	// A late "sent" does not move it back.
	status, _ = p.PostWhatsApp(fakewhatsapp.Statuses(tn.PhoneNumberID, fakewhatsapp.StatusSpec{ID: reply.WAMID, Status: "sent", RecipientID: sheena}))
	require.Equal(t, http.StatusOK, status)
	var st string
	require.NoError(t, queryRow(t, p, `SELECT delivery_status FROM outbound_messages WHERE external_id = $1`, []any{reply.WAMID}, &st))
	require.Equal(t, "delivered", st)

	// Meta delivering the same webhook three times gives one reply.
	m = fakewhatsapp.Text(sheena, "only once please")
	m.UserID = bsuid
	body := tn.Messages(m)
	for i := range 3 {
		status, _ := p.PostWhatsApp(body)
		require.Equal(t, http.StatusOK, status, "delivery %d", i+1)
	}
	require.Equal(t, 1, inboxRows(t, p, m.ID))
	sent = whatsAppBarrier(t, p, tn, sheena, bsuid, 3)
	require.Len(t, sent, 3)
	require.Equal(t, "echo: only once please", sent[1].Text)

	// A long reply goes in parts of at most 4,096 characters, the first quoting.
	m = fakewhatsapp.Text(sheena, "give me the long version")
	m.UserID = bsuid
	status, _ = p.PostWhatsApp(tn.Messages(m))
	require.Equal(t, http.StatusOK, status)
	sent = p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, sheena, 5, replyTimeout)
	parts := sent[3:5]
	require.Equal(t, longAnswer, parts[0].Text+parts[1].Text)
	for _, part := range parts {
		require.LessOrEqual(t, utf8.RuneCountInString(part.Text), 4096)
	}
	require.Equal(t, m.ID, parts[0].ReplyTo)
	require.Empty(t, parts[1].ReplyTo)
	require.Equal(t, workflowID+":4:reply:1", parts[1].BizOpaque, "turn 4: where, only once, barrier, long")

	// A sticker gets a notice without asking the model; a reaction is
	// recorded and not answered.
	calls := p.LLM.Count()
	sticker := fakewhatsapp.Of(sheena, "sticker", map[string]any{"id": "5678", "mime_type": "image/webp"})
	sticker.UserID = bsuid
	status, _ = p.PostWhatsApp(tn.Messages(sticker))
	require.Equal(t, http.StatusOK, status)
	sent = p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, sheena, 6, replyTimeout)
	require.Contains(t, sent[5].Text, "Sorry, I can't open stickers here: I can only read text messages")
	reaction := fakewhatsapp.Of(sheena, "reaction", map[string]any{"message_id": sent[5].WAMID, "emoji": "👍"})
	reaction.UserID = bsuid
	status, _ = p.PostWhatsApp(tn.Messages(reaction))
	require.Equal(t, http.StatusOK, status)
	sent = whatsAppBarrier(t, p, tn, sheena, bsuid, 7)
	require.Len(t, sent, 7, "nothing answered the reaction")
	require.Equal(t, calls+1, p.LLM.Count(), "only the barrier asked the model")

	// A message the user wrote 25 hours ago (a webhook Meta could deliver
	// only now): the window is closed, so the approved template goes.
	late := fakewhatsapp.Text("447700900123", "are you open on Sunday?")
	late.Timestamp = time.Now().Add(-25 * time.Hour)
	status, _ = p.PostWhatsApp(tn.Messages(late))
	require.Equal(t, http.StatusOK, status)
	tmpl := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, "447700900123", 1, replyTimeout)[0]
	require.Equal(t, "template", tmpl.Type)
	require.Equal(t, tn.Template, tmpl.Template)
	require.Equal(t, tn.Language, tmpl.Language)

	// A bad signature is refused; an unknown number is acknowledged. Neither
	// records or starts anything.
	bad := fakewhatsapp.Text("447700900999", "let me in")
	status, _ = p.PostRequest(fakewhatsapp.NewWebhookRequest(p.URL+"/webhooks/whatsapp", "not-the-app-secret", tn.Messages(bad)))
	require.Equal(t, http.StatusUnauthorized, status)
	unknown := fakewhatsapp.Text("447700900998", "hello?")
	status, _ = p.PostWhatsApp(fakewhatsapp.Messages("19999999999", unknown))
	require.Equal(t, http.StatusOK, status)
	require.Zero(t, inboxRows(t, p, bad.ID))
	require.Zero(t, inboxRows(t, p, unknown.ID))
	c := testkit.NewTemporal(t)
	_, err = c.DescribeWorkflowExecution(context.Background(),
		workflows.ConversationID(tn.ID, "whatsapp", workflows.WhatsAppKey(tn.PhoneNumberID, "447700900999")), "")
	var notFound *serviceerror.NotFound
	require.ErrorAs(t, err, &notFound, "no conversation started for a badly signed message")
	require.Empty(t, p.WhatsApp.SentTo(tn.PhoneNumberID, "447700900999"))
	require.Empty(t, p.WhatsApp.SentTo("19999999999", "447700900998"))

	// The conversation, over REST.
	var convs struct {
		Conversations []struct {
			Channel string `json:"channel"`
			Turns   int    `json:"turns"`
		} `json:"conversations"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &convs)
	require.Len(t, convs.Conversations, 2, "Sheena's and the late user's")
	turns := map[int]bool{}
	for _, cv := range convs.Conversations {
		require.Equal(t, "whatsapp", cv.Channel)
		turns[cv.Turns] = true
	}
	require.Equal(t, map[int]bool{7: true, 1: true}, turns, "the sticker and the reaction are turns of Sheena's conversation")
}

// What Meta reports after or instead of accepting a message: a 131047
// failure sends the template (once, however often it is reported); a rate
// limit is waited out; a lost answer is resolved by Meta's status without a
// second send; 131026 marks the user unreachable until they write; a refused
// token marks the connection and tells the tenant's admins.
func TestWhatsAppDeliveryFailures(t *testing.T) {
	smtp := mailtest.Start(t)
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_SMTP_URL": smtp.URL()}})
	echo(p)
	tn := p.NewWhatsAppTenant("Globex", platform.AgentSpec{Name: "Gil"})
	post := func(user, text string) fakewhatsapp.Msg {
		t.Helper()
		m := fakewhatsapp.Text(user, text)
		status, _ := p.PostWhatsApp(tn.Messages(m))
		require.Equal(t, http.StatusOK, status)
		return m
	}

	t.Run("a failed status with 131047 sends the template instead, once", func(t *testing.T) {
		const user = "447700900201"
		p.WhatsApp.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131047, Async: true})
		post(user, "hello?")
		sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 2, replyTimeout)
		require.Equal(t, "echo: hello?", sent[0].Text, "accepted, then reported failed")
		require.Equal(t, "template", sent[1].Type)
		require.Equal(t, tn.Template, sent[1].Template)
		require.True(t, strings.HasSuffix(sent[1].BizOpaque, ":1:template:0"), sent[1].BizOpaque)
		var code int
		require.NoError(t, queryRow(t, p, `SELECT error_code FROM outbound_messages WHERE external_id = $1 AND delivery_status = 'failed'`,
			[]any{sent[0].WAMID}, &code))
		require.Equal(t, 131047, code)
		// Meta reporting the failure again changes nothing.
		status, _ := p.PostWhatsApp(fakewhatsapp.Statuses(tn.PhoneNumberID, fakewhatsapp.StatusSpec{ID: sent[0].WAMID, Status: "failed",
			RecipientID: user, Errors: []fakewhatsapp.ErrorSpec{{Code: 131047, Title: "Re-engagement message"}}}))
		require.Equal(t, http.StatusOK, status)
		// The user answers the template: the reply it stood in for is shown,
		// once, then their message is answered.
		sent = whatsAppBarrier(t, p, tn, user, "", 4)
		require.Len(t, sent, 4, "one template")
		require.Equal(t, "echo: hello?", sent[2].Text, "the reply the template stood in for, when the user wrote again")
	})

	t.Run("a rate limit is waited out and the reply sent once", func(t *testing.T) {
		const user = "447700900202"
		p.WhatsApp.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 130429})
		post(user, "busy day?")
		sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 1, replyTimeout)
		require.Equal(t, "echo: busy day?", sent[0].Text)
		require.Equal(t, 2, p.WhatsApp.Posts(tn.PhoneNumberID, user), "refused once, then sent")
		require.Len(t, whatsAppBarrier(t, p, tn, user, "", 2), 2)
	})

	t.Run("a lost answer is resolved by Meta's status, not sent twice", func(t *testing.T) {
		const user = "447700900203"
		p.WhatsApp.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{LoseResponse: true})
		post(user, "are you there?")
		sent := whatsAppBarrier(t, p, tn, user, "", 2)
		require.Len(t, sent, 2)
		require.Equal(t, "echo: are you there?", sent[0].Text)
		require.Equal(t, 2, p.WhatsApp.Posts(tn.PhoneNumberID, user), "the lost one and the barrier's")
	})

	t.Run("131026 marks the user unreachable until they write", func(t *testing.T) {
		const user = "447700900204"
		p.WhatsApp.Fail(fakewhatsapp.OpMessages, fakewhatsapp.Failure{Code: 131026})
		post(user, "ping")
		require.Eventually(t, func() bool {
			var code int
			err := queryRow(t, p, `SELECT coalesce(unreachable_code, 0) FROM whatsapp_contacts WHERE tenant_id = $1 AND user_key = $2`,
				[]any{tn.ID, user}, &code)
			return err == nil && code == 131026
		}, replyTimeout, 100*time.Millisecond)
		require.Empty(t, p.WhatsApp.SentTo(tn.PhoneNumberID, user))
		sent := whatsAppBarrier(t, p, tn, user, "", 1)
		require.Len(t, sent, 1, "writing again makes them reachable")
	})

	t.Run("a refused token marks the connection and tells the admins", func(t *testing.T) {
		const user = "447700900205"
		p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/users", p.AdminToken, map[string]string{"email": "owner@globex.test",
			"name": "Olga Owner", "password": "Tr1cky-Pass-Word-42", "role": "customer_admin"}, http.StatusCreated, nil)
		p.WhatsApp.RevokeToken(tn.Token)
		post(user, "anyone?")
		email := smtp.Wait(t, "owner@globex.test", replyTimeout)
		require.Contains(t, email.Subject, "reconnect WhatsApp number")
		require.Contains(t, email.Text, p.URL+"/t/"+tn.ID+"/channels")
		var list struct {
			Channels []struct {
				ID         string `json:"id"`
				TokenError string `json:"token_error"`
			} `json:"channels"`
		}
		p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/channels", p.AdminToken, nil, http.StatusOK, &list)
		require.Len(t, list.Channels, 1)
		require.Contains(t, list.Channels[0].TokenError, "190")
		require.Equal(t, 1, auditCount(t, p, platform.Tenant{ID: tn.ID}, `action = 'channel.token_invalid'`))

		// Told once: another failed send sends no second email.
		post(user, "still there?")
		require.Eventually(t, func() bool { return p.WhatsApp.Posts(tn.PhoneNumberID, user) >= 2 }, replyTimeout, 100*time.Millisecond)
		require.Equal(t, 1, auditCount(t, p, platform.Tenant{ID: tn.ID}, `action = 'channel.token_invalid'`))

		// A new token clears it, and the agent answers again.
		newToken := tn.Token + "-new"
		p.WhatsApp.AddNumber(tn.PhoneNumberID, newToken, "+1 555-0100", "Globex Support")
		p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/channels/whatsapp", p.AdminToken, map[string]string{
			"phone_number_id": tn.PhoneNumberID, "waba_id": "1" + tn.PhoneNumberID, "access_token": newToken, "agent_id": tn.AgentID},
			http.StatusCreated, nil)
		list.Channels = nil // token_error is omitted when empty
		p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/channels", p.AdminToken, nil, http.StatusOK, &list)
		require.Empty(t, list.Channels[0].TokenError)
		sent := whatsAppBarrier(t, p, tn, user, "", 1)
		require.Equal(t, "Bearer "+newToken, sent[0].Authorization)
		require.Len(t, smtp.Messages(), 1)
	})
}
