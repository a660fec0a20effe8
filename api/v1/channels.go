package v1

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/designer"
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
	// WhatsApp connections only.
	WABAID           string  `json:"waba_id,omitempty"`
	TemplateName     *string `json:"template_name,omitempty"`
	TemplateLanguage *string `json:"template_language,omitempty"`
	// Set when the channel refused the stored token: connect again with a new one.
	TokenError   string  `json:"token_error,omitempty"`
	TokenErrorAt *string `json:"token_error_at,omitempty"`
}

func channelOut(c store.ChannelConnection) channelJSON {
	out := channelJSON{ID: c.ID.String(), TenantID: c.TenantID.String(), AgentID: c.AgentID.String(), Kind: c.Kind,
		ExternalID: c.ExternalID, DisplayName: c.DisplayName, BotUserID: c.BotUserID, Status: c.Status,
		CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt), TokenError: c.TokenError, TokenErrorAt: tsPtr(c.TokenErrorAt)}
	if c.Kind == store.ChannelWhatsApp {
		out.WABAID, out.TemplateName, out.TemplateLanguage = c.WABAID, &c.TemplateName, &c.TemplateLanguage
	}
	return out
}

func (a *API) listChannels(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	list, err := a.Designer.ListChannels(c.Request.Context(), tenantID)
	if err != nil {
		return err
	}
	out := make([]channelJSON, 0, len(list))
	for _, ch := range list {
		out = append(out, channelOut(ch))
	}
	c.JSON(http.StatusOK, gin.H{"channels": out})
	return nil
}

// connectSlack connects a Slack workspace to an agent by hand, with a bot
// token the operator copied from the Slack app settings (the service checks
// it with Slack before anything is stored).
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
	conn, err := a.Designer.ConnectSlack(c.Request.Context(), principal(c), tenantID, designer.SlackConnection(req))
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, channelOut(conn))
	return nil
}

// connectWhatsApp connects a WhatsApp Business number to an agent: the
// service checks the access token with the Graph API before anything is
// stored, and refuses an agent without a business function.
func (a *API) connectWhatsApp(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req struct {
		PhoneNumberID    string `json:"phone_number_id"`
		WABAID           string `json:"waba_id"`
		AccessToken      string `json:"access_token"`
		AgentID          string `json:"agent_id"`
		TemplateName     string `json:"template_name"`
		TemplateLanguage string `json:"template_language"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	conn, err := a.Designer.ConnectWhatsApp(c.Request.Context(), principal(c), tenantID, designer.WhatsAppConnection{
		PhoneNumberID: req.PhoneNumberID, WABAID: req.WABAID, AccessToken: req.AccessToken, AgentID: req.AgentID,
		TemplateName: req.TemplateName, TemplateLanguage: req.TemplateLanguage})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, channelOut(conn))
	return nil
}

// updateChannel changes a connection's settings: for now, the approved
// template a WhatsApp number sends outside the 24-hour window.
func (a *API) updateChannel(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	channelID, err := pathID(c, "channel_id", "channel")
	if err != nil {
		return err
	}
	var req struct {
		TemplateName     *string `json:"template_name"`
		TemplateLanguage *string `json:"template_language"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	if req.TemplateName == nil || req.TemplateLanguage == nil {
		return apperr.Fields{apperr.Invalid("template_name", "send template_name and template_language together (both empty to remove the template)")}
	}
	conn, err := a.Designer.SetWhatsAppTemplate(c.Request.Context(), principal(c), tenantID, channelID, *req.TemplateName, *req.TemplateLanguage)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, channelOut(conn))
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
	if _, err := a.Designer.DisconnectChannel(c.Request.Context(), principal(c), tenantID, channelID); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
