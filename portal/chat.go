package portal

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testchat"
)

// The "try it" chat: the browser posts a message (chatSend) and listens for
// the conversation's messages as server-sent events (chatEvents). The reply
// comes from the agent's conversation workflow on the portal channel, like
// any Slack or WhatsApp message's.

// chatView is what the chat partial needs.
type chatView struct {
	Agent      store.Agent
	ChatID     string // a fresh chat per page
	SendURL    string
	EventsURL  string
	Onboarding bool // the stepper's chat: a reply enables "Finish setup"
}

func newChatID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Portal) chatFor(tenant *store.Tenant, a store.Agent, onboarding bool) *chatView {
	base := "/t/" + tenant.ID.String() + "/agents/" + a.ID.String() + "/chat"
	return &chatView{Agent: a, ChatID: newChatID(), SendURL: base, EventsURL: base + "/events", Onboarding: onboarding}
}

// chatSend records a typed message for the agent's conversation with the
// viewer: 202 once it is in the inbox (the reply comes as an event), 200 for
// a message already sent (a retried request).
func (p *Portal) chatSend(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	agentID, ok := pathUUID(c, "agent_id")
	if !ok {
		apiutil.Error(c, apperr.NotFound("agent"))
		return
	}
	var req struct {
		ChatID    string `json:"chat_id"`
		MessageID string `json:"message_id"`
		Text      string `json:"text"`
	}
	body, err := io.ReadAll(c.Request.Body)
	if err == nil && json.Unmarshal(body, &req) != nil {
		err = errors.New("the body is not a JSON object with chat_id, message_id and text")
	}
	if err != nil {
		apiutil.Error(c, apperr.BadRequest("malformed_json", "send {\"chat_id\", \"message_id\", \"text\"} as JSON").Wrap(err))
		return
	}
	recorded, err := p.d.TestChat.Send(c.Request.Context(), viewerOf(c).Principal, tenant.ID, agentID,
		testchat.Message{ChatID: req.ChatID, MessageID: req.MessageID, Text: req.Text})
	if err != nil {
		apiutil.Error(c, err)
		return
	}
	status := http.StatusAccepted
	if !recorded {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"recorded": recorded})
}

// chatEvent is one message of the chat as the browser receives it.
type chatEvent struct {
	ID        string `json:"id"`
	Role      string `json:"role"` // user | assistant | system (a notice)
	Text      string `json:"text"`
	MessageID string `json:"message_id,omitempty"` // the browser's ID of a user message
	Provider  string `json:"provider,omitempty"`
	Model     string `json:"model,omitempty"`
	At        string `json:"at"`
}

// Stream timing: a stream lasts less than the server's write timeout and the
// browser's EventSource reconnects (Last-Event-ID says where it was); new
// messages are looked for every chatPoll.
const (
	chatStreamFor = 25 * time.Second
	chatPoll      = 250 * time.Millisecond
)

// chatEvents streams the chat's messages as server-sent events, each with
// its position as the event ID, from where the browser's Last-Event-ID says
// it stopped.
func (p *Portal) chatEvents(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	agentID, ok := pathUUID(c, "agent_id")
	if !ok {
		apiutil.Error(c, apperr.NotFound("agent"))
		return
	}
	ctx := c.Request.Context()
	user := viewerOf(c).Principal.UserID
	chatID := c.Query("chat")
	after, _ := strconv.Atoi(c.GetHeader("Last-Event-ID"))
	// The first read answers errors as JSON, before the stream starts.
	msgs, err := p.d.TestChat.Messages(ctx, tenant.ID, agentID, user, chatID, after)
	if err != nil {
		apiutil.Error(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy must not hold the events back
	c.Status(http.StatusOK)
	_, _ = fmt.Fprint(c.Writer, "retry: 1000\n\n")
	c.Writer.Flush()
	deadline := time.NewTimer(chatStreamFor)
	defer deadline.Stop()
	tick := time.NewTicker(chatPoll)
	defer tick.Stop()
	for {
		for _, m := range msgs {
			after++
			if m.Role == "tool" {
				continue
			}
			ev := chatEvent{ID: m.ID.String(), Role: m.Role, Text: m.Content, Provider: m.Provider, Model: m.Model,
				At: m.CreatedAt.UTC().Format(time.RFC3339Nano)}
			if m.Role == "user" {
				ev.MessageID = m.ExternalID
			}
			b, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(c.Writer, "id: %d\nevent: message\ndata: %s\n\n", after, b); err != nil {
				return
			}
		}
		c.Writer.Flush()
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
		if msgs, err = p.d.TestChat.Messages(ctx, tenant.ID, agentID, user, chatID, after); err != nil {
			if ctx.Err() == nil {
				p.d.Logger.WarnContext(ctx, "test chat: read messages", "err", err)
			}
			return // the browser reconnects
		}
	}
}
