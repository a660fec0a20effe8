package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/store"
)

// WhatsAppOutlet sends a conversation's messages from a business number with
// the Graph API and the tenant's access token.
//
// What goes out: inside the user's 24-hour customer-service window (from
// their last message, recorded by the webhook) each part as a text message,
// the first quoting the message it answers; outside it, only the number's
// approved template, once for the whole message (the later parts are
// skipped). A KindTemplate part is always the template. Errors by Meta's
// code: 130429 and 131056 (and the other rate limits) retry after a delay
// that grows with the attempt, and pause sends from that number (or to that
// user) in this worker meanwhile; 131047 answered at once sends the template
// instead (reported later in a status webhook, the conversation does it);
// 131026 marks the user unreachable until they write again; 190 marks the
// connection as needing a new token, records an audit event and emails the
// tenant's admins, once.
//
// Exactly once per part: Deliver claims each part's key before Post. Post
// records that an attempt began, sends the key as biz_opaque_callback_data —
// which Meta echoes in the message's status webhooks, recorded against the
// key — and records a refusal Meta answers. WhatsApp has no way to look a
// sent message up, so Find (for a claim an earlier attempt left pending)
// asks the record: a status webhook that named the key proves the message
// went out; a refusal or no attempt at all proves it did not; an attempt
// whose answer was lost (the worker died, the connection broke) is waited on
// for StatusGrace, for Meta's "sent" status, which normally follows within
// seconds. Only when none arrives in that time is the part sent again, so a
// duplicate needs a lost answer AND a status webhook later than StatusGrace
// (or a number whose webhook does not subscribe the messages field).
type WhatsAppOutlet struct {
	Client      *whatsapp.Client
	Store       *store.Store
	Mail        mail.Sender // tells admins of a refused token; nil: log only
	PublicURL   string      // links the email to the portal
	StatusGrace time.Duration
	Logger      *slog.Logger

	pace pacer
}

// DefaultStatusGrace is how long a retry waits for Meta's status of an
// attempt whose answer was lost before it sends the part again.
const DefaultStatusGrace = 30 * time.Second

// ErrWhatsAppStatusPending is the (retryable) error type of a retry waiting
// for Meta's status of an earlier attempt.
const ErrWhatsAppStatusPending = "WhatsAppStatusPending"

// How a WhatsApp part went out (outbound_messages.sent_as).
const (
	sentAsText     = "text"
	sentAsTemplate = "template"
	sentAsSkipped  = "skipped"
)

// ConnectionID is the business number's phone-number ID.
func (*WhatsAppOutlet) ConnectionID(addr Address) string { return addr.PhoneNumberID }

// Split cuts at whatsapp.MaxTextChars (4,096), preferring paragraph and line breaks.
func (*WhatsAppOutlet) Split(text string) []string {
	return slack.SplitText(text, whatsapp.MaxTextChars)
}

func (o *WhatsAppOutlet) grace() time.Duration {
	if o.StatusGrace > 0 {
		return o.StatusGrace
	}
	return DefaultStatusGrace
}

// Post sends one part (see the type's comment).
func (o *WhatsAppOutlet) Post(ctx context.Context, conn Connection, addr Address, part Part) (string, error) {
	tenantID := conn.Row.TenantID
	var contact store.WhatsAppContact
	err := o.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		contact, err = tx.GetWhatsAppContact(ctx, addr.PhoneNumberID, addr.Recipient)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Never wrote to this number (a conversation starts from a message,
		// so this is a removed record): no window, template only.
		contact = store.WhatsAppContact{PhoneNumberID: addr.PhoneNumberID, UserKey: addr.Recipient}
	case err != nil:
		return "", fmt.Errorf("activities: whatsapp: read contact: %w", err)
	}
	if contact.UnreachableAt != nil {
		code := 0
		if contact.UnreachableCode != nil {
			code = *contact.UnreachableCode
		}
		return "", channelGone(fmt.Sprintf("Meta cannot deliver to this WhatsApp user (code %d) until they write again", code), nil)
	}
	to, recipient := addressing(contact, addr.Recipient)
	template := part.Kind == KindTemplate
	if !template && !contact.WindowOpen {
		if part.Index > 0 {
			// The template already stood in for the whole message.
			return "", o.setSentAs(ctx, tenantID, part.Key, sentAsSkipped)
		}
		template = true
	}
	return o.send(ctx, conn, addr, part, to, recipient, template)
}

// addressing picks how Meta is told the user: their phone number when known
// (Meta's preference), else their business-scoped user ID.
func addressing(c store.WhatsAppContact, key string) (to, recipient string) {
	switch {
	case c.WAID != "":
		return c.WAID, ""
	case key != "" && strings.Trim(key, "0123456789") == "":
		return key, "" // the key is a phone number (no BSUID known)
	}
	return "", key
}

func (o *WhatsAppOutlet) send(ctx context.Context, conn Connection, addr Address, part Part, to, recipient string, template bool) (string, error) {
	tenantID, number := conn.Row.TenantID, addr.PhoneNumberID
	msg := whatsapp.Outbound{To: to, Recipient: recipient, BizOpaque: part.Key}
	sentAs := sentAsText
	if template {
		if conn.Row.TemplateName == "" {
			return "", channelGone("the reply falls outside WhatsApp's 24-hour window and number "+number+
				" has no approved template to send instead (set one on the Channels page)", nil)
		}
		msg.Template, sentAs = &whatsapp.Template{Name: conn.Row.TemplateName, Language: conn.Row.TemplateLanguage}, sentAsTemplate
	} else {
		msg.Text = part.Text
		if part.Index == 0 {
			msg.ReplyTo = part.ReplyTo
		}
	}
	who := to + recipient
	if wait := o.pace.wait("number:"+number, "pair:"+number+":"+who); wait > 0 {
		return "", temporal.NewApplicationErrorWithOptions("whatsapp: waiting out a rate limit on number "+number, "WhatsAppRateLimited",
			temporal.ApplicationErrorOptions{NextRetryDelay: wait})
	}
	err := o.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.MarkOutboundPostStarted(ctx, part.Key, sentAs) })
	if err != nil {
		return "", fmt.Errorf("activities: whatsapp: record attempt: %w", err)
	}
	id, err := o.Client.Send(ctx, conn.Token, number, msg)
	if err == nil {
		return id, nil
	}
	if whatsapp.Answered(err) {
		// Meta refused it: not sent, so a retry need not wait for a status.
		if rerr := o.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.MarkOutboundRefused(ctx, part.Key) }); rerr != nil {
			return "", fmt.Errorf("activities: whatsapp: record refusal: %w (after %w)", rerr, err)
		}
	}
	attempt := 1
	if activity.IsActivity(ctx) {
		attempt = int(activity.GetInfo(ctx).Attempt)
	}
	userKey := addr.Recipient
	switch code := whatsapp.Code(err); {
	case whatsapp.IsTokenInvalid(err):
		o.tokenRefused(ctx, conn, err)
		return "", channelGone("Meta refused the access token of number "+number+"; connect it again with a new token", err)
	case code == whatsapp.CodeReengagement && !template:
		if cerr := o.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.CloseWhatsAppWindow(ctx, number, userKey) }); cerr != nil {
			return "", fmt.Errorf("activities: whatsapp: close window: %w", cerr)
		}
		if part.Index > 0 {
			return "", o.setSentAs(ctx, tenantID, part.Key, sentAsSkipped)
		}
		o.Logger.InfoContext(ctx, "free-form reply refused outside the 24-hour window; sending the template", "key", part.Key)
		return o.send(ctx, conn, addr, part, to, recipient, true)
	case code == whatsapp.CodeUndeliverable:
		if merr := o.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
			return tx.MarkWhatsAppUnreachable(ctx, number, userKey, code)
		}); merr != nil {
			return "", fmt.Errorf("activities: whatsapp: mark unreachable: %w", merr)
		}
		return "", channelGone("Meta cannot deliver to this WhatsApp user (131026: no WhatsApp, an old app, or they blocked the number)", err)
	case whatsapp.IsRateLimited(err):
		delay := whatsapp.RetryDelay(err, attempt)
		if code == whatsapp.CodePairRate {
			o.pace.pause("pair:"+number+":"+who, delay)
		} else {
			o.pace.pause("number:"+number, delay)
		}
		return "", temporal.NewApplicationErrorWithOptions(fmt.Sprintf("whatsapp: rate limited (%d); retrying in %s", code, delay),
			"WhatsAppRateLimited", temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: delay})
	case whatsapp.IsTransient(err):
		return "", fmt.Errorf("activities: whatsapp: send: %w", err)
	}
	return "", channelGone("Meta refused the message (code "+strconv.Itoa(whatsapp.Code(err))+")", err)
}

func (o *WhatsAppOutlet) setSentAs(ctx context.Context, tenantID uuid.UUID, key, sentAs string) error {
	err := o.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.SetOutboundSentAs(ctx, key, sentAs) })
	if err != nil {
		return fmt.Errorf("activities: whatsapp: record part: %w", err)
	}
	return nil
}

// Find reports whether a part an earlier attempt may have sent went out
// (see the type's comment).
func (o *WhatsAppOutlet) Find(ctx context.Context, conn Connection, _ Address, key string) (string, bool, error) {
	var a store.OutboundAttempt
	err := o.Store.WithTenant(ctx, conn.Row.TenantID, func(tx *store.Tx) error {
		var err error
		a, err = tx.GetOutboundAttempt(ctx, key)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("activities: whatsapp: find: %w", err)
	}
	switch {
	case a.ExternalID != "":
		return a.ExternalID, true, nil // a status webhook named it
	case a.PostStartedAt == nil:
		return "", false, nil // never attempted (or skipped)
	case a.RefusedAt != nil && !a.RefusedAt.Before(*a.PostStartedAt):
		return "", false, nil // Meta refused the last attempt
	}
	if waited := a.Now.Sub(*a.PostStartedAt); waited < o.grace() {
		delay := min(o.grace()-waited, 5*time.Second)
		return "", false, temporal.NewApplicationErrorWithOptions(
			"whatsapp: an earlier attempt's answer was lost; waiting for Meta's status of it before sending again",
			ErrWhatsAppStatusPending, temporal.ApplicationErrorOptions{NextRetryDelay: delay})
	}
	o.Logger.WarnContext(ctx, "no status from Meta for an earlier attempt whose answer was lost; sending again",
		"key", key, "waited", a.Now.Sub(*a.PostStartedAt).String())
	return "", false, nil
}

// SentTemplate reports whether the part keyed key went out as the approved
// template instead of its text.
func (o *WhatsAppOutlet) SentTemplate(ctx context.Context, conn Connection, key string) (bool, error) {
	var a store.OutboundAttempt
	err := o.Store.WithTenant(ctx, conn.Row.TenantID, func(tx *store.Tx) error {
		var err error
		a, err = tx.GetOutboundAttempt(ctx, key)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("activities: whatsapp: sent as: %w", err)
	}
	return a.SentAs == sentAsTemplate, nil
}

// tokenRefused marks the connection as needing a new token and tells the
// operator — an audit event and an email to the tenant's admins — once.
func (o *WhatsAppOutlet) tokenRefused(ctx context.Context, conn Connection, cause error) {
	var admins []store.User
	var first bool
	var tenantName string
	err := o.Store.WithTenant(ctx, conn.Row.TenantID, func(tx *store.Tx) error {
		var err error
		if first, err = tx.MarkChannelTokenError(ctx, conn.Row.ID, conn.Row.Secret, cause.Error()); err != nil || !first {
			return err
		}
		if err := tx.AppendAudit(ctx, store.AuditEvent{Actor: "system", Action: "channel.token_invalid", TargetType: "channel",
			TargetID: conn.Row.ID.String(), Data: map[string]any{"kind": conn.Row.Kind, "external_id": conn.Row.ExternalID,
				"code": whatsapp.Code(cause), "error": cause.Error()}}); err != nil {
			return err
		}
		t, err := tx.GetTenant(ctx, conn.Row.TenantID)
		if err != nil {
			return err
		}
		tenantName = t.Name
		users, err := tx.ListUsers(ctx)
		for _, u := range users {
			if u.Role == store.RoleCustomerAdmin && u.DisabledAt == nil {
				admins = append(admins, u)
			}
		}
		return err
	})
	if err != nil {
		o.Logger.ErrorContext(ctx, "could not record a refused WhatsApp token", "err", err, "channel_id", conn.Row.ID.String())
		return
	}
	if !first {
		return
	}
	o.Logger.WarnContext(ctx, "WhatsApp access token refused; the connection needs a new token", "channel_id", conn.Row.ID.String(),
		"phone_number_id", conn.Row.ExternalID, "admins", len(admins))
	if o.Mail == nil {
		return
	}
	link := strings.TrimRight(o.PublicURL, "/") + "/t/" + conn.Row.TenantID.String() + "/channels"
	name := conn.Row.DisplayName
	if name == "" {
		name = conn.Row.ExternalID
	}
	for _, u := range admins {
		m := mail.Message{To: u.Email, Link: link,
			Subject: "Action needed: reconnect WhatsApp number " + name + " on Konstruct",
			Text: "Hello,\n\nMeta refused the access token Konstruct uses for the WhatsApp number " + name + " of " + tenantName +
				" (it expired or was revoked), so your agent cannot answer on it.\n\n" +
				"Generate a new token in Meta Business Suite (a system user token with whatsapp_business_messaging) and connect the number again on the Channels page:\n\n" +
				link + "\n\nMessages keep arriving and are recorded meanwhile.\n\n— Konstruct\n"}
		if err := o.Mail.Send(ctx, m); err != nil {
			o.Logger.ErrorContext(ctx, "could not email an admin about the refused WhatsApp token", "err", err, "user_id", u.ID.String())
		}
	}
}

func channelGone(msg string, cause error) error {
	return temporal.NewNonRetryableApplicationError("whatsapp: "+msg, ErrChannelGone, cause)
}

// pacer holds back sends from a number (or to one user of it) that Meta
// asked to slow down, within this worker, until the pause ends.
type pacer struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (p *pacer) wait(keys ...string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var longest time.Duration
	now := time.Now()
	for _, k := range keys {
		if d := p.until[k].Sub(now); d > longest {
			longest = d
		}
	}
	return longest
}

func (p *pacer) pause(key string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.until == nil || len(p.until) > 10_000 {
		kept := map[string]time.Time{}
		for k, t := range p.until {
			if t.After(now) {
				kept[k] = t
			}
		}
		p.until = kept
	}
	if t := now.Add(d); t.After(p.until[key]) {
		p.until[key] = t
	}
}
