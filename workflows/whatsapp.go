package workflows

import (
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
)

// changeWhatsApp names the WhatsApp handling of messages that are not a
// question for the model (workflow.GetVersion): a message type the agent
// cannot read gets a notice, a reaction is recorded without an answer, and a
// delivery failure Meta reported afterwards (131047) sends the approved
// template. Only such messages take the version's marker, so Slack
// conversations replay unchanged.
const changeWhatsApp = "whatsapp"

// whatsApp handles the message kinds above.
func (c *conversation) whatsApp(ctx workflow.Context, m Inbound) error {
	if f := m.DeliveryFailure; f != nil {
		return c.deliveryFailed(ctx, f)
	}
	c.s.Turn++
	user := &activities.UserMessage{Text: m.Text, Author: m.UserID, ExternalID: m.TS}
	if m.RecordOnly {
		// A reaction: recorded (Deliver with no text), not answered. It stays
		// out of the model's window too: it asks nothing.
		return c.deliver(ctx, m, activities.KindNotice, "", user, "", "")
	}
	return c.deliver(ctx, m, activities.KindNotice, unsupportedNotice(m.Unsupported), user, "", "")
}

func unsupportedNotice(what string) string {
	return "Sorry, I can't open " + what + " here: I can only read text messages, photos, documents, locations and button replies. " +
		"Could you type your message instead?"
}

// reengagementCode is Meta's error for a free-form message sent more than 24
// hours after the user's last message.
const reengagementCode = 131047

// deliveryFailed acts on a message Meta accepted and then reported failed.
// For 131047 the approved template goes instead, once per turn: its key is
// the failed part's turn and the kind "template", so a failure reported for
// several parts of the turn, or reported twice, sends one template.
func (c *conversation) deliveryFailed(ctx workflow.Context, f *activities.DeliveryFailure) error {
	logger := workflow.GetLogger(ctx)
	if f.Code != reengagementCode || f.Turn < 1 {
		logger.Warn("a sent message failed; nothing to do", "wamid", f.WAMID, "code", f.Code, "title", f.Title)
		return nil
	}
	logger.Info("reply refused outside the 24-hour window; sending the approved template", "wamid", f.WAMID, "turn", f.Turn)
	return c.deliverInput(ctx, activities.DeliverInput{TenantID: c.in.TenantID, ConversationID: c.s.ConversationID,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Channel: c.in.Channel, Address: c.in.Address,
		Turn: f.Turn, Kind: activities.KindTemplate, HeldKey: f.Key,
		Text: "[The reply could not be delivered: more than 24 hours had passed since the user's last message, so the approved template was sent instead.]"})
}

// changeHeldMessages names the change that shows a WhatsApp user, when they
// write again, the messages that reached them only as the approved template
// (workflow.GetVersion). The template asks them to answer to see the reply
// ("We have a reply to your question — answer this message to see it"); a
// staff reply, especially, would otherwise never reach them. Deliver reports
// such a message (DeliverOutput.Held, kept in State.Held); the version is
// asked only when one is held, so histories without any replay as before.
const changeHeldMessages = "held-messages"

// heldCap bounds State.Held: a user silent through more messages than this
// is shown the latest ones.
const heldCap = 10

// hold keeps a message the user has not seen, for showHeld.
func (c *conversation) hold(text string) {
	c.s.Held = append(c.s.Held, text)
	if len(c.s.Held) > heldCap {
		c.s.Held = c.s.Held[len(c.s.Held)-heldCap:]
	}
}

// showHeld sends the held messages, in one message quoting the user's (the
// window is open again: they just wrote), before their message is answered
// or relayed. Sent as the template again (their message was late), they
// stay held.
func (c *conversation) showHeld(ctx workflow.Context, m Inbound) error {
	held := c.s.Held
	c.s.Held = nil
	return c.deliver(ctx, m, activities.KindHeld, strings.Join(held, "\n\n"), nil, "", "")
}
