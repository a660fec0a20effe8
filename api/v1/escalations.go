package v1

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
)

type escalationJSON struct {
	ID                 string                `json:"id"`
	TenantID           string                `json:"tenant_id"`
	ConversationID     string                `json:"conversation_id"`
	AgentID            string                `json:"agent_id"`
	WorkflowID         string                `json:"workflow_id"`
	WorkflowURL        string                `json:"workflow_url"`
	State              string                `json:"state"`
	Trigger            string                `json:"trigger"`
	Reason             string                `json:"reason"`
	Summary            string                `json:"summary"`
	SummarySource      string                `json:"summary_source"`
	Context            escalationContextJSON `json:"context"`
	Channel            string                `json:"channel"`
	UserRef            string                `json:"user_ref"`
	Slack              *escalationSlackJSON  `json:"slack"`
	NotifyError        string                `json:"notify_error"`
	Assignee           string                `json:"assignee"`
	ResolvedBy         string                `json:"resolved_by"`
	CreatedAt          string                `json:"created_at"`
	ClaimedAt          *string               `json:"claimed_at"`
	FirstResponseAt    *string               `json:"first_response_at"`
	EndedAt            *string               `json:"ended_at"`
	WaitingSeconds     int64                 `json:"waiting_seconds"`
	FirstResponseDueAt *string               `json:"first_response_due_at"`
	HandBackDueAt      *string               `json:"hand_back_due_at"`
	PageCount          int                   `json:"page_count"`
	SLA                string                `json:"sla"`
	Messages           []messageJSON         `json:"messages,omitempty"`
}

// escalationContextJSON is the context pack's structured part, every list present.
type escalationContextJSON struct {
	Tools   []store.HandoffTool   `json:"tools"`
	Sources []store.HandoffSource `json:"sources"`
}

type escalationSlackJSON struct {
	TeamID    string `json:"team_id"`
	ChannelID string `json:"channel_id"`
	TS        string `json:"ts"`
}

func (a *API) escalationOut(h store.Handoff, now time.Time) escalationJSON {
	out := escalationJSON{ID: h.ID.String(), TenantID: h.TenantID.String(), ConversationID: h.ConversationID.String(),
		AgentID: h.AgentID.String(), WorkflowID: h.WorkflowID, WorkflowURL: WorkflowURL(a.TemporalUIURL, a.Namespace, h.WorkflowID),
		State: h.State, Trigger: h.Trigger, Reason: h.Reason, Summary: h.Summary, SummarySource: h.SummarySource,
		Context: escalationContextJSON{Tools: h.Context.Tools, Sources: h.Context.Sources}, Channel: h.Channel, UserRef: h.UserRef, NotifyError: h.NotifyError, Assignee: h.Assignee,
		ResolvedBy: h.ResolvedBy, CreatedAt: ts(h.CreatedAt), ClaimedAt: tsPtr(h.ClaimedAt), FirstResponseAt: tsPtr(h.FirstResponseAt),
		EndedAt: tsPtr(h.EndedAt), WaitingSeconds: int64(h.WaitingTime(now).Seconds()),
		FirstResponseDueAt: tsPtr(h.FirstResponseDueAt), HandBackDueAt: tsPtr(h.HandBackDueAt), PageCount: h.PageCount,
		SLA: escalation.SLAStatus(h, now)}
	if h.SlackTS != "" {
		out.Slack = &escalationSlackJSON{TeamID: h.SlackTeamID, ChannelID: h.SlackChannelID, TS: h.SlackTS}
	}
	if out.Context.Tools == nil {
		out.Context.Tools = []store.HandoffTool{}
	}
	if out.Context.Sources == nil {
		out.Context.Sources = []store.HandoffSource{}
	}
	return out
}

// listEscalations answers the tenant's escalations, open ones first, with
// counts per state; ?state= filters (comma-separated, or "open").
func (a *API) listEscalations(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	limit := 100
	if s := c.Query("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 500 {
			return apperr.Invalid("limit", "must be an integer between 1 and 500")
		}
	}
	var states []string
	for _, s := range strings.Split(c.Query("state"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			states = append(states, s)
		}
	}
	list, counts, err := a.Escalations.List(c.Request.Context(), tenantID, states, limit)
	if err != nil {
		return err
	}
	now := time.Now()
	out := make([]escalationJSON, 0, len(list))
	for _, h := range list {
		out = append(out, a.escalationOut(h, now))
	}
	c.JSON(http.StatusOK, gin.H{"escalations": out, "counts": gin.H{
		store.EscalationWaiting: counts.Waiting, store.EscalationHuman: counts.Human,
		store.EscalationResolved: counts.Resolved, store.EscalationHandedBack: counts.HandedBack}})
	return nil
}

func escalationIDs(c *gin.Context) (uuid.UUID, uuid.UUID, error) {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	id, err := pathID(c, "escalation_id", "escalation")
	return tenantID, id, err
}

// getEscalation answers one escalation with its conversation's messages.
func (a *API) getEscalation(c *gin.Context) error {
	tenantID, id, err := escalationIDs(c)
	if err != nil {
		return err
	}
	d, err := a.Escalations.Get(c.Request.Context(), tenantID, id)
	if err != nil {
		return err
	}
	out := a.escalationOut(d.Escalation, time.Now())
	out.Messages = []messageJSON{}
	for _, m := range d.Messages {
		out.Messages = append(out.Messages, messageOut(m))
	}
	c.JSON(http.StatusOK, out)
	return nil
}

type staffActionJSON struct {
	ID           string `json:"id"`
	EscalationID string `json:"escalation_id"`
	Kind         string `json:"kind"`
	Status       string `json:"status"`
}

// replyToEscalation records a staff reply for the end user: 202, since the
// conversation's workflow relays it (in order with the conversation's
// messages) once the inbox hands it over.
func (a *API) replyToEscalation(c *gin.Context) error {
	tenantID, id, err := escalationIDs(c)
	if err != nil {
		return err
	}
	var req struct {
		Text string `json:"text"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	q, err := a.Escalations.Reply(c.Request.Context(), principal(c), tenantID, id, escalation.SourceAPI, req.Text)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, staffActionJSON{ID: q.EventID, EscalationID: id.String(), Kind: q.Action.Kind, Status: "queued"})
	return nil
}

// resolveEscalation hands the conversation back to its agent: 202, like a reply.
func (a *API) resolveEscalation(c *gin.Context) error {
	tenantID, id, err := escalationIDs(c)
	if err != nil {
		return err
	}
	q, err := a.Escalations.Resolve(c.Request.Context(), principal(c), tenantID, id, escalation.SourceAPI)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, staffActionJSON{ID: q.EventID, EscalationID: id.String(), Kind: q.Action.Kind, Status: "queued"})
	return nil
}

type supportSettingsJSON struct {
	SlackTeamID          string  `json:"slack_team_id"`
	SlackChannelID       string  `json:"slack_channel_id"`
	FirstResponseSeconds int     `json:"first_response_seconds"`
	HandBackSeconds      int     `json:"hand_back_seconds"`
	UpdatedAt            *string `json:"updated_at"`
}

func supportSettingsOut(s store.SupportSettings) supportSettingsJSON {
	out := supportSettingsJSON{SlackTeamID: s.SlackTeamID, SlackChannelID: s.SlackChannelID,
		FirstResponseSeconds: int(s.FirstResponse.Seconds()), HandBackSeconds: int(s.HandBack.Seconds())}
	if s.Saved {
		out.UpdatedAt = tsPtr(&s.UpdatedAt)
	}
	return out
}

func (a *API) getSupportSettings(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	s, err := a.Escalations.Settings(c.Request.Context(), tenantID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, supportSettingsOut(s))
	return nil
}

// putSupportSettings replaces the tenant's support settings (every field;
// the SLA in seconds).
func (a *API) putSupportSettings(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req struct {
		SlackTeamID          string `json:"slack_team_id"`
		SlackChannelID       string `json:"slack_channel_id"`
		FirstResponseSeconds *int   `json:"first_response_seconds"`
		HandBackSeconds      *int   `json:"hand_back_seconds"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	if req.FirstResponseSeconds == nil {
		return apperr.Invalid("first_response_seconds", "is required")
	}
	if req.HandBackSeconds == nil {
		return apperr.Invalid("hand_back_seconds", "is required")
	}
	s, err := a.Escalations.UpdateSettings(c.Request.Context(), principal(c), tenantID, escalation.SettingsInput{
		SlackTeamID: req.SlackTeamID, SlackChannelID: req.SlackChannelID,
		FirstResponse: time.Duration(*req.FirstResponseSeconds) * time.Second, HandBack: time.Duration(*req.HandBackSeconds) * time.Second})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, supportSettingsOut(s))
	return nil
}
