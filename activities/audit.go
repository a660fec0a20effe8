package activities

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"

	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

// Outcomes of an llm.call audit event.
const (
	AuditOutcomeOK     = "ok"
	AuditOutcomeFailed = "failed"
)

// attemptsData lists every chain entry the pool tried, in order: the
// fallbacks taken and why.
func attemptsData(attempts []llm.Attempt) []map[string]any {
	out := make([]map[string]any, 0, len(attempts))
	for _, at := range attempts {
		m := map[string]any{"provider": at.Provider, "model": at.Model, "outcome": at.Outcome,
			"duration_ms": at.Duration.Milliseconds()}
		if at.Err != "" {
			m["error"] = at.Err
		}
		if at.Skipped {
			m["skipped"] = true
		}
		if at.KeySource == llm.KeyTenant {
			m["key_source"] = at.KeySource
		}
		out = append(out, m)
	}
	return out
}

// llmCallAudit is the llm.call event of a model that answered, keyed like its
// usage row so a retried Respond records it once.
func llmCallAudit(in RespondInput, agentID, convID uuid.UUID, resp llm.Response, latency time.Duration) store.AuditEvent {
	e := store.AuditEvent{Actor: "agent:" + agentID.String(), Action: store.AuditLLMCall,
		TargetType: "model", TargetID: resp.Provider + "/" + resp.Model,
		AgentID: &agentID, ConversationID: &convID, WorkflowID: in.WorkflowID,
		IdempotencyKey: store.AuditKeyLLM(in.WorkflowID, in.Turn, in.Call),
		Data: map[string]any{"outcome": AuditOutcomeOK, "turn": in.Turn, "call": in.Call,
			"provider": resp.Provider, "model": resp.Model, "stop_reason": resp.StopReason,
			"input_tokens": resp.Usage.InputTokens, "output_tokens": resp.Usage.OutputTokens,
			"cost_micro_usd": resp.CostMicroUSD, "latency_ms": latency.Milliseconds(),
			"tool_calls": len(resp.ToolCalls), "fallbacks": max(len(resp.Attempts)-1, 0),
			"key_source": resp.KeySource, "attempts": attemptsData(resp.Attempts)}}
	if len(in.Media) > 0 {
		e.Data["images"] = len(in.Media) // the turn's images, given to the model (or their text, to one that cannot see)
	}
	return e
}

// recordFailedCall records a chain that produced no answer. Each activity
// attempt is its own event (keyed by the attempt number, so a retry of the
// write within one attempt cannot double it): an operator sees every outage
// the user waited through, not only the last. It is best effort: the model's
// error is what the activity reports, whatever happens here.
func (a *Conversation) recordFailedCall(ctx context.Context, in RespondInput, tenantID, agentID, convID uuid.UUID, callErr error) {
	if ctx.Err() != nil || !activity.IsActivity(ctx) {
		return // cancelled (timeout, shutdown): not a verdict on the chain
	}
	var lerr *llm.Error
	var attempts []llm.Attempt
	if errors.As(callErr, &lerr) {
		attempts = lerr.Attempts
	}
	n := activity.GetInfo(ctx).Attempt
	e := store.AuditEvent{Actor: "agent:" + agentID.String(), Action: store.AuditLLMCall, TargetType: "model",
		AgentID: &agentID, ConversationID: &convID, WorkflowID: in.WorkflowID,
		IdempotencyKey: store.AuditKeyLLM(in.WorkflowID, in.Turn, in.Call) + ":failed:" + strconv.Itoa(int(n)),
		Data: map[string]any{"outcome": AuditOutcomeFailed, "turn": in.Turn, "call": in.Call,
			"activity_attempt": n, "error_kind": llm.KindOf(callErr).String(), "error": callErr.Error(),
			"fallbacks": max(len(attempts)-1, 0), "attempts": attemptsData(attempts)}}
	err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.AppendAudit(ctx, e) })
	if err != nil {
		a.Logger.WarnContext(ctx, "audit of a failed model call not recorded", "err", err)
	}
}
