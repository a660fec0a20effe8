package portal

import (
	"net/http"
	"strconv"
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
	Steps                []onboardingStep // the setup's steps, until it is complete
	StepsDone            int
	SetupURL             string // where to continue the setup
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
	// Until the organisation is set up, the dashboard shows the setup
	// stepper's progress to whoever can continue it.
	if pg.Can("write", "agents") {
		prog, err := p.d.Onboarding.Get(ctx, tenant.ID)
		if err != nil {
			p.fail(c, err)
			return
		}
		if !prog.Completed {
			setup := "/t/" + tenant.ID.String() + "/onboarding?step="
			d.Steps = []onboardingStep{
				{Title: "Connect a channel", Text: "Add Konstruct to your Slack workspace or connect a WhatsApp number, or try the agent in the portal first.",
					URL: setup + "1", Action: "Connect", Done: prog.ChannelDone, Allowed: true},
				{Title: "Configure your agent", Text: "Its name, what it does and how it sounds, with a live preview of its instructions.",
					URL: setup + "2", Action: "Configure", Done: prog.AgentDone, Allowed: true},
				{Title: "Send a test message", Text: "Talk to it right here and watch the reply arrive.",
					URL: setup + "3", Action: "Try it", Done: prog.TestDone, Allowed: prog.Agent != nil},
			}
			d.StepsDone = prog.Done()
			d.SetupURL = setup + strconv.Itoa(prog.Next())
		}
	}
	p.render(c, http.StatusOK, "dashboard", pg)
}
