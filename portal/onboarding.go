package portal

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/onboarding"
	"github.com/konstruct/konstruct/internal/store"
)

// The setup stepper a new organisation lands on after signing up: connect a
// channel, configure the agent, send a test message. Each step is a page of
// /t/:tenant_id/onboarding (?step=N); the progress is saved per tenant, so
// the dashboard resumes it.

// stepView is one step in the stepper's header.
type stepView struct {
	N            int
	Title, Short string
	Done         bool
	Current      bool
}

type onboardingData struct {
	Step     int
	Steps    []stepView
	Progress onboarding.Progress
	Agent    *store.Agent
	// Step 1.
	SlackOAuth    bool // "Add to Slack" is set up on this server
	SlackChannels []store.ChannelConnection
	// WhatsApp numbers connected, and the settings this server lacks for
	// WhatsApp (the setup wizard explains them).
	WhatsAppChannels []store.ChannelConnection
	WhatsAppMissing  []missingSetting
	AgentNames       map[string]string // who each connection routes to
	// Step 2.
	Form           onboarding.AgentForm
	Preview        string
	PreviewChannel string // the channel the preview is written for ("" none)
	// The agent's business function (its scope on WhatsApp), which the
	// preview includes; changed in the Agent Designer, not here.
	BusinessFunction string
	Models           []string // choices for the first model
	DefaultModels    []string
	OwnKeys          []string // providers the tenant brought its own key for
	// Step 3.
	Chat *chatView
}

var stepTitles = []struct{ title, short string }{
	{"Connect a channel", "Where your agent answers"},
	{"Configure your agent", "Who it is and what it does"},
	{"Send a test message", "See it answer"},
}

func (p *Portal) onboardingPage(c *gin.Context, tenant *store.Tenant, step, status int, form *Form, agentForm *onboarding.AgentForm) {
	ctx := c.Request.Context()
	prog, err := p.d.Onboarding.Get(ctx, tenant.ID)
	if err != nil {
		p.fail(c, err)
		return
	}
	if step < onboarding.StepChannel || step > onboarding.StepTest {
		step = prog.Next()
	}
	d := &onboardingData{Step: step, Steps: setupSteps(prog, step), Progress: prog, Agent: prog.Agent, SlackOAuth: p.slackOAuthEnabled(),
		DefaultModels: p.d.Config.DefaultModels, WhatsAppMissing: p.whatsAppMissing()}
	for _, ch := range prog.Channels {
		switch ch.Kind {
		case store.ChannelSlack:
			d.SlackChannels = append(d.SlackChannels, ch)
		case store.ChannelWhatsApp:
			d.WhatsAppChannels = append(d.WhatsAppChannels, ch)
		}
	}
	if len(d.SlackChannels) > 0 || len(d.WhatsAppChannels) > 0 {
		list, err := p.d.Designer.List(ctx, tenant.ID)
		if err != nil {
			p.fail(c, err)
			return
		}
		d.AgentNames = map[string]string{}
		for _, a := range list {
			d.AgentNames[a.ID.String()] = a.Name
		}
	}
	switch step {
	case onboarding.StepAgent:
		switch {
		case agentForm != nil:
			d.Form = *agentForm
		case prog.Agent != nil:
			d.Form = onboarding.FormOf(*prog.Agent)
		default:
			d.Form = onboarding.FormOf(agentOf(onboarding.DefaultAgent(tenant.Name)))
		}
		d.PreviewChannel = previewChannel(prog)
		if prog.Agent != nil {
			// Declared when a WhatsApp number was connected; the form keeps it.
			d.BusinessFunction = prog.Agent.BusinessFunction
		}
		d.Preview = agents.SystemPrompt(store.Agent{Name: strings.TrimSpace(d.Form.Name), Role: strings.TrimSpace(d.Form.Role),
			Persona: strings.TrimSpace(d.Form.Persona), SystemPrompt: strings.TrimSpace(d.Form.Instructions),
			BusinessFunction: d.BusinessFunction}, d.PreviewChannel)
		keys, err := p.d.LLMKeys.List(ctx, tenant.ID)
		if err != nil {
			p.fail(c, err)
			return
		}
		for _, k := range keys {
			d.OwnKeys = append(d.OwnKeys, k.Label())
		}
		for _, m := range append(slices.Clone(p.d.Config.DefaultModels), commonModels...) {
			if !slices.Contains(d.Models, m) {
				d.Models = append(d.Models, m)
			}
		}
		if d.Form.Model != "" && !slices.Contains(d.Models, d.Form.Model) {
			d.Models = append([]string{d.Form.Model}, d.Models...)
		}
	case onboarding.StepTest:
		if prog.Agent != nil {
			d.Chat = p.chatFor(tenant, *prog.Agent, true)
		}
	}
	p.render(c, status, "onboarding", &Page{Title: "Set up " + tenant.Name, Section: "dashboard", Tenant: tenant,
		Crumbs: []Crumb{{"Setup", ""}}, Form: form, Data: d})
}

// setupSteps is the stepper's header, with step current highlighted.
func setupSteps(prog onboarding.Progress, current int) []stepView {
	var out []stepView
	for i, s := range stepTitles {
		n := i + 1
		out = append(out, stepView{N: n, Title: s.title, Short: s.short, Current: n == current,
			Done: []bool{prog.ChannelDone, prog.AgentDone, prog.TestDone}[i]})
	}
	return out
}

// previewChannel is the channel the agent's prompt preview is written for:
// the one the operator connected.
func previewChannel(prog onboarding.Progress) string {
	if prog.Channel == store.ChannelPortal {
		return ""
	}
	return prog.Channel
}

func agentOf(in agents.Input) store.Agent {
	return store.Agent{Name: in.Name, Role: in.Role, Persona: in.Persona, SystemPrompt: in.SystemPrompt, Models: in.Models}
}

func (p *Portal) onboarding(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	step, _ := strconv.Atoi(c.Query("step"))
	p.onboardingPage(c, tenant, step, http.StatusOK, nil, nil)
}

func onboardingURL(tenant *store.Tenant, step int) string {
	return "/t/" + tenant.ID.String() + "/onboarding?step=" + strconv.Itoa(step)
}

// onboardingSlack starts "Add to Slack" for the stepper's agent (creating it
// with the defaults when the organisation has none yet), coming back to the
// stepper.
func (p *Portal) onboardingSlack(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	a, err := p.d.Onboarding.EnsureAgent(c.Request.Context(), viewerOf(c).Principal, *tenant)
	if err != nil {
		p.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/slack/install?"+url.Values{"tenant_id": {tenant.ID.String()}, "agent_id": {a.ID.String()},
		"return_to": {onboardingURL(tenant, onboarding.StepAgent)}}.Encode())
}

// onboardingPortal does the channel step without a channel: the operator
// tries the agent in the portal first.
func (p *Portal) onboardingPortal(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	if err := p.d.Onboarding.TryPortalFirst(c.Request.Context(), tenant.ID); err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, onboardingURL(tenant, onboarding.StepAgent), "info",
		"You can connect Slack or WhatsApp later from the Channels page. Meanwhile your agent answers in the portal's test chat.")
}

// onboardingAgent saves the agent form.
func (p *Portal) onboardingAgent(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	f := onboarding.AgentForm{Name: c.PostForm("name"), Role: c.PostForm("role"), Persona: c.PostForm("persona"),
		Instructions: c.PostForm("system_prompt"), Model: c.PostForm("model")}
	a, err := p.d.Onboarding.SaveAgent(c.Request.Context(), viewerOf(c).Principal, *tenant, f)
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.onboardingPage(c, tenant, onboarding.StepAgent, http.StatusUnprocessableEntity,
			&Form{Errors: fields, Message: "Some fields need attention. Nothing was saved yet."}, &f)
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, onboardingURL(tenant, onboarding.StepTest), "success", a.Name+" is saved. Now say hello to it.")
	}
}

// onboardingFinish completes the setup once the agent has answered.
func (p *Portal) onboardingFinish(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	err := p.d.Onboarding.Finish(c.Request.Context(), viewerOf(c).Principal, tenant.ID)
	if e := apperr.From(err); err != nil && e.Status == http.StatusConflict {
		p.back(c, onboardingURL(tenant, onboarding.StepTest), "error", capitalise(e.Message)+".")
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String(), "success", tenant.Name+" is set up. Your agent is answering.")
}
