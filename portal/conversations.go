package portal

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/store"
)

type conversationListData struct {
	Conversations []store.Conversation
	AgentNames    map[string]string
	Agents        []store.Agent
	Counts        store.ConversationCounts
	Status        string
	AgentID       string
}

var conversationStatuses = map[string]bool{"": true, store.ConversationActive: true, store.ConversationEscalated: true, store.ConversationClosed: true}

func (p *Portal) conversationList(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	d := conversationListData{AgentNames: map[string]string{}, Status: c.Query("status"), AgentID: c.Query("agent")}
	if !conversationStatuses[d.Status] {
		d.Status = ""
	}
	f := store.ConversationFilter{Status: d.Status, Limit: 200}
	if id, err := uuid.Parse(d.AgentID); err == nil {
		f.AgentID = id
	} else {
		d.AgentID = ""
	}
	err := p.d.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		var err error
		if d.Agents, err = tx.ListAgents(ctx); err != nil {
			return err
		}
		for _, a := range d.Agents {
			d.AgentNames[a.ID.String()] = a.Name
		}
		if d.Counts, err = tx.CountConversations(ctx); err != nil {
			return err
		}
		d.Conversations, err = tx.FilterConversations(ctx, f)
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	p.render(c, http.StatusOK, "conversations/list", &Page{Title: "Conversations", Section: "conversations", Tenant: tenant, Data: &d})
}

type transcriptData struct {
	Conversation store.Conversation
	Agent        *store.Agent
	Messages     []store.Message
	Sources      map[int][]store.Source    // by turn: the chunks kb_search gave the model
	Images       map[int][]transcriptImage // by turn: the images the user sent
}

func (p *Portal) conversationShow(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	id, ok := pathUUID(c, "conversation_id")
	if !ok {
		p.notFoundPage(c)
		return
	}
	ctx := c.Request.Context()
	var d transcriptData
	err := p.d.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		var err error
		if d.Conversation, err = tx.GetConversation(ctx, id); err != nil {
			return err
		}
		if a, err := tx.GetAgent(ctx, d.Conversation.AgentID); err == nil {
			d.Agent = &a
		}
		if d.Messages, err = tx.ListMessages(ctx, id); err != nil {
			return err
		}
		if d.Sources, err = turnSources(ctx, tx, id); err != nil {
			return err
		}
		d.Images, err = turnImages(ctx, tx, tenant.ID, id)
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	title := "Conversation " + shortID(id.String())
	p.render(c, http.StatusOK, "conversations/show", &Page{Title: title, Section: "conversations", Tenant: tenant,
		Crumbs: []Crumb{{"Conversations", "/t/" + tenant.ID.String() + "/conversations"}, {title, ""}}, Data: &d})
}
