package escalation

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
)

// MaxReplyChars bounds a staff reply (WhatsApp's text limit; Slack splits).
const MaxReplyChars = 4096

// Service is what the REST API and the portal do with escalations: read
// them, record staff replies and resolutions for the conversation workflow
// (through the inbox, so nothing waits on Temporal in a request and nothing
// is lost while it is down), and keep the tenant's support settings.
type Service struct {
	Store *store.Store
	Wake  func() // tells the inbox dispatcher an event is waiting (optional)
	Now   func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound(what).Wrap(err)
	}
	return err
}

// List returns the tenant's escalations in the given states (all when none)
// and the counts per state.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID, states []string, limit int) ([]store.Handoff, store.HandoffCounts, error) {
	for _, st := range states {
		if !slices.Contains([]string{store.EscalationWaiting, store.EscalationHuman, store.EscalationResolved, store.EscalationHandedBack, "open"}, st) {
			return nil, store.HandoffCounts{}, apperr.Invalid("state", fmt.Sprintf("unknown state %q: use waiting_for_human, human, resolved, handed_back or open", st))
		}
	}
	if i := slices.Index(states, "open"); i >= 0 {
		states = append(slices.Delete(slices.Clone(states), i, i+1), store.EscalationWaiting, store.EscalationHuman)
	}
	var list []store.Handoff
	var counts store.HandoffCounts
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		if list, err = tx.ListHandoffs(ctx, store.HandoffFilter{States: states, Limit: limit}); err != nil {
			return err
		}
		counts, err = tx.CountHandoffs(ctx)
		return err
	})
	return list, counts, err
}

// Detail is one escalation with its conversation and transcript.
type Detail struct {
	Escalation   store.Handoff
	Conversation store.Conversation
	Agent        *store.Agent
	Messages     []store.Message
}

// Get returns an escalation with its conversation's messages.
func (s *Service) Get(ctx context.Context, tenantID, id uuid.UUID) (Detail, error) {
	var d Detail
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if d.Escalation, err = tx.GetHandoff(ctx, id); err != nil {
			return notFound(err, "escalation")
		}
		if d.Conversation, err = tx.GetConversation(ctx, d.Escalation.ConversationID); err != nil {
			return err
		}
		if a, err := tx.GetAgent(ctx, d.Escalation.AgentID); err == nil {
			d.Agent = &a
		}
		d.Messages, err = tx.ListMessages(ctx, d.Escalation.ConversationID)
		OrderTurns(d.Messages)
		return err
	})
	return d, err
}

// OrderTurns puts each turn's user message first: a turn's user message and
// reply are often recorded in one transaction, so they share created_at and
// the store's order between them is arbitrary.
func OrderTurns(msgs []store.Message) {
	slices.SortStableFunc(msgs, func(a, b store.Message) int {
		if a.Turn != b.Turn {
			return a.Turn - b.Turn
		}
		switch {
		case a.Role == "user" && b.Role != "user":
			return -1
		case b.Role == "user" && a.Role != "user":
			return 1
		}
		return 0
	})
}

// Queued is a staff action recorded for its conversation.
type Queued struct {
	EventID    string
	Escalation store.Handoff
	Action     StaffAction
}

// Staff names who acts: the portal's or the API's signed-in user.
func Staff(p authz.Principal) (name, ref string) {
	name = strings.TrimSpace(p.Name)
	if name == "" {
		name, _, _ = strings.Cut(p.Email, "@")
	}
	return name, "user:" + p.UserID.String()
}

// Reply records a staff reply for the end user.
func (s *Service) Reply(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID, source, text string) (Queued, error) {
	text = strings.TrimSpace(text)
	switch n := utf8.RuneCountInString(text); {
	case !utf8.ValidString(text) || strings.ContainsRune(text, 0):
		return Queued{}, apperr.Invalid("text", "contains invalid characters")
	case n == 0:
		return Queued{}, apperr.Invalid("text", "is required: write the message for the user")
	case n > MaxReplyChars:
		return Queued{}, apperr.Invalid("text", fmt.Sprintf("must be at most %d characters (got %d)", MaxReplyChars, n))
	}
	name, ref := Staff(p)
	return s.act(ctx, tenantID, id, StaffAction{Kind: ActionReply, Text: text, Author: name, AuthorRef: ref, Source: source})
}

// Resolve records the end of an escalation: the conversation goes back to
// the agent, which follows up with the user.
func (s *Service) Resolve(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID, source string) (Queued, error) {
	name, ref := Staff(p)
	return s.act(ctx, tenantID, id, StaffAction{Kind: ActionResolve, Author: name, AuthorRef: ref, Source: source})
}

func (s *Service) act(ctx context.Context, tenantID, id uuid.UUID, a StaffAction) (Queued, error) {
	var h store.Handoff
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		h, err = tx.GetHandoff(ctx, id)
		return notFound(err, "escalation")
	})
	if err != nil {
		return Queued{}, err
	}
	if !store.EscalationOpen(h.State) {
		return Queued{}, apperr.Conflict("the escalation is already " + strings.ReplaceAll(h.State, "_", " ") +
			": the conversation is back with the agent")
	}
	a.EventID = a.Source + ":" + uuid.NewString()
	a.EscalationID = h.ID.String()
	a.ReceivedAt = s.now().UTC()
	if _, err := Record(ctx, s.Store, h, a); err != nil {
		return Queued{}, err
	}
	if s.Wake != nil {
		s.Wake()
	}
	return Queued{EventID: a.EventID, Escalation: h, Action: a}, nil
}

// SlackReply records a message a staff member wrote in a handoff's Slack
// thread. found is false when the thread is no escalation's (an ordinary
// thread of the workspace); a reply to an escalation that has ended is
// found but not recorded.
func (s *Service) SlackReply(ctx context.Context, tenantID uuid.UUID, teamID, channelID, threadTS, ts, userID, text string) (found, recorded bool, err error) {
	var h store.Handoff
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		h, err = tx.HandoffByThread(ctx, channelID, threadTS)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	text = strings.TrimSpace(text)
	if !store.EscalationOpen(h.State) || text == "" {
		return true, false, nil
	}
	if n := utf8.RuneCountInString(text); n > MaxReplyChars {
		text = string([]rune(text)[:MaxReplyChars])
	}
	// The message's ts names it: an app_mention and a message event of the
	// same reply are one event.
	a := StaffAction{EventID: "slack:" + teamID + ":" + channelID + ":" + ts, EscalationID: h.ID.String(), Kind: ActionReply,
		Text: text, AuthorRef: "slack:" + teamID + ":" + userID, Source: SourceSlack, ReceivedAt: s.now().UTC()}
	recorded, err = Record(ctx, s.Store, h, a)
	if err == nil && recorded && s.Wake != nil {
		s.Wake()
	}
	return true, recorded, err
}

// SlackButton records a click on a handoff message's button (Take it,
// Resolve). actionTS identifies the click.
func (s *Service) SlackButton(ctx context.Context, tenantID uuid.UUID, escalationID, kind, teamID, userID, userName, actionTS string) (bool, error) {
	id, err := uuid.Parse(escalationID)
	if err != nil {
		return false, apperr.BadRequest("malformed_action", "the button names no escalation").Wrap(err)
	}
	var h store.Handoff
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		h, err = tx.GetHandoff(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // another tenant's, or deleted: nothing to do here
	}
	if err != nil {
		return false, err
	}
	if !store.EscalationOpen(h.State) {
		return false, nil
	}
	a := StaffAction{EventID: "slack-action:" + teamID + ":" + actionTS + ":" + kind, EscalationID: h.ID.String(), Kind: kind,
		Author: userName, AuthorRef: "slack:" + teamID + ":" + userID, Source: SourceSlack, ReceivedAt: s.now().UTC()}
	recorded, err := Record(ctx, s.Store, h, a)
	if err == nil && recorded && s.Wake != nil {
		s.Wake()
	}
	return recorded, err
}

// SettingsInput is a change of the tenant's support settings.
type SettingsInput struct {
	SlackTeamID    string
	SlackChannelID string
	FirstResponse  time.Duration
	HandBack       time.Duration
}

// Bounds of the SLA (the database checks the same).
const (
	MinSLA              = 5 * time.Second
	MaxFirstResponse    = 7 * 24 * time.Hour
	MaxHandBack         = 30 * 24 * time.Hour
	settingsAuditAction = "support.update"
)

var slackChannelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,20}$`)

// Settings returns the tenant's support settings (defaults when unsaved).
func (s *Service) Settings(ctx context.Context, tenantID uuid.UUID) (store.SupportSettings, error) {
	var out store.SupportSettings
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		out, err = tx.GetSupportSettings(ctx)
		return err
	})
	return out, err
}

// UpdateSettings validates and stores the tenant's support settings. The
// workspace must be one the tenant connected (the bot posts there with its
// token); the channel is a Slack channel ID (C… or G…) the bot was invited to.
func (s *Service) UpdateSettings(ctx context.Context, actor authz.Principal, tenantID uuid.UUID, in SettingsInput) (store.SupportSettings, error) {
	in.SlackTeamID = strings.TrimSpace(in.SlackTeamID)
	in.SlackChannelID = strings.TrimSpace(in.SlackChannelID)
	var errs apperr.Fields
	if in.SlackChannelID != "" && !slackChannelID.MatchString(in.SlackChannelID) {
		errs.Add("slack_channel_id", "must be a Slack channel ID such as C0123ABCD (channel details → About, at the bottom)")
	}
	if in.FirstResponse < MinSLA || in.FirstResponse > MaxFirstResponse {
		errs.Add("first_response_seconds", fmt.Sprintf("must be from %d seconds to %d days", int(MinSLA.Seconds()), int(MaxFirstResponse.Hours()/24)))
	}
	if in.HandBack < MinSLA || in.HandBack > MaxHandBack {
		errs.Add("hand_back_seconds", fmt.Sprintf("must be from %d seconds to %d days", int(MinSLA.Seconds()), int(MaxHandBack.Hours()/24)))
	} else if in.HandBack <= in.FirstResponse {
		errs.Add("hand_back_seconds", "must be longer than the first-response time: staff are paged again first, then the agent takes over")
	}
	in.FirstResponse = in.FirstResponse.Truncate(time.Second)
	in.HandBack = in.HandBack.Truncate(time.Second)
	var out store.SupportSettings
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		if in.SlackTeamID != "" {
			conns, err := tx.ListChannels(ctx)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(conns, func(c store.ChannelConnection) bool {
				return c.Kind == store.ChannelSlack && c.ExternalID == in.SlackTeamID
			}) {
				errs.Add("slack_team_id", "is not a Slack workspace connected to this organisation: connect it on the Channels page first")
			}
		}
		if err := errs.Err(); err != nil {
			return err
		}
		before, err := tx.GetSupportSettings(ctx)
		if err != nil {
			return err
		}
		if out, err = tx.PutSupportSettings(ctx, store.SupportSettings{SlackTeamID: in.SlackTeamID, SlackChannelID: in.SlackChannelID,
			FirstResponse: in.FirstResponse, HandBack: in.HandBack}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: accounts.Actor(actor), Action: settingsAuditAction,
			TargetType: "tenant", TargetID: tenantID.String(), Data: map[string]any{
				"slack_team_id": out.SlackTeamID, "slack_channel_id": out.SlackChannelID,
				"first_response_seconds": int(out.FirstResponse.Seconds()), "hand_back_seconds": int(out.HandBack.Seconds()),
				"before": map[string]any{"slack_team_id": before.SlackTeamID, "slack_channel_id": before.SlackChannelID,
					"first_response_seconds": int(before.FirstResponse.Seconds()), "hand_back_seconds": int(before.HandBack.Seconds())}}})
	})
	return out, err
}

// SLA statuses of an escalation's first response.
const (
	SLAWaiting = "waiting" // nobody answered yet; still within the first-response time
	SLAOverdue = "overdue" // nobody answered yet; past it (staff were paged again)
	SLAMet     = "met"     // a person answered (or it ended) within it
	SLAMissed  = "missed"  // the first answer came late, or never
)

// SLAStatus says how an escalation stands against its first-response time.
func SLAStatus(h store.Handoff, now time.Time) string {
	due := h.FirstResponseDueAt
	answered := h.FirstResponseAt
	if answered == nil && h.State == store.EscalationResolved {
		answered = h.EndedAt // resolved without a written reply: people handled it
	}
	switch {
	case answered != nil && (due == nil || !answered.After(*due)):
		return SLAMet
	case answered != nil || h.EndedAt != nil:
		return SLAMissed
	case due != nil && now.After(*due):
		return SLAOverdue
	}
	return SLAWaiting
}
