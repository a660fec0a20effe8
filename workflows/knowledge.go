package workflows

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
)

// IngestWorkflow is the registered name of the knowledge ingestion workflow.
const IngestWorkflow = "KnowledgeIngest"

// The knowledge activities are registered with this prefix (workers), so
// they are called by name.
const (
	KnowledgeActivityPrefix = "Knowledge"
	actPrepare              = KnowledgeActivityPrefix + "Prepare"
	actEmbedBatch           = KnowledgeActivityPrefix + "EmbedBatch"
	actFinish               = KnowledgeActivityPrefix + "Finish"
)

// IngestID is the workflow ID of one version of a document: a double submit
// of a version starts one workflow, a new version its own.
func IngestID(tenantID, documentID string, version int) string {
	return "knowledge/" + tenantID + "/" + documentID + "/v" + strconv.Itoa(version)
}

// IngestOutput summarises an ingestion.
type IngestOutput struct {
	Status   string `json:"status"` // ready | failed | gone
	Total    int    `json:"total"`
	Reused   int    `json:"reused"`
	Embedded int    `json:"embedded"`
	Skipped  int    `json:"skipped"` // batches found already indexed
	Error    string `json:"error,omitempty"`
}

// ingestOptions: regular activities, so every completed step is in the
// history and a worker restart resumes after it. Embedding batches heartbeat,
// so a batch on a dead worker is retried elsewhere within HeartbeatTimeout.
// Retries are bounded: an embedder that stays down fails the document with
// the reason after about ten minutes, instead of leaving it "indexing"
// forever; retrying the document resumes from the batches already stored.
func ingestOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    14,
			NonRetryableErrorTypes: []string{"BadInput", activities.ErrDocumentUnreadable,
				activities.ErrEmbeddingRejected},
		},
	}
}

// Ingest extracts, chunks, embeds (in batches) and indexes one document
// version, recording progress on the document as it goes. A failure that
// retrying does not cure marks the document failed with the reason.
func Ingest(ctx workflow.Context, in activities.IngestInput) (IngestOutput, error) {
	if in.BatchSize <= 0 {
		in.BatchSize = activities.DefaultEmbedBatch
	}
	ctx = workflow.WithActivityOptions(ctx, ingestOptions())
	var out IngestOutput
	fail := func(err error) (IngestOutput, error) {
		out.Status, out.Error = "failed", reason(err)
		ferr := workflow.ExecuteActivity(ctx, actFinish, activities.FinishInput{IngestInput: in, Failed: true,
			Reason: out.Error}).Get(ctx, nil)
		if ferr != nil {
			return out, fmt.Errorf("ingest: record failure: %w", ferr)
		}
		return out, nil
	}
	var prep activities.PrepareOutput
	if err := workflow.ExecuteActivity(ctx, actPrepare, in).Get(ctx, &prep); err != nil {
		return fail(err)
	}
	if prep.Gone {
		out.Status = "gone"
		return out, nil
	}
	out.Total, out.Reused = prep.Total, prep.Reused
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	batches := (prep.Total + in.BatchSize - 1) / in.BatchSize
	for b := 0; b < batches; b++ {
		var eb activities.EmbedBatchOutput
		err := workflow.ExecuteActivity(ctx, actEmbedBatch, activities.EmbedBatchInput{IngestInput: in,
			WorkflowID: wfID, Batch: b}).Get(ctx, &eb)
		if err != nil {
			return fail(err)
		}
		if eb.Gone {
			out.Status = "gone"
			return out, nil
		}
		if eb.Embedded == 0 {
			out.Skipped++
		}
		out.Embedded += eb.Embedded
	}
	if err := workflow.ExecuteActivity(ctx, actFinish, activities.FinishInput{IngestInput: in}).Get(ctx, nil); err != nil {
		return out, fmt.Errorf("ingest: finish: %w", err)
	}
	out.Status = "ready"
	return out, nil
}

// reason is what an operator is told when a document fails: the
// application error's message, without Temporal's wrapping.
func reason(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Error()
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return "an ingestion step timed out repeatedly; retry"
	}
	return err.Error()
}

// IngestStarter starts ingestion workflows (knowledge.Ingester).
type IngestStarter struct {
	Client    client.Client
	TaskQueue string
}

// StartIngest starts a version's workflow, or finds it running: the ID
// conflict policy USE_EXISTING makes a double submit (or a retry while it
// still runs) start nothing new, and reuse ALLOW_DUPLICATE lets a retry of a
// finished (failed) run start a fresh one with the same ID.
func (s IngestStarter) StartIngest(ctx context.Context, tenantID, documentID uuid.UUID, version int) (string, error) {
	id := IngestID(tenantID.String(), documentID.String(), version)
	_, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(TenantIDKey.ValueSet(tenantID.String())),
	}, IngestWorkflow, activities.IngestInput{TenantID: tenantID.String(), DocumentID: documentID.String(), Version: version})
	if err != nil {
		return "", fmt.Errorf("workflows: start ingestion %s: %w", id, err)
	}
	return id, nil
}
