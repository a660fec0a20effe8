// Package workers registers workflows and activities on task queues.
package workers

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
	"github.com/konstruct/konstruct/workflows"
)

// Options tune the worker; zero values take the SDK's defaults.
type Options struct {
	WorkflowPollers  int
	MaxConcurrentWFT int
	StickyCacheSize  int
}

// NewConversationWorker registers ConversationWorkflow and its activities on
// taskQueue.
func NewConversationWorker(c client.Client, taskQueue string, acts *activities.Conversation, o Options) worker.Worker {
	if o.StickyCacheSize > 0 {
		worker.SetStickyWorkflowCacheSize(o.StickyCacheSize)
	}
	w := worker.New(c, taskQueue, worker.Options{
		MaxConcurrentWorkflowTaskPollers:       o.WorkflowPollers,
		MaxConcurrentWorkflowTaskExecutionSize: o.MaxConcurrentWFT,
	})
	w.RegisterWorkflowWithOptions(workflows.Conversation, workflow.RegisterOptions{Name: workflows.ConversationWorkflow})
	w.RegisterActivity(acts)
	return w
}
