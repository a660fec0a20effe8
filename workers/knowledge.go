package workers

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/workflows"
)

// RegisterKnowledge adds the knowledge ingestion workflow and its activities
// to a worker. It shares the conversation task queue: ingestion is rare and
// bursty, and one queue keeps one worker fleet to run and scale.
func RegisterKnowledge(w worker.Worker, acts *activities.Knowledge) {
	w.RegisterWorkflowWithOptions(workflows.Ingest, workflow.RegisterOptions{Name: workflows.IngestWorkflow})
	// Prefixed ("KnowledgePrepare", ...), so no method name can collide with
	// the conversation's activities on the shared queue.
	w.RegisterActivityWithOptions(acts, activity.RegisterOptions{Name: workflows.KnowledgeActivityPrefix})
}
