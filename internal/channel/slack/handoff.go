package slack

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"
)

// Action IDs of the handoff message's buttons; their value is the escalation ID.
const (
	ActionClaim   = "escalation_claim"
	ActionResolve = "escalation_resolve"
)

// Handoff is what a handoff message in the support channel shows: the
// context pack of an escalation.
type Handoff struct {
	EscalationID string
	Agent        string
	Reason       string
	UserRef      string // the end user, as their channel names them
	Channel      string // slack, whatsapp, ...
	Since        time.Time
	Summary      string
	ByModel      bool     // the summary is the model's (else the last messages)
	Tools        []string // "kb_search (2 calls: ok)"
	Sources      []string // "[Returns §1]"
	PortalURL    string
	WorkflowURL  string
	// Ended replaces the buttons once the escalation is over ("Resolved by Jane").
	Ended string
}

// Blocks are Block Kit blocks, as Outbound takes them.
type Blocks = []slackapi.Block

// sectionLimit is Slack's limit on a section's text (3000), with room.
const sectionLimit = 2900

// Escape makes text safe to show as mrkdwn: &, < and > as entities, so a
// user's words cannot mention @channel or forge a link.
func Escape(text string) string { return slackutilsx.EscapeMessage(text) }

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func mrkdwn(text string) *slackapi.TextBlockObject {
	return slackapi.NewTextBlockObject(slackapi.MarkdownType, text, false, false)
}

func plain(text string) *slackapi.TextBlockObject {
	return slackapi.NewTextBlockObject(slackapi.PlainTextType, text, true, false)
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return Escape(strings.Join(items, ", "))
}

// HandoffBlocks renders the handoff message: the fallback text (shown in
// notifications) and the Block Kit blocks, with Take it and Resolve buttons
// while the escalation is open.
func HandoffBlocks(h Handoff) (string, Blocks) {
	who := h.UserRef
	if who == "" {
		who = "A user"
	}
	text := fmt.Sprintf("%s handed a conversation to a person: %s", firstNonEmpty(h.Agent, "An agent"), cut(h.Reason, 200))
	since := h.Since.UTC().Format("2006-01-02 15:04 UTC")
	summaryLabel := "*Summary*"
	if !h.ByModel {
		summaryLabel = "*Last messages* (no summary: the model could not write one)"
	}
	blocks := []slackapi.Block{
		slackapi.NewHeaderBlock(plain(cut(":raising_hand: "+firstNonEmpty(h.Agent, "The agent")+" needs a person", 150))),
		slackapi.NewSectionBlock(mrkdwn(cut(fmt.Sprintf("*Reason:* %s\n*User:* %s on %s · waiting since <!date^%d^{date_short_pretty} {time}|%s>",
			Escape(h.Reason), Escape(who), Escape(firstNonEmpty(h.Channel, "?")), h.Since.Unix(), since), sectionLimit)), nil, nil),
		slackapi.NewSectionBlock(mrkdwn(cut(summaryLabel+"\n"+Escape(firstNonEmpty(h.Summary, "(none yet)")), sectionLimit)), nil, nil),
		slackapi.NewSectionBlock(mrkdwn(cut("*Tools tried:* "+listOrNone(h.Tools)+"\n*Knowledge used:* "+listOrNone(h.Sources), sectionLimit)), nil, nil),
	}
	var links []string
	if h.PortalURL != "" {
		links = append(links, "<"+h.PortalURL+"|Open in the portal> (full transcript)")
	}
	if h.WorkflowURL != "" {
		links = append(links, "<"+h.WorkflowURL+"|Workflow history>")
	}
	links = append(links, "Reply in this thread to answer the user.")
	blocks = append(blocks, slackapi.NewContextBlock("links", mrkdwn(strings.Join(links, " · "))))
	if h.Ended != "" {
		blocks = append(blocks, slackapi.NewContextBlock("ended", mrkdwn(Escape(h.Ended))))
		return text, blocks
	}
	claim := slackapi.NewButtonBlockElement(ActionClaim, h.EscalationID, plain("Take it"))
	resolve := slackapi.NewButtonBlockElement(ActionResolve, h.EscalationID, plain("Resolve")).WithStyle(slackapi.StylePrimary)
	blocks = append(blocks, slackapi.NewActionBlock("escalation", claim, resolve))
	return text, blocks
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
