package workflows

import (
	"bytes"
	"context"
	"fmt"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// FetchHistory returns a workflow's history as Temporal's JSON, the format
// `temporal workflow show --output json` writes and the replayer reads.
func FetchHistory(ctx context.Context, c client.Client, workflowID, runID string) ([]byte, error) {
	var h historypb.History
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("workflows: fetch history of %s: %w", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&h)
	if err != nil {
		return nil, fmt.Errorf("workflows: encode history: %w", err)
	}
	return b, nil
}

// Replay runs the current workflow code over a recorded history and fails if
// the code would make different decisions: the check that a change to
// ConversationWorkflow is safe for conversations already running (or needs
// workflow.GetVersion).
func Replay(historyJSON []byte) error {
	h, err := client.HistoryFromJSON(bytes.NewReader(historyJSON), client.HistoryJSONOptions{})
	if err != nil {
		return fmt.Errorf("workflows: decode history: %w", err)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Conversation, workflow.RegisterOptions{Name: ConversationWorkflow})
	r.RegisterWorkflowWithOptions(Ingest, workflow.RegisterOptions{Name: IngestWorkflow})
	if err := r.ReplayWorkflowHistory(nil, h); err != nil {
		return fmt.Errorf("workflows: replay: %w", err)
	}
	return nil
}
