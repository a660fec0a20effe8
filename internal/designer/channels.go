package designer

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/store"
)

// SlackVerifier checks a bot token with Slack before a workspace is
// connected (*slack.Client does, with auth.test).
type SlackVerifier interface {
	AuthTest(ctx context.Context, token string) (slack.AuthInfo, error)
}

// ListChannels returns a tenant's channel connections, without their
// tokens; a tenant that does not exist is not found.
func (s *Service) ListChannels(ctx context.Context, tenantID uuid.UUID) ([]store.ChannelConnection, error) {
	var out []store.ChannelConnection
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		out, err = tx.ListChannels(ctx)
		return err
	})
	for i := range out {
		out[i].Secret = nil
	}
	return out, err
}

// SlackConnection connects a Slack workspace by hand: the team ID and the bot
// token from the Slack app's settings, and the ID of the agent the
// workspace's messages go to.
type SlackConnection struct {
	TeamID   string
	BotToken string
	AgentID  string
}

var slackTeamID = regexp.MustCompile(`^[TE][A-Z0-9]{2,30}$`)

// ConnectSlack connects a Slack workspace to one of the tenant's agents.
// Slack is asked (auth.test) to confirm the token belongs to the team before
// anything is stored; the token is stored sealed, bound to the tenant and
// the team. Connecting a team again re-points and re-keys it in place; a team
// another tenant connected first is a conflict. Invalid input comes back as
// apperr.Fields naming the bad fields; a Slack that cannot be reached, as
// unavailable. The connection returned carries no token.
func (s *Service) ConnectSlack(ctx context.Context, p authz.Principal, tenantID uuid.UUID, in SlackConnection) (store.ChannelConnection, error) {
	team, token := strings.TrimSpace(in.TeamID), strings.TrimSpace(in.BotToken)
	var errs apperr.Fields
	if !slackTeamID.MatchString(team) {
		errs.Add("team_id", "must be a Slack team ID such as T0123ABCD")
	}
	if !strings.HasPrefix(token, "xoxb-") || len(token) > 255 {
		errs.Add("bot_token", "must be a Slack bot token starting with xoxb-")
	}
	agentID, err := uuid.Parse(in.AgentID)
	if err != nil {
		errs.Add("agent_id", "must be the ID of one of this tenant's agents")
	}
	if err := errs.Err(); err != nil {
		return store.ChannelConnection{}, err
	}
	if s.Slack == nil || s.Secrets == nil {
		return store.ChannelConnection{}, errors.New("designer: connect Slack: no Slack client or secret box configured")
	}
	info, err := s.Slack.AuthTest(ctx, token)
	if err != nil {
		if slack.IsPermanent(err) {
			return store.ChannelConnection{}, apperr.Fields{
				apperr.Invalid("bot_token", "Slack refused this token ("+slack.ErrorCode(err)+")").Wrap(err)}
		}
		return store.ChannelConnection{}, apperr.Unavailable("Slack could not be reached to check the token; try again").Wrap(err)
	}
	if info.TeamID != team {
		return store.ChannelConnection{}, apperr.Fields{
			apperr.Invalid("team_id", "the bot token belongs to team "+info.TeamID+", not "+team)}
	}
	secret, err := s.Secrets.Seal([]byte(token), store.SecretAAD(tenantID, store.ChannelSlack, team))
	if err != nil {
		return store.ChannelConnection{}, err
	}
	var conn store.ChannelConnection
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		if _, err := tx.GetAgent(ctx, agentID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return apperr.Fields{apperr.Invalid("agent_id", "no such agent in this tenant").Wrap(err)}
			}
			return err
		}
		// Re-pointing a workspace this tenant already has takes no new place.
		if _, err := tx.GetChannelByExternalID(ctx, store.ChannelSlack, team); errors.Is(err, store.ErrNotFound) {
			if err := s.checkPlan(ctx, tx, tenantID, PlanChannels); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		conn, err = tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: agentID, Kind: store.ChannelSlack,
			ExternalID: team, DisplayName: info.Team, BotUserID: info.BotUserID, Secret: secret})
		if errors.Is(err, store.ErrConflict) {
			return apperr.Conflict("this Slack workspace is already connected to another Konstruct account").Wrap(err)
		}
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "channel.connect", TargetType: "channel",
			TargetID: conn.ID.String(), Data: map[string]any{"kind": store.ChannelSlack, "team_id": team}})
	})
	conn.Secret = nil
	if err != nil {
		return store.ChannelConnection{}, err
	}
	return conn, nil
}

// DisconnectChannel removes a channel connection: its workspace or number no
// longer reaches the tenant's agents. The stored token goes with it.
func (s *Service) DisconnectChannel(ctx context.Context, p authz.Principal, tenantID, id uuid.UUID) (store.ChannelConnection, error) {
	var ch store.ChannelConnection
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if ch, err = tx.GetChannel(ctx, id); err != nil {
			return notFound(err, "channel")
		}
		if err := tx.DeleteChannel(ctx, id); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "channel.disconnect", TargetType: "channel",
			TargetID: id.String(), Data: map[string]any{"kind": ch.Kind, "external_id": ch.ExternalID}})
	})
	ch.Secret = nil
	return ch, err
}
