package portal

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/store"
)

type dashboardData struct {
	Agents, ActiveAgents int
	Channels             int
	Members              int
	PendingInvites       int
	Conversations        store.ConversationCounts
	Usage                store.UsageTotals
	Recent               []store.Conversation
	AgentNames           map[string]string
	AgentList            []store.Agent
	Steps                []onboardingStep
	StepsDone            int
}

type onboardingStep struct {
	Title, Text, URL, Action string
	Done                     bool
	Allowed                  bool
}

// dashboard is a tenant's home: what is running, what it costs, what to do next.
func (p *Portal) dashboard(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	d := dashboardData{AgentNames: map[string]string{}}
	err := p.d.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		list, err := tx.ListAgents(ctx)
		if err != nil {
			return err
		}
		d.Agents = len(list)
		d.AgentList = list
		if len(d.AgentList) > 6 {
			d.AgentList = d.AgentList[:6]
		}
		for _, a := range list {
			d.AgentNames[a.ID.String()] = a.Name
			if a.Status == store.AgentActive {
				d.ActiveAgents++
			}
		}
		chans, err := tx.ListChannels(ctx)
		if err != nil {
			return err
		}
		d.Channels = len(chans)
		users, err := tx.ListUsers(ctx)
		if err != nil {
			return err
		}
		d.Members = len(users)
		invs, err := tx.ListOpenInvitations(ctx)
		if err != nil {
			return err
		}
		d.PendingInvites = len(invs)
		if d.Conversations, err = tx.CountConversations(ctx); err != nil {
			return err
		}
		if d.Usage, err = tx.SumUsage(ctx, time.Now().AddDate(0, 0, -30)); err != nil {
			return err
		}
		d.Recent, err = tx.ListConversations(ctx, 6)
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	pg := &Page{Title: "Dashboard", Section: "dashboard", Tenant: tenant, Data: &d}
	p.fill(c, pg)
	base := "/t/" + tenant.ID.String()
	d.Steps = []onboardingStep{
		{Title: "Design your first agent", Text: "Give it a name, a role, instructions and the models it may use.",
			URL: base + "/agents/new", Action: "Design an agent", Done: d.Agents > 0, Allowed: pg.Can("write", "agents")},
		{Title: "Connect a channel", Text: "Route a Slack workspace or WhatsApp number to an agent so people can talk to it.",
			URL: base + "/channels", Action: "See channels", Done: d.Channels > 0, Allowed: pg.Can("read", "channels")},
		{Title: "Invite your team", Text: "Add admins who design agents and operators who watch conversations.",
			URL: base + "/users", Action: "Invite people", Done: d.Members > 1 || d.PendingInvites > 0, Allowed: pg.Can("write", "invitations")},
	}
	for _, s := range d.Steps {
		if s.Done {
			d.StepsDone++
		}
	}
	p.render(c, http.StatusOK, "dashboard", pg)
}
