package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/platform"
	"github.com/konstruct/konstruct/workflows"
)

// A conversation is findable in Temporal by tenant; after the idle timeout
// its workflow ends and it is marked closed, in Postgres and in Temporal's
// search attributes; a later message in the thread resumes it with its history.
func TestConversationIsFindableClosesWhenIdleAndResumes(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_CONVERSATION_IDLE_TIMEOUT": "3s"}})
	echo(p)
	tn := p.NewTenant("Idle", platform.AgentSpec{Name: "Ida"})
	ts := platform.NewTS()
	body, _ := tn.Mention("C0IDLE", "U0ALICE", "first", ts, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	p.Slack.WaitForMessages(t, "C0IDLE", 1, replyTimeout)

	c := testkit.NewTemporal(t)
	ctx := context.Background()
	id := workflows.ConversationID(tn.ID, "slack", workflows.SlackKey(tn.TeamID, "C0IDLE", ts))
	query := func(status string) func() bool {
		return func() bool {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: fmt.Sprintf("TenantId = '%s' AND Channel = 'slack' AND AgentId = '%s' AND ConversationStatus = '%s'", tn.ID, tn.AgentID, status)})
			return err == nil && len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == id
		}
	}
	require.Eventually(t, query("active"), 15*time.Second, 200*time.Millisecond, "the running conversation is listed by tenant")
	require.Eventually(t, query("closed"), 30*time.Second, 200*time.Millisecond, "the idle conversation closed")

	var convs struct {
		Conversations []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"conversations"`
	}
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &convs)
	require.Len(t, convs.Conversations, 1)
	require.Equal(t, "closed", convs.Conversations[0].Status)

	// The thread resumes: a new run of the same workflow, with the history.
	p.LLM.Reset()
	body, _ = tn.Mention("C0IDLE", "U0ALICE", "second", platform.NewTS(), ts)
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "C0IDLE", 2, replyTimeout)
	require.Equal(t, "echo: second", msgs[1].Text)
	reqs := p.LLM.Requests()
	require.Len(t, reqs, 1)
	var history []string
	for _, m := range reqs[0].Messages {
		history = append(history, m.Role+": "+m.Content)
	}
	require.Equal(t, []string{"user: first", "assistant: echo: first", "user: second"}, history)
	require.Eventually(t, query("active"), 15*time.Second, 200*time.Millisecond, "the resumed conversation is active again")
	p.MustDo(http.MethodGet, "/api/v1/tenants/"+tn.ID+"/conversations", p.AdminToken, nil, http.StatusOK, &convs)
	require.Equal(t, "active", convs.Conversations[0].Status)
}
