package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
)

// escRow is an escalation as the queue shows it.
type escRow struct {
	store.Handoff
	AgentName string
	SLA       string
	Waiting   time.Duration
}

type escalationListData struct {
	Rows   []escRow
	Counts store.HandoffCounts
	Filter string // open (default), waiting_for_human, human, resolved, handed_back, all
}

// escalationFilters are the queue's tabs and the states each shows.
var escalationFilters = map[string][]string{
	"open":                     {store.EscalationWaiting, store.EscalationHuman},
	store.EscalationWaiting:    {store.EscalationWaiting},
	store.EscalationHuman:      {store.EscalationHuman},
	store.EscalationResolved:   {store.EscalationResolved},
	store.EscalationHandedBack: {store.EscalationHandedBack},
	"all":                      nil,
}

func (p *Portal) escalationRow(h store.Handoff, agents map[uuid.UUID]string, now time.Time) escRow {
	return escRow{Handoff: h, AgentName: agents[h.AgentID], SLA: escalation.SLAStatus(h, now), Waiting: h.WaitingTime(now)}
}

// escalationList is the Escalations queue: the conversations people own or
// owned, open ones first (the longest waiting at the top).
func (p *Portal) escalationList(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	d := escalationListData{Filter: c.DefaultQuery("state", "open")}
	states, known := escalationFilters[d.Filter]
	if !known {
		d.Filter, states = "open", escalationFilters["open"]
	}
	list, counts, err := p.d.Escalations.List(ctx, tenant.ID, states, 200)
	if err != nil {
		p.fail(c, err)
		return
	}
	d.Counts = counts
	names, err := p.agentNames(c, tenant.ID)
	if err != nil {
		p.fail(c, err)
		return
	}
	now := time.Now()
	for _, h := range list {
		d.Rows = append(d.Rows, p.escalationRow(h, names, now))
	}
	p.render(c, http.StatusOK, "escalations/list", &Page{Title: "Escalations", Section: "escalations", Tenant: tenant, Data: &d})
}

func (p *Portal) agentNames(c *gin.Context, tenantID uuid.UUID) (map[uuid.UUID]string, error) {
	names := map[uuid.UUID]string{}
	err := p.d.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		list, err := tx.ListAgents(c.Request.Context())
		for _, a := range list {
			names[a.ID] = a.Name
		}
		return err
	})
	return names, err
}

type escalationShowData struct {
	Row          escRow
	Conversation store.Conversation
	Messages     []store.Message
	Images       map[int][]transcriptImage // by turn: the images the user sent
	PortalOnly   bool                      // not posted in Slack
}

func (p *Portal) escalationShow(c *gin.Context) {
	p.escalationPage(c, http.StatusOK, nil)
}

// escalationPage renders an escalation: its context pack, the live
// transcript and, while it is open, the reply box and the resolve button.
func (p *Portal) escalationPage(c *gin.Context, status int, form *Form) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "escalation_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	det, err := p.d.Escalations.Get(c.Request.Context(), tenant.ID, id)
	if err != nil {
		p.fail(c, err)
		return
	}
	names := map[uuid.UUID]string{}
	if det.Agent != nil {
		names[det.Agent.ID] = det.Agent.Name
	}
	images, err := p.conversationImages(c, tenant.ID, det.Conversation.ID)
	if err != nil {
		p.fail(c, err)
		return
	}
	d := escalationShowData{Row: p.escalationRow(det.Escalation, names, time.Now()), Conversation: det.Conversation,
		Messages: det.Messages, Images: images, PortalOnly: det.Escalation.SlackTS == ""}
	title := "Escalation " + shortID(id.String())
	p.render(c, status, "escalations/show", &Page{Title: title, Section: "escalations", Tenant: tenant, Form: form, Data: &d,
		Crumbs: []Crumb{{"Escalations", "/t/" + tenant.ID.String() + "/escalations"}, {title, ""}}})
}

type liveMessageJSON struct {
	ID      string            `json:"id"`
	Turn    int               `json:"turn"`
	Role    string            `json:"role"`
	Who     string            `json:"who"`
	Content string            `json:"content"`
	At      string            `json:"at"`
	Images  []transcriptImage `json:"images,omitempty"` // the user's, with their message
}

// escalationLive feeds the escalation page's transcript and state while it
// is open, so staff see the user's new messages without reloading.
func (p *Portal) escalationLive(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	c.Header("Cache-Control", "no-store")
	id, ok := pathUUID(c, "escalation_id")
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "not_found"})
		return
	}
	det, err := p.d.Escalations.Get(c.Request.Context(), tenant.ID, id)
	if err != nil {
		e := apperr.From(err)
		c.JSON(e.Status, gin.H{"error": e.Code})
		return
	}
	agent := "Agent"
	if det.Agent != nil {
		agent = det.Agent.Name
	}
	images, err := p.conversationImages(c, tenant.ID, det.Conversation.ID)
	if err != nil {
		e := apperr.From(err)
		c.JSON(e.Status, gin.H{"error": e.Code})
		return
	}
	now := time.Now()
	msgs := make([]liveMessageJSON, 0, len(det.Messages))
	for _, m := range det.Messages {
		if m.Role == "tool" {
			continue
		}
		lm := liveMessageJSON{ID: m.ID.String(), Turn: m.Turn, Role: m.Role, Who: speaker(m, agent),
			Content: m.Content, At: datetime(m.CreatedAt)}
		if m.Role == "user" {
			lm.Images = images[m.Turn]
		}
		msgs = append(msgs, lm)
	}
	h := det.Escalation
	c.JSON(http.StatusOK, gin.H{"state": h.State, "state_label": escalationStateLabel(h.State), "sla": escalation.SLAStatus(h, now),
		"open": store.EscalationOpen(h.State), "waiting": duration(h.WaitingTime(now)), "messages": msgs})
}

// speaker names who wrote a transcript message.
func speaker(m store.Message, agent string) string {
	switch m.Role {
	case "user":
		if m.Author != "" {
			return m.Author
		}
		return "User"
	case "assistant":
		return agent
	case "staff":
		if m.Author != "" {
			return m.Author + " (support)"
		}
		return "Support"
	}
	return "Notice"
}

func escalationStateLabel(state string) string {
	switch state {
	case store.EscalationWaiting:
		return "waiting for a person"
	case store.EscalationHuman:
		return "with a person"
	case store.EscalationResolved:
		return "resolved"
	case store.EscalationHandedBack:
		return "handed back"
	}
	return state
}

// escalationReply sends a staff reply to the end user (through the inbox,
// like the REST API): the conversation's workflow relays it.
func (p *Portal) escalationReply(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "escalation_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	text := c.PostForm("text")
	_, err := p.d.Escalations.Reply(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id, escalation.SourcePortal, text)
	to := "/t/" + tenant.ID.String() + "/escalations/" + id.String()
	var e *apperr.Error
	switch {
	case err == nil:
		p.back(c, to, "success", "Sent. It reaches the user in a moment and appears in the transcript.")
	case errors.As(err, &e) && e.Field == "text":
		p.escalationPage(c, http.StatusUnprocessableEntity, &Form{Values: map[string]string{"text": text},
			Errors: apperr.Fields{e}, Message: "The message was not sent: it " + e.Message + "."})
	case errors.As(err, &e) && e.Status == http.StatusConflict:
		p.back(c, to, "error", "Not sent: "+e.Message+".")
	default:
		p.fail(c, err)
	}
}

// escalationResolve hands the conversation back to its agent.
func (p *Portal) escalationResolve(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "escalation_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	_, err := p.d.Escalations.Resolve(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id, escalation.SourcePortal)
	to := "/t/" + tenant.ID.String() + "/escalations/" + id.String()
	var e *apperr.Error
	switch {
	case err == nil:
		p.back(c, to, "success", "Resolved. The agent has the conversation again and follows up with the user.")
	case errors.As(err, &e) && e.Status == http.StatusConflict:
		p.back(c, to, "error", capitalise(e.Message)+".")
	default:
		p.fail(c, err)
	}
}

// duration says how long, for people: "45 s", "12 min", "3 h 5 min", "2 days".
func duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	case d < 24*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return strconv.Itoa(h) + " h"
		}
		return strconv.Itoa(h) + " h " + strconv.Itoa(m) + " min"
	}
	return plural(int(d.Hours()/24), "day", "days")
}

// supportData is the Settings page's support section.
type supportData struct {
	Settings   store.SupportSettings
	Workspaces []store.ChannelConnection
}

func (p *Portal) supportSettings(c *gin.Context, tenantID uuid.UUID) (*supportData, error) {
	s, err := p.d.Escalations.Settings(c.Request.Context(), tenantID)
	if err != nil {
		return nil, err
	}
	d := &supportData{Settings: s}
	err = p.d.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		conns, err := tx.ListChannels(c.Request.Context())
		for _, ch := range conns {
			if ch.Kind == store.ChannelSlack {
				d.Workspaces = append(d.Workspaces, ch)
			}
		}
		return err
	})
	return d, err
}

func supportForm(s store.SupportSettings) map[string]string {
	return map[string]string{"slack_team_id": s.SlackTeamID, "slack_channel_id": s.SlackChannelID,
		"first_response_minutes": minutes(s.FirstResponse), "hand_back_minutes": minutes(s.HandBack)}
}

func minutes(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(d.Minutes(), 'f', 2, 64), "0"), ".")
}

// supportUpdate saves the support settings (admins): where handoffs are
// posted in Slack, and the SLA in minutes.
func (p *Portal) supportUpdate(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	values := map[string]string{"slack_team_id": c.PostForm("slack_team_id"), "slack_channel_id": c.PostForm("slack_channel_id"),
		"first_response_minutes": c.PostForm("first_response_minutes"), "hand_back_minutes": c.PostForm("hand_back_minutes")}
	var errs apperr.Fields
	in := escalation.SettingsInput{SlackTeamID: values["slack_team_id"], SlackChannelID: values["slack_channel_id"]}
	parse := func(field string) time.Duration {
		f, err := strconv.ParseFloat(strings.TrimSpace(values[field]), 64)
		if err != nil || f <= 0 || f > 60*24*30 {
			errs.Add(field, "must be a number of minutes, such as 15 or 0.5")
			return 0
		}
		return time.Duration(f * float64(time.Minute))
	}
	in.FirstResponse, in.HandBack = parse("first_response_minutes"), parse("hand_back_minutes")
	var err error
	if len(errs) > 0 {
		err = errs
	} else {
		_, err = p.d.Escalations.UpdateSettings(c.Request.Context(), viewerOf(c).Principal, tenant.ID, in)
	}
	var fields apperr.Fields
	if errors.As(err, &fields) {
		for _, f := range fields { // the form asks in minutes
			f.Field = strings.Replace(f.Field, "_seconds", "_minutes", 1)
		}
		p.settingsPage(c, tenant, http.StatusUnprocessableEntity, &Form{Values: mergeValues(map[string]string{"name": tenant.Name}, values),
			Errors: fields, Message: "The support settings were not saved."}, "")
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/settings#support", "success", "Support settings saved.")
}

func mergeValues(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
