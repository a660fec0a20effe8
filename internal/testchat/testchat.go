// Package testchat is the portal's "try it" chat: an operator talks to an
// agent from the portal, through the same path as Slack and WhatsApp. A
// message is recorded in the inbox (source "portal", deduped by the
// message ID the browser made) like any webhook event, the dispatcher hands
// it to the agent's ConversationWorkflow on channel "portal", and the reply
// is the message Deliver records (activities.PortalOutlet), which the
// browser reads back with Messages.
//
// A chat is one conversation per agent, operator and chat ID (a fresh ID per
// page), so an operator's tries never mix with another's.
package testchat

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api/webhooks"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/ratelimit"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/workflows"
)

// MaxText bounds one message, like a chat platform's message limit.
const MaxText = 4000

// Service sends test messages and reads the replies.
type Service struct {
	Store    *store.Store
	Limiter  *ratelimit.Limiter // counts test messages against the tenant's limit; nil: no limit
	Wake     func()             // tells the inbox dispatcher an event is waiting (optional)
	Settings workflows.Settings // the conversation settings webhooks start workflows with
	// TenantRatePerMinute is the platform's default per-tenant limit.
	TenantRatePerMinute int
	Now                 func() time.Time
}

// Message is one typed message.
type Message struct {
	ChatID    string // the chat (browser page) it belongs to
	MessageID string // made by the browser: a resent message is recorded once
	Text      string
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// Key is the conversation key of an operator's chat with an agent.
func Key(agentID, userID uuid.UUID, chatID string) string {
	return agentID.String() + ":" + userID.String() + ":" + chatID
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Send records m for the agent's conversation with the operator p, to be
// answered by the conversation workflow. recorded is false when the same
// message was sent before (a retried request). Bad input comes back as
// apperr.Fields.
func (s *Service) Send(ctx context.Context, p authz.Principal, tenantID, agentID uuid.UUID, m Message) (recorded bool, err error) {
	text := strings.TrimSpace(m.Text)
	var errs apperr.Fields
	if !idRE.MatchString(m.ChatID) {
		errs.Add("chat_id", "must be 8 to 64 letters, digits, - or _")
	}
	if !idRE.MatchString(m.MessageID) {
		errs.Add("message_id", "must be 8 to 64 letters, digits, - or _")
	}
	switch {
	case text == "":
		errs.Add("text", "type a message")
	case utf8.RuneCountInString(text) > MaxText:
		errs.Add("text", fmt.Sprintf("must be at most %d characters", MaxText))
	}
	if err := errs.Err(); err != nil {
		return false, err
	}
	var tenant store.Tenant
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if tenant, err = tx.GetTenant(ctx, tenantID); err != nil {
			return err
		}
		_, err = tx.GetAgent(ctx, agentID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, apperr.NotFound("agent").Wrap(err)
	}
	if err != nil {
		return false, fmt.Errorf("testchat: send: %w", err)
	}

	key := Key(agentID, p.UserID, m.ChatID)
	in := workflows.ConversationInput{TenantID: tenantID.String(), AgentID: agentID.String(), Channel: store.ChannelPortal,
		ExternalKey: key, UserRef: p.Email, Settings: s.Settings}
	inbound := workflows.Inbound{EventID: m.ChatID + ":" + m.MessageID, UserID: p.Email, Text: text, TS: m.MessageID,
		ReceivedAt: s.now()}
	if inbound.OverLimit, err = s.overLimit(ctx, tenant); err != nil {
		return false, apperr.Unavailable("the message could not be sent; try again").Wrap(err)
	}
	recorded, err = webhooks.RecordConversationEvent(ctx, s.Store, tenantID, store.SourcePortal, in, inbound)
	if err != nil {
		return false, apperr.Unavailable("the message could not be sent; try again").Wrap(err)
	}
	if recorded && s.Wake != nil {
		s.Wake()
	}
	return recorded, nil
}

// overLimit counts the message against the tenant's limit, which Slack and
// WhatsApp messages share: the workflow then answers with the limit's notice.
func (s *Service) overLimit(ctx context.Context, tenant store.Tenant) (*workflows.OverLimit, error) {
	if s.Limiter == nil {
		return nil, nil
	}
	rate := s.TenantRatePerMinute
	if tenant.RateLimitPerMinute != nil {
		rate = *tenant.RateLimitPerMinute
	}
	if rate <= 0 {
		return nil, nil
	}
	res, err := s.Limiter.Allow(ctx, "tenant:"+tenant.ID.String(), rate)
	if err != nil || res.Allowed {
		return nil, err
	}
	return &workflows.OverLimit{Scope: "tenant", PerMinute: rate, RetryAfter: res.RetryAfter}, nil
}

// Messages returns the messages of the operator's chat with the agent, in
// order, from the after-th on (none until the workflow opened the
// conversation). A message's position is after plus its index: new messages
// only ever come at the end.
func (s *Service) Messages(ctx context.Context, tenantID, agentID, userID uuid.UUID, chatID string, after int) ([]store.Message, error) {
	if !idRE.MatchString(chatID) {
		return nil, apperr.Fields{apperr.Invalid("chat", "must be 8 to 64 letters, digits, - or _")}
	}
	var out []store.Message
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		cv, err := tx.GetConversationByKey(ctx, store.ChannelPortal, Key(agentID, userID, chatID))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		msgs, err := tx.ListMessages(ctx, cv.ID)
		if after < len(msgs) {
			out = msgs[max(after, 0):]
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testchat: messages: %w", err)
	}
	return out, nil
}
