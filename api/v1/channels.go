package v1

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/store"
)

// channelJSON never carries the token: secrets do not leave the server.
type channelJSON struct {
	ID          string `json:"id"`
	TenantID    string `json:"tenant_id"`
	AgentID     string `json:"agent_id"`
	Kind        string `json:"kind"`
	ExternalID  string `json:"external_id"`
	DisplayName string `json:"display_name"`
	BotUserID   string `json:"bot_user_id"`
	Status      string `json:"status"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
}

func channelOut(c store.ChannelConnection) channelJSON {
	return channelJSON{ID: c.ID.String(), TenantID: c.TenantID.String(), AgentID: c.AgentID.String(), Kind: c.Kind,
		ExternalID: c.ExternalID, DisplayName: c.DisplayName, BotUserID: c.BotUserID, Status: c.Status,
		CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt)}
}

func (a *API) listChannels(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var out []channelJSON
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		if err := requireTenant(c.Request.Context(), tx, tenantID); err != nil {
			return err
		}
		list, err := tx.ListChannels(c.Request.Context())
		for _, ch := range list {
			out = append(out, channelOut(ch))
		}
		return err
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"channels": nonNilSlice(out)})
	return nil
}

var slackTeamID = regexp.MustCompile(`^[TE][A-Z0-9]{2,30}$`)

// connectSlack connects a Slack workspace to an agent by hand, with a bot
// token the operator copied from the Slack app settings. Slack is asked to
// confirm the token belongs to the team before anything is stored.
func (a *API) connectSlack(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req struct {
		TeamID   string `json:"team_id"`
		BotToken string `json:"bot_token"`
		AgentID  string `json:"agent_id"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	req.TeamID, req.BotToken = strings.TrimSpace(req.TeamID), strings.TrimSpace(req.BotToken)
	if !slackTeamID.MatchString(req.TeamID) {
		return apperr.Invalid("team_id", "must be a Slack team ID such as T0123ABCD")
	}
	if !strings.HasPrefix(req.BotToken, "xoxb-") || len(req.BotToken) > 255 {
		return apperr.Invalid("bot_token", "must be a Slack bot token starting with xoxb-")
	}
	agentID, err := uuid.Parse(req.AgentID)
	if err != nil {
		return apperr.Invalid("agent_id", "must be the ID of one of this tenant's agents")
	}
	info, err := a.Slack.AuthTest(c.Request.Context(), req.BotToken)
	if err != nil {
		if slack.IsPermanent(err) {
			return apperr.Invalid("bot_token", "Slack refused this token ("+slack.ErrorCode(err)+")").Wrap(err)
		}
		return apperr.Unavailable("Slack could not be reached to check the token; try again").Wrap(err)
	}
	if info.TeamID != req.TeamID {
		return apperr.Invalid("team_id", "the bot token belongs to team "+info.TeamID+", not "+req.TeamID)
	}
	secret, err := a.Secrets.Seal([]byte(req.BotToken), store.SecretAAD(tenantID, store.ChannelSlack, req.TeamID))
	if err != nil {
		return err
	}
	var conn store.ChannelConnection
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		if err := requireTenant(c.Request.Context(), tx, tenantID); err != nil {
			return err
		}
		if _, err := tx.GetAgent(c.Request.Context(), agentID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return apperr.Invalid("agent_id", "no such agent in this tenant").Wrap(err)
			}
			return err
		}
		conn, err = tx.UpsertChannelConnection(c.Request.Context(), store.ChannelConnection{AgentID: agentID,
			Kind: store.ChannelSlack, ExternalID: req.TeamID, DisplayName: info.Team, BotUserID: info.BotUserID, Secret: secret})
		if errors.Is(err, store.ErrConflict) {
			return apperr.Conflict("this Slack workspace is already connected to another Konstruct account").Wrap(err)
		}
		if err != nil {
			return err
		}
		return tx.AppendAudit(c.Request.Context(), store.AuditEvent{Actor: actor(c), Action: "channel.connect",
			TargetType: "channel", TargetID: conn.ID.String(), Data: map[string]any{"kind": "slack", "team_id": req.TeamID}})
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, channelOut(conn))
	return nil
}

func (a *API) deleteChannel(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	channelID, err := pathID(c, "channel_id", "channel")
	if err != nil {
		return err
	}
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		if err := tx.DeleteChannel(c.Request.Context(), channelID); err != nil {
			return notFoundAs(err, "channel")
		}
		return tx.AppendAudit(c.Request.Context(), store.AuditEvent{Actor: actor(c), Action: "channel.disconnect",
			TargetType: "channel", TargetID: channelID.String()})
	})
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
