package designer

import (
	"context"
	"errors"
	"fmt"
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
// connected (*slack.Client does, with auth.test), and trades the code of an
// "Add to Slack" install for the workspace's bot token (oauth.v2.access).
type SlackVerifier interface {
	AuthTest(ctx context.Context, token string) (slack.AuthInfo, error)
	OAuthExchange(ctx context.Context, clientID, clientSecret, code, redirectURI string) (slack.OAuthResult, error)
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
	return s.storeSlack(ctx, p, tenantID, agentID, slackWorkspace{team: team, name: info.Team, botUser: info.BotUserID, token: token, via: "token"})
}

// SlackInstall is an "Add to Slack" install coming back from Slack: the
// code to trade for the bot token, the redirect URI it was issued for, and
// the agent the workspace's messages go to.
type SlackInstall struct {
	ClientID, ClientSecret string
	Code, RedirectURI      string
	AgentID                uuid.UUID
}

// InstallSlack completes an "Add to Slack" (OAuth v2) install: it trades the
// code for the workspace's bot token with oauth.v2.access, then connects the
// workspace to the agent under the same rules as ConnectSlack (sealed token,
// re-install updates it in place, another tenant's workspace is a conflict,
// audited). A code Slack refuses is a 422 naming "code"; Slack unreachable,
// unavailable.
func (s *Service) InstallSlack(ctx context.Context, p authz.Principal, tenantID uuid.UUID, in SlackInstall) (store.ChannelConnection, error) {
	if s.Slack == nil || s.Secrets == nil {
		return store.ChannelConnection{}, errors.New("designer: install Slack: no Slack client or secret box configured")
	}
	res, err := s.Slack.OAuthExchange(ctx, in.ClientID, in.ClientSecret, in.Code, in.RedirectURI)
	if err != nil {
		if slack.IsPermanent(err) {
			return store.ChannelConnection{}, apperr.Fields{
				apperr.Invalid("code", "Slack refused the installation ("+slackCode(err)+")").Wrap(err)}
		}
		return store.ChannelConnection{}, apperr.Unavailable("Slack could not be reached to finish the installation; try again").Wrap(err)
	}
	if !slackTeamID.MatchString(res.TeamID) {
		return store.ChannelConnection{}, fmt.Errorf("designer: install Slack: Slack answered team ID %q", res.TeamID)
	}
	return s.storeSlack(ctx, p, tenantID, in.AgentID, slackWorkspace{team: res.TeamID, name: res.TeamName, botUser: res.BotUserID,
		token: res.BotToken, via: "oauth"})
}

// slackCode is Slack's error code, or what went wrong when it sent none.
func slackCode(err error) string {
	if c := slack.ErrorCode(err); c != "" {
		return c
	}
	return err.Error()
}

// slackWorkspace is a workspace Slack confirmed, with its bot token.
type slackWorkspace struct {
	team, name, botUser, token string
	via                        string // token (pasted) or oauth (Add to Slack)
}

// storeSlack seals the workspace's token, bound to the tenant and team, and
// connects the workspace to the agent (re-pointing and re-keying it in place
// when this tenant connected it before), audited, in one transaction.
func (s *Service) storeSlack(ctx context.Context, p authz.Principal, tenantID, agentID uuid.UUID, w slackWorkspace) (store.ChannelConnection, error) {
	secret, err := s.Secrets.Seal([]byte(w.token), store.SecretAAD(tenantID, store.ChannelSlack, w.team))
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
		if _, err := tx.GetChannelByExternalID(ctx, store.ChannelSlack, w.team); errors.Is(err, store.ErrNotFound) {
			if err := s.checkPlan(ctx, tx, tenantID, PlanChannels); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		conn, err = tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: agentID, Kind: store.ChannelSlack,
			ExternalID: w.team, DisplayName: w.name, BotUserID: w.botUser, Secret: secret})
		if errors.Is(err, store.ErrConflict) {
			return apperr.Conflict("this Slack workspace is already connected to another Konstruct account").Wrap(err)
		}
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "channel.connect", TargetType: "channel",
			TargetID: conn.ID.String(), Data: map[string]any{"kind": store.ChannelSlack, "team_id": w.team, "via": w.via}})
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
