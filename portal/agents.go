package portal

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
)

// The Agent Designer.

// commonModels are offered as suggestions next to the configured defaults;
// any provider/model name is accepted.
var commonModels = []string{
	"openai/gpt-4o-mini", "openai/gpt-4o", "openai/gpt-4.1", "openai/gpt-4.1-mini",
	"anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5", "anthropic/claude-opus-4-1",
	"ollama/llama3.2", "ollama/qwen2.5",
}

type toolOption struct {
	Name, Title, Description string
}

type agentRow struct {
	Agent         store.Agent
	Channels      int
	Conversations int
}

type agentListData struct {
	Agents []agentRow
}

func (p *Portal) agentList(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	var rows []agentRow
	err := p.d.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		list, err := tx.ListAgents(ctx)
		if err != nil {
			return err
		}
		chans, err := tx.ListChannels(ctx)
		if err != nil {
			return err
		}
		convs, err := tx.ListConversations(ctx, 500)
		if err != nil {
			return err
		}
		for _, a := range list {
			r := agentRow{Agent: a}
			for _, ch := range chans {
				if ch.AgentID == a.ID {
					r.Channels++
				}
			}
			for _, cv := range convs {
				if cv.AgentID == a.ID {
					r.Conversations++
				}
			}
			rows = append(rows, r)
		}
		return nil
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, http.StatusOK, "agents/list", &Page{Title: "Agents", Section: "agents", Tenant: tenant,
		Data: agentListData{Agents: rows}})
}

// designerData feeds the Agent Designer form.
type designerData struct {
	Agent         *store.Agent // nil when creating
	Input         agents.Input
	Keywords      string
	MaxFailed     string
	Tools         []toolOption
	Suggestions   []string
	DefaultModels []string
	Preview       string
	Channel       string
	Limits        map[string]int
	Rules         escalation.Rules // the escalation rules as they apply (defaults filled in)
	Cooldown      string
}

func (p *Portal) designer(agent *store.Agent, in agents.Input, channel string) designerData {
	var typed []string
	for _, m := range in.Models {
		if strings.TrimSpace(m) != "" {
			typed = append(typed, m)
		}
	}
	in.Models = typed
	d := designerData{Agent: agent, Input: in, Keywords: strings.Join(in.Escalation.Keywords, ", "),
		DefaultModels: p.d.Config.DefaultModels, Channel: channel,
		Limits: map[string]int{"name": agents.MaxName, "role": agents.MaxRole, "persona": agents.MaxPersona,
			"system_prompt": agents.MaxSystemPrompt, "models": agents.MaxModels, "handoff": 1000,
			"business_function": agents.MaxBusinessFunction}}
	if in.Escalation.MaxFailedTurns > 0 {
		d.MaxFailed = strconv.Itoa(in.Escalation.MaxFailedTurns)
	}
	d.Rules = escalation.RulesOf(in.Escalation)
	if agent == nil && in.Escalation.Enabled == nil {
		d.Rules.Enabled = true // a new agent hands over to people unless the operator says no
	}
	d.Cooldown = strconv.Itoa(int(d.Rules.Cooldown.Minutes()))
	for _, name := range p.d.Tools.Selectable() {
		t, _ := p.d.Tools.Get(name)
		d.Tools = append(d.Tools, toolOption{Name: name, Title: t.Title, Description: t.Description})
	}
	seen := map[string]bool{}
	for _, m := range append(slices.Clone(p.d.Config.DefaultModels), commonModels...) {
		if !seen[m] {
			seen[m] = true
			d.Suggestions = append(d.Suggestions, m)
		}
	}
	d.Preview = agents.SystemPrompt(store.Agent{Name: in.Name, Role: strings.TrimSpace(in.Role),
		Persona: strings.TrimSpace(in.Persona), SystemPrompt: strings.TrimSpace(in.SystemPrompt),
		BusinessFunction: strings.TrimSpace(in.BusinessFunction)}, channel)
	return d
}

func (p *Portal) agentNew(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	in := agents.Input{Status: store.AgentActive}
	p.render(c, http.StatusOK, "agents/form", &Page{Title: "New agent", Section: "agents", Tenant: tenant,
		Crumbs: []Crumb{{"Agents", "/t/" + tenant.ID.String() + "/agents"}, {"New agent", ""}},
		Data:   p.designer(nil, in, store.ChannelSlack)})
}

// parseAgentForm reads the designer form. Problems the agents package cannot
// see (a non-numeric turn count) are returned as fields.
func parseAgentForm(c *gin.Context) (agents.Input, string, string, apperr.Fields) {
	var errs apperr.Fields
	in := agents.Input{
		Name: c.PostForm("name"), Role: c.PostForm("role"), Persona: c.PostForm("persona"),
		SystemPrompt: c.PostForm("system_prompt"), Models: c.PostFormArray("models"), Tools: c.PostFormArray("tools"),
		BusinessFunction: c.PostForm("business_function"),
		Status:           c.DefaultPostForm("status", store.AgentActive),
	}
	if v := strings.TrimSpace(c.PostForm("kb_top_k")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > agents.MaxKBTopK {
			errs.Add("kb_top_k", fmt.Sprintf("must be a whole number from 1 to %d", agents.MaxKBTopK))
		} else {
			in.KBTopK = n
		}
	}
	keywords := c.PostForm("esc_keywords")
	seen := map[string]bool{}
	for _, k := range strings.FieldsFunc(keywords, func(r rune) bool { return r == ',' || r == '\n' || r == ';' }) {
		k = strings.TrimSpace(k)
		if k == "" || seen[strings.ToLower(k)] {
			continue
		}
		seen[strings.ToLower(k)] = true
		in.Escalation.Keywords = append(in.Escalation.Keywords, k)
	}
	maxFailed := strings.TrimSpace(c.PostForm("esc_max_failed_turns"))
	if maxFailed != "" {
		n, err := strconv.Atoi(maxFailed)
		if err != nil || n < 0 || n > 100 {
			errs.Add("esc_max_failed_turns", "must be a whole number from 0 to 100")
		} else {
			in.Escalation.MaxFailedTurns = n
		}
	}
	in.Escalation.HandoffMessage = strings.TrimSpace(c.PostForm("esc_handoff_message"))
	in.Escalation.NotifyChannel = strings.TrimSpace(c.PostForm("esc_notify_channel"))
	// The switches are checkboxes: absent means off, but only when the form
	// had them (esc_switches), so an older form leaves the rules as they were.
	if c.PostForm("esc_switches") == "1" {
		on := func(name string) *bool { v := c.PostForm(name) == "on"; return &v }
		in.Escalation.Enabled, in.Escalation.UserRequest, in.Escalation.OnError = on("esc_enabled"), on("esc_user_request"), on("esc_on_error")
		if v := strings.TrimSpace(c.PostForm("esc_cooldown_minutes")); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1440 {
				errs.Add("esc_cooldown_minutes", "must be a whole number of minutes from 0 to 1440")
			} else {
				in.Escalation.CooldownMinutes = &n
			}
		}
	}
	return in, keywords, maxFailed, errs
}

// formErrors spreads validation errors over the form's fields: schema errors
// about escalation rules go next to the rule they concern, in plain words.
func formErrors(err error, extra apperr.Fields) apperr.Fields {
	out := slices.Clone(extra)
	var fields apperr.Fields
	if errors.As(err, &fields) {
		for _, f := range fields {
			if f.Field != "escalation" {
				out = append(out, f)
				continue
			}
			switch {
			case strings.HasPrefix(f.Message, "keywords"):
				out.Add("esc_keywords", "use at most 50 keywords, each 1 to 100 characters")
			case strings.HasPrefix(f.Message, "max_failed_turns"):
				out.Add("esc_max_failed_turns", "must be a whole number from 0 to 100")
			case strings.HasPrefix(f.Message, "cooldown_minutes"):
				out.Add("esc_cooldown_minutes", "must be a whole number of minutes from 0 to 1440")
			case strings.HasPrefix(f.Message, "handoff_message"):
				out.Add("esc_handoff_message", "must be at most 1000 characters")
			case strings.HasPrefix(f.Message, "notify_channel"):
				out.Add("esc_notify_channel", "must be a Slack channel ID such as C0123ABCD, or empty")
			default:
				out = append(out, f)
			}
		}
	} else if err != nil {
		var e *apperr.Error
		if errors.As(err, &e) && e.Status == http.StatusUnprocessableEntity {
			out = append(out, e)
		}
	}
	return out
}

func (p *Portal) agentCreate(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	in, keywords, maxFailed, extra := parseAgentForm(c)
	var a store.Agent
	var err error
	if len(extra) == 0 {
		a, err = p.d.Designer.Create(c.Request.Context(), viewerOf(c).Principal, tenant.ID, in)
	} else {
		check := in // Validate normalises its input; the form shows what was typed
		err = agents.Validate(&check, p.d.Tools.Selectable())
	}
	if fields := formErrors(err, extra); len(fields) > 0 {
		p.designerError(c, tenant, nil, in, keywords, maxFailed, fields)
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/agents/"+a.ID.String(), "success",
		a.Name+" is ready. Connect a channel to start conversations with it.")
}

func (p *Portal) designerError(c *gin.Context, tenant *store.Tenant, agent *store.Agent, in agents.Input, keywords, maxFailed string, fields apperr.Fields) {
	d := p.designer(agent, in, c.DefaultPostForm("preview_channel", store.ChannelSlack))
	d.Keywords, d.MaxFailed = keywords, maxFailed
	title, crumb := "New agent", "New agent"
	if agent != nil {
		title, crumb = "Edit "+agent.Name, "Edit"
	}
	crumbs := []Crumb{{"Agents", "/t/" + tenant.ID.String() + "/agents"}}
	if agent != nil {
		crumbs = append(crumbs, Crumb{agent.Name, "/t/" + tenant.ID.String() + "/agents/" + agent.ID.String()})
	}
	crumbs = append(crumbs, Crumb{crumb, ""})
	p.render(c, http.StatusUnprocessableEntity, "agents/form", &Page{Title: title, Section: "agents", Tenant: tenant,
		Crumbs: crumbs, Form: &Form{Errors: fields, Message: "Some fields need attention. Nothing was saved yet."}, Data: d})
}

// agentPreview answers the designer's live preview: the system prompt the
// model will receive, built by the same function the conversation engine uses.
func (p *Portal) agentPreview(c *gin.Context) {
	in, _, _, _ := parseAgentForm(c)
	channel := c.DefaultPostForm("preview_channel", store.ChannelSlack)
	prompt := agents.SystemPrompt(store.Agent{Name: strings.TrimSpace(in.Name), Role: strings.TrimSpace(in.Role),
		Persona: strings.TrimSpace(in.Persona), SystemPrompt: strings.TrimSpace(in.SystemPrompt),
		BusinessFunction: strings.TrimSpace(in.BusinessFunction)}, channel)
	c.JSON(http.StatusOK, gin.H{"prompt": prompt, "characters": len([]rune(prompt))})
}

// loadAgent reads :agent_id in the tenant in view, or renders the 404 page.
func (p *Portal) loadAgent(c *gin.Context, tenant *store.Tenant) (store.Agent, bool) {
	id, ok := pathUUID(c, "agent_id")
	if !ok {
		p.notFoundPage(c)
		return store.Agent{}, false
	}
	a, err := p.d.Designer.Get(c.Request.Context(), tenant.ID, id)
	if err != nil {
		p.fail(c, err)
		return store.Agent{}, false
	}
	return a, true
}

type agentShowData struct {
	Agent         store.Agent
	Chat          *chatView // the "try it" chat, for those who may use it
	Channels      []store.ChannelConnection
	Conversations []store.Conversation
	Prompts       map[string]string
	DefaultModels []string
}

func (p *Portal) agentShow(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	a, ok := p.loadAgent(c, tenant)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	d := agentShowData{Agent: a, DefaultModels: p.d.Config.DefaultModels, Prompts: map[string]string{
		store.ChannelSlack:    agents.SystemPrompt(a, store.ChannelSlack),
		store.ChannelWhatsApp: agents.SystemPrompt(a, store.ChannelWhatsApp),
	}}
	err := p.d.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		chans, err := tx.ListChannels(ctx)
		if err != nil {
			return err
		}
		for _, ch := range chans {
			if ch.AgentID == a.ID {
				d.Channels = append(d.Channels, ch)
			}
		}
		d.Conversations, err = tx.FilterConversations(ctx, store.ConversationFilter{AgentID: a.ID, Limit: 10})
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	pg := &Page{Title: a.Name, Section: "agents", Tenant: tenant,
		Crumbs: []Crumb{{"Agents", "/t/" + tenant.ID.String() + "/agents"}, {a.Name, ""}}, Data: &d}
	p.fill(c, pg)
	if pg.Can("write", "agents") {
		d.Chat = p.chatFor(tenant, a, false)
	}
	p.render(c, http.StatusOK, "agents/show", pg)
}

func (p *Portal) agentEdit(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	a, ok := p.loadAgent(c, tenant)
	if !ok {
		return
	}
	p.render(c, http.StatusOK, "agents/form", &Page{Title: "Edit " + a.Name, Section: "agents", Tenant: tenant,
		Crumbs: []Crumb{{"Agents", "/t/" + tenant.ID.String() + "/agents"}, {a.Name, "/t/" + tenant.ID.String() + "/agents/" + a.ID.String()}, {"Edit", ""}},
		Data:   p.designer(&a, designer.InputOf(a), store.ChannelSlack)})
}

func (p *Portal) agentUpdate(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	cur, ok := p.loadAgent(c, tenant)
	if !ok {
		return
	}
	in, keywords, maxFailed, extra := parseAgentForm(c)
	var err error
	var a store.Agent
	if len(extra) == 0 {
		a, err = p.d.Designer.Update(c.Request.Context(), viewerOf(c).Principal, tenant.ID, cur.ID, in)
	} else {
		check := in // Validate normalises its input; the form shows what was typed
		err = agents.Validate(&check, p.d.Tools.Selectable())
	}
	if fields := formErrors(err, extra); len(fields) > 0 {
		p.designerError(c, tenant, &cur, in, keywords, maxFailed, fields)
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/agents/"+a.ID.String(), "success",
		"Saved. Running conversations use the new design from their next turn.")
}

func (p *Portal) agentStatus(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "agent_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	status := c.PostForm("status")
	a, err := p.d.Designer.SetStatus(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id, status)
	back := "/t/" + tenant.ID.String() + "/agents/" + id.String()
	if to := localNext(c.PostForm("return_to")); to != "" {
		back = to
	}
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.back(c, back, "error", "Choose whether the agent is active or inactive.")
	case err != nil:
		p.fail(c, err)
	case a.Status == store.AgentActive:
		p.back(c, back, "success", a.Name+" is active and answers new messages.")
	default:
		p.back(c, back, "success", a.Name+" is inactive: it answers no new messages until you activate it again.")
	}
}

func (p *Portal) agentDelete(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	a, ok := p.loadAgent(c, tenant)
	if !ok {
		return
	}
	err := p.d.Designer.Delete(c.Request.Context(), viewerOf(c).Principal, tenant.ID, a.ID)
	list := "/t/" + tenant.ID.String() + "/agents"
	if e := apperr.From(err); err != nil && e.Status == http.StatusConflict {
		p.back(c, list+"/"+a.ID.String(), "error", "Cannot delete "+a.Name+": "+e.Message+".")
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, list, "success", a.Name+" was deleted.")
}
