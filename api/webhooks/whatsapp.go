package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/ratelimit"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/workflows"
)

// WhatsApp receives the Cloud API's messages webhook. A delivery is verified
// (X-Hub-Signature-256 over the raw body) before it is parsed; then every
// change of the batch is handled on its own: its phone_number_id names the
// connection (tenant and agent), each message is recorded in the inbox
// (deduped by wamid, in the transaction that also records when the user last
// wrote) for the dispatcher to hand to its conversation, and each status is
// recorded on the message it is about. The answer is 200 once all of it is
// durable — also for anything merely odd in a signed payload (an unknown
// number, a message type nobody handles), since Meta retries any other
// answer — and 503 only when something could not be recorded, so that Meta
// delivers it again (what was recorded dedupes).
type WhatsApp struct {
	AppSecret            string
	VerifyToken          string
	Routes               *Routes
	Store                *store.Store
	Limiter              *ratelimit.Limiter
	Wake                 func() // tells the dispatcher an event is waiting (optional)
	Settings             workflows.Settings
	TenantRatePerMinute  int // defaults for tenants without their own
	ChannelRatePerMinute int // per end user of a number
	Metrics              *Metrics
	Logger               *slog.Logger
	Now                  func() time.Time
}

// Mount registers GET (Meta's handshake) and POST /webhooks/whatsapp.
func (h *WhatsApp) Mount(s *api.Server) {
	s.Registry.Handle(s.Public, http.MethodGet, "/webhooks/whatsapp", authz.Public, nil, h.handshake)
	s.Registry.Handle(s.Public, http.MethodPost, "/webhooks/whatsapp", authz.Public, nil, h.events)
}

// Outcomes of WhatsApp items (konstruct_webhook_requests_total{source="whatsapp"}).
const (
	OutcomeUnknownNumber  = "unknown_number"
	OutcomeStatus         = "status"
	OutcomeStatusUnknown  = "status_unknown_message"
	OutcomeHandshake      = "handshake"
	OutcomeHandshakeFails = "handshake_refused"
)

func (h *WhatsApp) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// handshake answers Meta's verification of the callback URL: the raw
// hub.challenge when the verify token matches, 403 otherwise.
func (h *WhatsApp) handshake(c *gin.Context) {
	challenge, ok := whatsapp.Handshake(c.Request.URL.Query(), h.VerifyToken)
	if !ok {
		h.Metrics.outcome("whatsapp", OutcomeHandshakeFails)
		reason := "hub.mode is not subscribe or hub.verify_token does not match"
		if h.VerifyToken == "" {
			reason = "KONSTRUCT_WHATSAPP_VERIFY_TOKEN is not set"
		}
		h.Logger.WarnContext(c.Request.Context(), "whatsapp webhook handshake refused", "reason", reason, "ip", c.ClientIP())
		apiutil.Error(c, apperr.Forbidden("the verify token does not match this server's"))
		return
	}
	h.Metrics.outcome("whatsapp", OutcomeHandshake)
	h.recordVerification(c.Request.Context())
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(challenge))
}

// recordVerification records, durably, that Meta verified the webhook with
// the configured token, for the setup wizard's "Check". Meta's verification
// matters more than the record: a failure is logged and the challenge is
// answered all the same.
func (h *WhatsApp) recordVerification(ctx context.Context) {
	if h.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := h.Store.RecordWhatsAppVerification(ctx, whatsapp.VerifyTokenSHA256(h.VerifyToken)); err != nil {
		h.Logger.ErrorContext(ctx, "could not record the whatsapp webhook verification; answering Meta anyway", "err", err)
		return
	}
	h.Logger.InfoContext(ctx, "whatsapp webhook verified by the handshake")
}

func (h *WhatsApp) events(c *gin.Context) {
	start := time.Now()
	defer func() { h.Metrics.acked("whatsapp", time.Since(start).Seconds()) }()
	ctx := c.Request.Context()

	body, ok := readBody(c, h.Metrics, "whatsapp", "the webhook")
	if !ok {
		return
	}
	// Verify before parsing: nothing in an unsigned body is looked at.
	if err := whatsapp.Verify(c.Request.Header, body, h.AppSecret); err != nil {
		if errors.Is(err, whatsapp.ErrNoAppSecret) {
			h.Metrics.outcome("whatsapp", OutcomeNotConfigured)
			apiutil.Error(c, apperr.Unavailable("WhatsApp webhooks are not configured on this server (set KONSTRUCT_WHATSAPP_APP_SECRET)"))
			return
		}
		h.Metrics.outcome("whatsapp", OutcomeBadSignature)
		h.Logger.WarnContext(ctx, "whatsapp webhook refused", "reason", err.Error(), "ip", c.ClientIP())
		apiutil.Error(c, apperr.Unauthorized("the request is not signed by Meta: "+signatureReason(err)).Wrap(err))
		return
	}
	w, err := whatsapp.ParseWebhook(body)
	if err != nil {
		h.Metrics.outcome("whatsapp", OutcomeMalformed)
		h.Logger.WarnContext(ctx, "signed whatsapp webhook is not JSON", "err", err)
		apiutil.Error(c, apperr.BadRequest("malformed_event", "the body is not a WhatsApp webhook payload").Wrap(err))
		return
	}
	if w.Object != whatsapp.ObjectWABA {
		h.Metrics.outcome("whatsapp", OutcomeIgnored)
		h.Logger.InfoContext(ctx, "whatsapp webhook for another object; ignoring", "object", w.Object)
		c.Status(http.StatusOK)
		return
	}
	var failed error
	for _, ch := range w.Changes {
		if err := h.change(ctx, ch); err != nil {
			failed = errors.Join(failed, err)
		}
	}
	if failed != nil {
		h.Metrics.outcome("whatsapp", OutcomeUnavailable)
		h.Logger.ErrorContext(ctx, "could not record a whatsapp webhook; asking Meta to retry", "err", failed)
		c.Header("Retry-After", "1")
		apiutil.Error(c, apperr.Unavailable("the webhook could not be recorded yet; Meta will retry").Wrap(failed))
		return
	}
	c.Status(http.StatusOK)
}

func signatureReason(err error) string {
	switch {
	case errors.Is(err, whatsapp.ErrMissingSignature):
		return "missing X-Hub-Signature-256"
	case errors.Is(err, whatsapp.ErrMalformedSignature):
		return "malformed X-Hub-Signature-256"
	}
	return "signature mismatch"
}

// change handles one entry's change. It returns an error only when something
// could not be recorded (the delivery must come again).
func (h *WhatsApp) change(ctx context.Context, ch whatsapp.Change) error {
	ctx = logging.With(ctx, slog.String("whatsapp_number", ch.PhoneNumberID), slog.String("waba_id", ch.WABAID))
	if ch.Field != whatsapp.FieldMessages {
		h.Metrics.outcome("whatsapp", OutcomeIgnored)
		h.Logger.InfoContext(ctx, "whatsapp webhook field not handled; ignoring", "field", ch.Field)
		return nil
	}
	if len(ch.Errors) > 0 {
		e := ch.Errors[0]
		h.Logger.WarnContext(ctx, "whatsapp reported an error for the number", "code", e.Code, "title", e.Title, "details", e.Details)
	}
	if len(ch.Messages) == 0 && len(ch.Statuses) == 0 {
		return nil
	}
	route, found, err := h.Routes.Lookup(ctx, store.ChannelWhatsApp, ch.PhoneNumberID)
	if err != nil {
		return err
	}
	if !found {
		h.Metrics.outcome("whatsapp", OutcomeUnknownNumber)
		h.Logger.InfoContext(ctx, "whatsapp webhook for a number no tenant has connected; acknowledging and ignoring",
			"messages", len(ch.Messages), "statuses", len(ch.Statuses))
		return nil
	}
	ctx = logging.With(ctx, slog.String("tenant_id", route.TenantID.String()), slog.String("agent_id", route.AgentID.String()))
	var errs error
	for _, st := range ch.Statuses {
		if err := h.status(ctx, route, ch, st); err != nil {
			errs = errors.Join(errs, err)
		}
	}
	if !route.TenantActive {
		if len(ch.Messages) > 0 {
			h.Metrics.outcome("whatsapp", OutcomeSuspended)
			h.Logger.InfoContext(ctx, "whatsapp messages for a suspended tenant or disabled connection; ignoring", "messages", len(ch.Messages))
		}
		return errs
	}
	for _, m := range ch.Messages {
		outcome, err := h.message(ctx, route, ch, m)
		h.Metrics.outcome("whatsapp", outcome)
		if err != nil {
			errs = errors.Join(errs, err)
		}
	}
	return errs
}

// message records one inbound message for its conversation.
func (h *WhatsApp) message(ctx context.Context, route Route, ch whatsapp.Change, m whatsapp.Message) (string, error) {
	ctx = logging.With(ctx, slog.String("wamid", m.ID), slog.String("message_type", m.Type))
	if m.Kind == whatsapp.KindIgnored {
		h.Logger.InfoContext(ctx, "whatsapp message not for a conversation; ignoring", "reason", m.IgnoredReason)
		return OutcomeIgnored, nil
	}
	userKey := m.UserKey()
	in := workflows.ConversationInput{
		TenantID: route.TenantID.String(), AgentID: route.AgentID.String(), Channel: store.ChannelWhatsApp,
		ExternalKey: workflows.WhatsAppKey(ch.PhoneNumberID, userKey),
		Address:     activities.Address{PhoneNumberID: ch.PhoneNumberID, Recipient: userKey},
		UserRef:     userKey, Settings: h.Settings,
	}
	// When the user wrote: the 24-hour window runs from there. A time in the
	// future (a clock gone wrong) would hold the window open: now instead.
	sent := m.Timestamp
	if now := h.now(); sent.IsZero() || sent.After(now) {
		sent = now
	}
	inbound := workflows.Inbound{EventID: m.ID, UserID: userKey, Text: m.Text, TS: m.ID, ReceivedAt: h.now(),
		RecordOnly: m.Kind == whatsapp.KindReaction}
	if m.Kind == whatsapp.KindUnsupported {
		inbound.Unsupported = m.Unsupported
	}
	if md := m.Media; md != nil {
		inbound.Media = []activities.MediaRef{{Source: store.ChannelWhatsApp, ID: md.ID, MimeType: md.MimeType, SHA256: md.SHA256,
			Name: md.Filename, Caption: md.Caption}}
		// The text is the caption alone: the conversation marks the file
		// itself once it is fetched ("[image: …]", or why it was not read).
		// The parser's note ("[image]") would otherwise be a second marker,
		// and make a file alone that cannot be read a question for the
		// model instead of a note to the user, as on Slack.
		inbound.Text = md.Caption
	}

	outcome := OutcomeAccepted
	if !inbound.RecordOnly {
		over, err := overLimit(ctx, h.Limiter, route, h.TenantRatePerMinute, h.ChannelRatePerMinute, "whatsapp:"+ch.PhoneNumberID+":"+userKey)
		if err != nil {
			return OutcomeUnavailable, err
		}
		if over != nil {
			inbound.OverLimit = over
			outcome = OutcomeRateLimited
			h.Metrics.limited(store.ChannelWhatsApp, over.Scope)
			h.Logger.InfoContext(ctx, "whatsapp message over the rate limit", "scope", over.Scope, "per_minute", over.PerMinute)
		}
	}
	payload, err := json.Marshal(ConversationEvent{Input: in, Message: inbound})
	if err != nil {
		return OutcomeUnavailable, fmt.Errorf("webhooks: encode whatsapp event: %w", err)
	}
	recorded, err := h.Store.RecordWhatsAppInbound(ctx, route.TenantID, store.InboxEvent{Source: store.SourceWhatsApp, EventID: m.ID,
		OrderingKey: workflows.ConversationID(in.TenantID, in.Channel, in.ExternalKey), Payload: payload},
		store.WhatsAppContact{PhoneNumberID: ch.PhoneNumberID, UserKey: userKey, WAID: m.WAID, UserID: m.UserID,
			ProfileName: m.ProfileName, LastInboundAt: sent})
	if err != nil {
		return OutcomeUnavailable, err
	}
	if !recorded {
		// Meta delivered the same message again (it retries until it sees a 200).
		return OutcomeDuplicate, nil
	}
	if h.Wake != nil {
		h.Wake()
	}
	return outcome, nil
}

// status records a status on the message it is about. A failure the
// conversation must act on (131047: the template goes instead) is recorded
// in the inbox for its workflow — never acted on here — deduped by the
// failed message's wamid; 131026 marks the user unreachable.
func (h *WhatsApp) status(ctx context.Context, route Route, ch whatsapp.Change, st whatsapp.Status) error {
	ctx = logging.With(ctx, slog.String("wamid", st.ID), slog.String("status", st.Status))
	rank := whatsapp.StatusRank(st.Status)
	if rank == 0 || st.ID == "" {
		h.Logger.InfoContext(ctx, "whatsapp status not tracked; ignoring")
		h.Metrics.outcome("whatsapp", OutcomeIgnored)
		return nil
	}
	rec := store.WhatsAppStatus{WAMID: st.ID, Key: st.BizOpaque, Status: st.Status, Rank: rank, At: st.Timestamp, Pricing: st.Pricing}
	if rec.At.IsZero() {
		rec.At = h.now()
	}
	if st.Error != nil {
		code := st.Error.Code
		rec.ErrorCode, rec.ErrorTitle = &code, st.Error.Title
		if rec.ErrorTitle == "" {
			rec.ErrorTitle = st.Error.Message
		}
	}
	handed := false // a failure was handed to the conversation
	err := h.Store.WithTenant(ctx, route.TenantID, func(tx *store.Tx) error {
		handed = false
		ref, found, err := tx.ApplyWhatsAppStatus(ctx, rec)
		if err != nil {
			return err
		}
		if !found {
			h.Metrics.outcome("whatsapp", OutcomeStatusUnknown)
			h.Logger.InfoContext(ctx, "whatsapp status for a message Konstruct did not send; ignoring")
			return nil
		}
		h.Metrics.outcome("whatsapp", OutcomeStatus)
		if st.Status != whatsapp.StatusFailed || st.Error == nil || !ref.Applied || ref.ConversationID == nil {
			return nil
		}
		h.Logger.WarnContext(ctx, "whatsapp message failed after it was sent", "code", st.Error.Code, "title", st.Error.Title,
			"details", st.Error.Details, "key", ref.Key)
		cv, err := tx.GetConversation(ctx, *ref.ConversationID)
		if err != nil {
			return err
		}
		switch st.Error.Code {
		case whatsapp.CodeUndeliverable:
			return tx.MarkWhatsAppUnreachable(ctx, ch.PhoneNumberID, cv.UserRef, st.Error.Code)
		case whatsapp.CodeReengagement:
			if err := tx.CloseWhatsAppWindow(ctx, ch.PhoneNumberID, cv.UserRef); err != nil {
				return err
			}
			handed, err = h.recordFailure(ctx, tx, route, ch, cv, ref, st)
			return err
		}
		return nil
	})
	if err == nil && handed && h.Wake != nil {
		h.Wake()
	}
	return err
}

// recordFailure hands a failed message to its conversation through the
// inbox, in order with the user's messages.
func (h *WhatsApp) recordFailure(ctx context.Context, tx *store.Tx, route Route, ch whatsapp.Change, cv store.Conversation,
	ref store.OutboundRef, st whatsapp.Status) (bool, error) {
	_, turn, _, _, ok := activities.ParsePartKey(ref.Key)
	if !ok {
		h.Logger.WarnContext(ctx, "failed whatsapp message with an unreadable key; not acted on", "key", ref.Key)
		return false, nil
	}
	in := workflows.ConversationInput{
		TenantID: route.TenantID.String(), AgentID: cv.AgentID.String(), Channel: store.ChannelWhatsApp,
		ExternalKey: cv.ExternalKey,
		Address:     activities.Address{PhoneNumberID: ch.PhoneNumberID, Recipient: cv.UserRef},
		UserRef:     cv.UserRef, Settings: h.Settings,
	}
	msg := workflows.Inbound{EventID: "failed:" + st.ID, ReceivedAt: h.now(),
		DeliveryFailure: &activities.DeliveryFailure{WAMID: st.ID, Key: ref.Key, Turn: turn, Code: st.Error.Code, Title: st.Error.Title}}
	payload, err := json.Marshal(ConversationEvent{Input: in, Message: msg})
	if err != nil {
		return false, fmt.Errorf("webhooks: encode whatsapp failure: %w", err)
	}
	if cv.WorkflowID != workflows.ConversationID(in.TenantID, in.Channel, in.ExternalKey) {
		h.Logger.WarnContext(ctx, "failed whatsapp message of a conversation with an unexpected workflow ID; not acted on",
			"workflow_id", cv.WorkflowID)
		return false, nil
	}
	return tx.RecordInbound(ctx, store.InboxEvent{TenantID: route.TenantID, Source: store.SourceWhatsApp,
		EventID: msg.EventID, OrderingKey: cv.WorkflowID, Payload: payload})
}
