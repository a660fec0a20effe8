package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testchat"
)

// sendChat posts a test chat message as the browser's script does.
func (b *browser) sendChat(path string, body string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.h.URL+path, strings.NewReader(body))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", b.csrf)
	req.Header.Set("Origin", b.h.URL)
	return b.do(req)
}

// chatEvent is one server-sent event of the chat stream.
type chatEvent struct {
	ID   string
	Data map[string]string
}

// readEvents reads the chat stream for up to d and returns its events.
func (b *browser) readEvents(t *testing.T, path, lastEventID string, d time.Duration) (int, []chatEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.h.URL+path, nil)
	require.NoError(t, err)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := b.c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	var out []chatEvent
	var cur chatEvent
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data))
		case line == "" && cur.Data != nil:
			out = append(out, cur)
			cur = chatEvent{}
		}
	}
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, out
}

// The test chat's endpoints: what a message must be, that a resent message
// is recorded once as a portal inbox event, and that the stream shows a chat
// to the operator who had it only — not to a colleague with the same chat ID,
// and not to another organisation.
func TestTestChatEndpoints(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	admin := h.browser()
	home := admin.signUp("ada@acme.test", "Ada Lovelace", "Acme Robotics")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	agent := seedAgents(t, h, tenant, "Ada")[0]
	send := home + "/agents/" + agent.ID.String() + "/chat"
	admin.get(home + "/agents/" + agent.ID.String())

	// Bad input: each field says what it needs; nothing recorded.
	p := admin.sendChat(send, `{"chat_id":"x","message_id":"","text":"  "}`)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status, p.Body)
	require.Contains(t, p.Body, `"field":"chat_id"`)
	p = admin.sendChat(send, `not json`)
	require.Equal(t, http.StatusBadRequest, p.Status)
	p = admin.sendChat(send, `{"chat_id":"chat-0001","message_id":"msg-0001","text":"`+strings.Repeat("a", testchat.MaxText+1)+`"}`)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "at most 4000 characters")
	p = admin.sendChat(home+"/agents/"+uuid.NewString()+"/chat", `{"chat_id":"chat-0001","message_id":"msg-0001","text":"hi"}`)
	require.Equal(t, http.StatusNotFound, p.Status)
	// Without the form token: refused.
	req, _ := http.NewRequest(http.MethodPost, h.URL+send, strings.NewReader(`{"chat_id":"chat-0001","message_id":"msg-0001","text":"hi"}`))
	req.Header.Set("Content-Type", "application/json")
	require.Equal(t, http.StatusForbidden, admin.do(req).Status)

	// A message, then the same message again (a retried request): one event.
	msg := `{"chat_id":"chat-0001","message_id":"msg-0001","text":"Hello there"}`
	p = admin.sendChat(send, msg)
	require.Equal(t, http.StatusAccepted, p.Status, p.Body)
	require.JSONEq(t, `{"recorded":true}`, p.Body)
	p = admin.sendChat(send, msg)
	require.Equal(t, http.StatusOK, p.Status)
	require.JSONEq(t, `{"recorded":false}`, p.Body)
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM inbox WHERE source = 'portal' AND event_id = 'chat-0001:msg-0001'`)
		require.Equal(t, int64(1), n)
		return err
	}))

	// The conversation as the workflow records it (no worker runs here):
	// the message, then the reply, each in its own transaction.
	user := admin.userID(t, h, "ada@acme.test")
	var cv store.Conversation
	for _, m := range []store.Message{
		{Turn: 1, Role: "user", Content: "Hello there", ExternalID: "msg-0001", IdempotencyKey: "k1"},
		{Turn: 1, Role: "assistant", Content: "Hi Ada!", Provider: "openai", Model: "gpt-4o-mini", IdempotencyKey: "k2"},
	} {
		require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
			var err error
			cv, err = tx.EnsureConversation(ctx, store.Conversation{AgentID: agent.ID, Channel: store.ChannelPortal,
				ExternalKey: testchat.Key(agent.ID, uuid.MustParse(user), "chat-0001"), WorkflowID: "wf-chat-0001", UserRef: "ada@acme.test"})
			if err != nil {
				return err
			}
			m.ConversationID = cv.ID
			_, err = tx.AddMessage(ctx, m)
			return err
		}))
	}
	events2 := func(b *browser, chat, last string) (int, []chatEvent) {
		return b.readEvents(t, send+"/events?chat="+chat, last, 1500*time.Millisecond)
	}
	status, evs := events2(admin, "chat-0001", "")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, evs, 2)
	require.Equal(t, "1", evs[0].ID)
	require.Equal(t, map[string]string{"user": "Hello there", "message_id": "msg-0001"},
		map[string]string{evs[0].Data["role"]: evs[0].Data["text"], "message_id": evs[0].Data["message_id"]})
	require.Equal(t, "assistant", evs[1].Data["role"])
	require.Equal(t, "Hi Ada!", evs[1].Data["text"])
	require.Equal(t, "gpt-4o-mini", evs[1].Data["model"])
	// Resuming after the first event gives the rest.
	_, evs = events2(admin, "chat-0001", "1")
	require.Len(t, evs, 1)
	require.Equal(t, "2", evs[0].ID)
	status, _ = events2(admin, "bad", "")
	require.Equal(t, http.StatusUnprocessableEntity, status)

	// A colleague asking for the same chat ID sees nothing of it.
	colleague := h.browser()
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		hash, err := auth.HashPassword("Colleague-Pass-Word-1")
		if err != nil {
			return err
		}
		_, err = tx.CreateUser(ctx, store.User{Email: "bea@acme.test", PasswordHash: hash, Role: store.RoleCustomerAdmin})
		return err
	}))
	colleague.signIn("bea@acme.test", "Colleague-Pass-Word-1")
	status, evs = events2(colleague, "chat-0001", "")
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, evs, "a chat is its operator's own")
	// Another organisation gets a 404.
	outsider := h.browser()
	outsider.signUp("eve@evil.test", "Eve", "Evil Corp")
	status, _ = events2(outsider, "chat-0001", "")
	require.Equal(t, http.StatusNotFound, status)
	outsider.get("/")
	require.Equal(t, http.StatusNotFound, outsider.sendChat(send, msg).Status)
}
