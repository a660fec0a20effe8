package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
	"github.com/konstruct/konstruct/internal/tools/httptool"
)

// ToolSpec tells the workflow how to run a tool: a tool with side effects
// runs as its own (regular) activity with its timeout and retry policy.
type ToolSpec struct {
	Name        string        `json:"name"`
	SideEffects bool          `json:"side_effects,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	MaxAttempts int           `json:"max_attempts,omitempty"`
}

func specOf(t *tools.Tool) ToolSpec {
	return ToolSpec{Name: t.Name, SideEffects: t.SideEffects, Timeout: t.EffectiveTimeout(), MaxAttempts: t.EffectiveMaxAttempts()}
}

// ErrToolFailed is the type of a side-effect tool's retryable failure.
const ErrToolFailed = "ToolFailed"

// loadHTTPTools returns the agent's enabled declared tools, opened and built.
// A tool whose headers cannot be opened (the key was lost) is left out and
// logged rather than failing the turn.
func (a *Conversation) loadHTTPTools(ctx context.Context, tx *store.Tx, tenantID, agentID uuid.UUID) ([]*tools.Tool, error) {
	if a.HTTPTools == nil {
		return nil, nil
	}
	decls, err := tx.ListHTTPTools(ctx, agentID)
	if err != nil {
		return nil, err
	}
	var out []*tools.Tool
	for _, d := range decls {
		if !d.Enabled {
			continue
		}
		t, err := a.buildHTTPTool(tenantID, d)
		if err != nil {
			a.Logger.WarnContext(ctx, "declared tool left out", "tool", d.Name, "error", err)
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func (a *Conversation) buildHTTPTool(tenantID uuid.UUID, d store.HTTPTool) (*tools.Tool, error) {
	var headers map[string]string
	if len(d.Headers) > 0 {
		plain, err := a.Secrets.Open(d.Headers, store.HTTPToolHeadersAAD(tenantID, d.AgentID, d.ID))
		if err != nil {
			return nil, fmt.Errorf("open headers: %w", err)
		}
		if err := json.Unmarshal(plain, &headers); err != nil {
			return nil, fmt.Errorf("decode headers: %w", err)
		}
	}
	return httptool.Tool(d, headers, a.HTTPTools)
}

// resolveTool finds the tool the model named: a built-in one, or one the
// operator declared for this agent.
func (a *Conversation) resolveTool(ctx context.Context, inv tools.Invocation, name string) (*tools.Tool, error) {
	if t, ok := a.Tools.Get(name); ok {
		return t, nil
	}
	if a.HTTPTools == nil {
		return nil, nil
	}
	var decl store.HTTPTool
	err := a.Store.WithTenant(ctx, inv.TenantID, func(tx *store.Tx) error {
		var err error
		decl, err = tx.GetHTTPToolByName(ctx, inv.AgentID, name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("activities: tool %s: %w", name, err)
	}
	if !decl.Enabled {
		return nil, nil
	}
	return a.buildHTTPTool(inv.TenantID, decl)
}

// toolOutcome classifies a call for the audit trail.
func toolOutcome(err error) string {
	var argErr *tools.ArgumentError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &argErr):
		return "invalid_arguments"
	case httptool.IsRefused(err):
		return "refused"
	}
	return "error"
}

// retryable reports whether another attempt may help: not for arguments the
// model must correct, nor for a destination the guard refuses.
func retryable(err error) bool {
	o := toolOutcome(err)
	return o == "error"
}

// auditTool records one tool call, once per idempotency key.
func (a *Conversation) auditTool(ctx context.Context, tx *store.Tx, inv tools.Invocation, in ToolInput, t *tools.Tool,
	res tools.Result, outcome, content string, dur time.Duration, attempts int) error {
	if inv.WorkflowID == "" {
		return nil // a call from a history recorded before the invocation contract
	}
	data := map[string]any{
		"tool": in.Call.Name, "arguments": json.RawMessage(nonEmptyJSON(in.Call.Arguments)), "outcome": outcome,
		"result": summary(content, 500), "result_bytes": len(content), "duration_ms": dur.Milliseconds(),
		"turn": inv.Turn, "call": inv.Call, "attempts": attempts,
	}
	if !json.Valid(in.Call.Arguments) {
		data["arguments"] = string(in.Call.Arguments)
	}
	if t != nil {
		data["side_effects"] = t.SideEffects
	}
	if res.Data != nil {
		data["data"] = res.Data
	}
	e := store.AuditEvent{Actor: "agent:" + inv.AgentID.String(), Action: store.AuditToolCall, TargetType: "tool",
		TargetID: in.Call.Name, AgentID: &inv.AgentID, WorkflowID: inv.WorkflowID, IdempotencyKey: inv.IdempotencyKey, Data: data}
	if inv.ConversationID != uuid.Nil {
		e.ConversationID = &inv.ConversationID
	}
	return tx.AppendAudit(ctx, e)
}

func nonEmptyJSON(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage(`{}`)
	}
	return b
}

func summary(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// runTool resolves and runs one read-only tool, retrying a failing run up to
// the tool's MaxAttempts inside this (local) activity.
func (a *Conversation) runTool(ctx context.Context, in ToolInput) (ToolOutput, error) {
	inv, err := invocation(in)
	if err != nil {
		return ToolOutput{}, err
	}
	var t *tools.Tool
	if slices.Contains(in.Allowed, in.Call.Name) {
		if t, err = a.resolveTool(ctx, inv, in.Call.Name); err != nil {
			return ToolOutput{}, err
		}
	}
	if t == nil {
		// A name the model made up (or a tool switched off since): audited,
		// and the model is told which tools it has.
		out := ToolOutput{Content: fmt.Sprintf("there is no tool named %q for this assistant; use one of: %s",
			in.Call.Name, strings.Join(in.Allowed, ", ")), IsError: true}
		if err := a.Store.WithTenant(ctx, inv.TenantID, func(tx *store.Tx) error {
			return a.auditTool(ctx, tx, inv, in, nil, tools.Result{}, "unknown_tool", out.Content, 0, 1)
		}); err != nil {
			return ToolOutput{}, fmt.Errorf("activities: run tool: audit: %w", err)
		}
		return out, nil
	}
	start := time.Now()
	var res tools.Result
	attempts := 0
	for attempts < t.EffectiveMaxAttempts() {
		attempts++
		callCtx, cancel := context.WithTimeout(ctx, t.EffectiveTimeout())
		res, err = t.Invoke(callCtx, inv, in.Call.Arguments)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempts) * 100 * time.Millisecond):
		}
	}
	out := ToolOutput{Content: res.Content}
	if err != nil {
		out = ToolOutput{Content: err.Error(), IsError: true}
	} else if t.Name == tools.EscalateToHumanTool {
		out.Handoff, _ = tools.EscalationReason(in.Call.Arguments)
	}
	if aerr := a.Store.WithTenant(ctx, inv.TenantID, func(tx *store.Tx) error {
		return a.auditTool(ctx, tx, inv, in, t, res, toolOutcome(err), out.Content, time.Since(start), attempts)
	}); aerr != nil {
		return ToolOutput{}, fmt.Errorf("activities: run tool: audit: %w", aerr)
	}
	return out, nil
}

// RunSideEffectTool runs a tool with side effects exactly once per call,
// whatever the retries: the call's key (workflow, turn, call index) is
// claimed in Postgres before the tool runs and completed with its result; a
// retry that finds the call done returns the stored result without calling
// again. A retry that finds it pending (the worker died mid-call) calls
// again with the same key — an HTTP tool sends it as Idempotency-Key, so the
// remote dedupes a request that was in flight. It runs as a regular activity
// with the tool's own timeout and retry policy; a call that fails for good is
// an error result for the model, not a failure of the turn.
func (a *Conversation) RunSideEffectTool(ctx context.Context, in ToolInput) (ToolOutput, error) {
	ctx = logCtx(ctx, in.TenantID, in.WorkflowID)
	inv, err := invocation(in)
	if err != nil {
		return ToolOutput{}, err
	}
	if inv.IdempotencyKey == "" {
		return ToolOutput{}, temporal.NewNonRetryableApplicationError("a side-effect tool needs its workflow, turn and call index", "BadInput", nil)
	}
	if !slices.Contains(in.Allowed, in.Call.Name) {
		return ToolOutput{Content: fmt.Sprintf("the tool %q is not enabled for this assistant", in.Call.Name), IsError: true}, nil
	}
	t, err := a.resolveTool(ctx, inv, in.Call.Name)
	if err != nil {
		return ToolOutput{}, err
	}
	if t == nil {
		return ToolOutput{Content: fmt.Sprintf("there is no tool named %q", in.Call.Name), IsError: true}, nil
	}
	var claim store.ToolCall
	err = a.Store.WithTenant(ctx, inv.TenantID, func(tx *store.Tx) error {
		var err error
		claim, err = tx.ClaimToolCall(ctx, inv.IdempotencyKey, in.Call.Name)
		return err
	})
	if err != nil {
		return ToolOutput{}, fmt.Errorf("activities: side-effect tool: claim: %w", err)
	}
	if claim.Status == "done" {
		a.Logger.InfoContext(ctx, "tool call already completed; returning its result", "key", inv.IdempotencyKey)
		return ToolOutput{Content: claim.Content, IsError: claim.IsError}, nil
	}
	if claim.Attempts > 1 {
		a.Logger.InfoContext(ctx, "tool call retried after an attempt that did not complete", "key", inv.IdempotencyKey,
			"attempts", claim.Attempts)
	}
	start := time.Now()
	res, err := t.Invoke(ctx, inv, in.Call.Arguments)
	attempt := int(activity.GetInfo(ctx).Attempt)
	if err != nil && retryable(err) && attempt < t.EffectiveMaxAttempts() {
		return ToolOutput{}, temporal.NewApplicationErrorWithCause(in.Call.Name+" failed (attempt "+strconv.Itoa(attempt)+")", ErrToolFailed, err)
	}
	out, outcome := ToolOutput{Content: res.Content}, toolOutcome(err)
	if err != nil {
		out = ToolOutput{Content: err.Error(), IsError: true}
	}
	err = a.Store.WithTenant(ctx, inv.TenantID, func(tx *store.Tx) error {
		if err := tx.CompleteToolCall(ctx, inv.IdempotencyKey, out.Content, out.IsError); err != nil {
			return err
		}
		return a.auditTool(ctx, tx, inv, in, t, res, outcome, out.Content, time.Since(start), claim.Attempts)
	})
	if err != nil {
		return ToolOutput{}, fmt.Errorf("activities: side-effect tool: complete: %w", err)
	}
	return out, nil
}
