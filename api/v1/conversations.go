package v1

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

type conversationJSON struct {
	ID             string `json:"id"`
	TenantID       string `json:"tenant_id"`
	AgentID        string `json:"agent_id"`
	Channel        string `json:"channel"`
	ExternalKey    string `json:"external_key"`
	WorkflowID     string `json:"workflow_id"`
	WorkflowURL    string `json:"workflow_url"`
	UserRef        string `json:"user_ref"`
	Status         string `json:"status"`
	Turns          int    `json:"turns"`
	CreatedAt      string `json:"created_at"`
	LastActivityAt string `json:"last_activity_at"`
}

// WorkflowURL links a conversation to its history in the Temporal Web UI.
func WorkflowURL(uiBase, namespace, workflowID string) string {
	return uiBase + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
}

func (a *API) conversationOut(cv store.Conversation) conversationJSON {
	return conversationJSON{ID: cv.ID.String(), TenantID: cv.TenantID.String(), AgentID: cv.AgentID.String(),
		Channel: cv.Channel, ExternalKey: cv.ExternalKey, WorkflowID: cv.WorkflowID,
		WorkflowURL: WorkflowURL(a.TemporalUIURL, a.Namespace, cv.WorkflowID), UserRef: cv.UserRef, Status: cv.Status,
		Turns: cv.Turns, CreatedAt: ts(cv.CreatedAt), LastActivityAt: ts(cv.LastActivityAt)}
}

type messageJSON struct {
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	Turn           int    `json:"turn"`
	Role           string `json:"role"`
	Content        string `json:"content"`
	Author         string `json:"author"`
	Provider       string `json:"provider,omitempty"`
	Model          string `json:"model,omitempty"`
	CreatedAt      string `json:"created_at"`
}

func messageOut(m store.Message) messageJSON {
	return messageJSON{ID: m.ID.String(), ConversationID: m.ConversationID.String(), Turn: m.Turn, Role: m.Role,
		Content: m.Content, Author: m.Author, Provider: m.Provider, Model: m.Model, CreatedAt: ts(m.CreatedAt)}
}

func (a *API) listConversations(c *gin.Context) error {
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
	var out []conversationJSON
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(c.Request.Context(), tx, tenantID); err != nil {
			return err
		}
		list, err := tx.ListConversations(c.Request.Context(), limit)
		for _, cv := range list {
			out = append(out, a.conversationOut(cv))
		}
		return err
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"conversations": nonNilSlice(out)})
	return nil
}

func (a *API) getConversation(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	id, err := pathID(c, "conversation_id", "conversation")
	if err != nil {
		return err
	}
	var cv store.Conversation
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		cv, err = tx.GetConversation(c.Request.Context(), id)
		return err
	})
	if err != nil {
		return notFoundAs(err, "conversation")
	}
	c.JSON(http.StatusOK, a.conversationOut(cv))
	return nil
}

func (a *API) listMessages(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	id, err := pathID(c, "conversation_id", "conversation")
	if err != nil {
		return err
	}
	var out []messageJSON
	err = a.Store.WithTenant(c.Request.Context(), tenantID, func(tx *store.Tx) error {
		if _, err := tx.GetConversation(c.Request.Context(), id); err != nil {
			return notFoundAs(err, "conversation")
		}
		list, err := tx.ListMessages(c.Request.Context(), id)
		// A turn's user message and reply are often recorded in one
		// transaction, so they share created_at and the store's order
		// between them is arbitrary: within a turn, the user speaks first.
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].Turn != list[j].Turn {
				return list[i].Turn < list[j].Turn
			}
			return list[i].Role == "user" && list[j].Role != "user"
		})
		for _, m := range list {
			out = append(out, messageOut(m))
		}
		return err
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"messages": nonNilSlice(out)})
	return nil
}
