package e2e

import (
	"net/http"
	"testing"

	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// auditEvent is an event as GET .../audit lists it.
type auditEvent struct {
	Type           string         `json:"type"`
	AgentID        string         `json:"agent_id"`
	ConversationID string         `json:"conversation_id"`
	WorkflowID     string         `json:"workflow_id"`
	Data           map[string]any `json:"data"`
}

// llmCalls lists a tenant's llm.call audit events, newest first.
func llmCalls(t *testing.T, p *platform.Platform, tn platform.Tenant) []auditEvent {
	t.Helper()
	var out struct {
		Events []auditEvent `json:"events"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/audit?type=llm.call&limit=500", p.AdminToken, nil, http.StatusOK, &out)
	return out.Events
}

// outcomes counts events by data.outcome.
func outcomes(events []auditEvent) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		o, _ := e.Data["outcome"].(string)
		out[o]++
	}
	return out
}
