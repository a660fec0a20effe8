package portal

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/store"
)

type channelListData struct {
	Channels   []store.ChannelConnection
	AgentNames map[string]string
	HasAgents  bool
	PublicURL  string
}

func (p *Portal) channelList(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	d := channelListData{AgentNames: map[string]string{}, PublicURL: p.d.Config.PublicURL}
	err := p.d.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		list, err := tx.ListAgents(ctx)
		if err != nil {
			return err
		}
		d.HasAgents = len(list) > 0
		for _, a := range list {
			d.AgentNames[a.ID.String()] = a.Name
		}
		chans, err := tx.ListChannels(ctx)
		for _, ch := range chans {
			ch.Secret = nil // the template never needs it
			d.Channels = append(d.Channels, ch)
		}
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, http.StatusOK, "channels", &Page{Title: "Channels", Section: "channels", Tenant: tenant, Data: &d})
}

func (p *Portal) channelDelete(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "channel_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	ch, err := p.d.Designer.DisconnectChannel(c.Request.Context(), viewerOf(c).Principal, tenant.ID, id)
	if err != nil {
		p.fail(c, err)
		return
	}
	name := ch.DisplayName
	if name == "" {
		name = ch.ExternalID
	}
	p.back(c, "/t/"+tenant.ID.String()+"/channels", "success", channelLabel(ch.Kind)+" "+name+" was disconnected. Its messages no longer reach your agents.")
}
