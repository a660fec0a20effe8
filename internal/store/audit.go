package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Action names of the agent's own work (the audit API's `type` filter). The
// portal's and accounts' actions ("agent.create", "auth.sign_in", ...) are
// spelled where they are recorded.
const (
	AuditLLMCall          = "llm.call"
	AuditEmbeddingCall    = "embedding.call"
	AuditToolCall         = "tool.call"
	AuditMemoryForget     = "memory.forget"
	AuditKnowledgeCreate  = "knowledge.create"
	AuditKnowledgeReplace = "knowledge.replace"
	AuditKnowledgeDelete  = "knowledge.delete"
	AuditKnowledgeRetry   = "knowledge.retry"
	// The handoff steps are AuditEscalation* (escalations.go).
)

// Idempotency keys of the agent's events: a retried activity computes the
// same key, so it records its event once.

// AuditKeyLLM keys the call-th LLM call of a turn.
func AuditKeyLLM(workflowID string, turn, call int) string {
	return workflowID + ":" + strconv.Itoa(turn) + ":llm:" + strconv.Itoa(call)
}

// AuditKeyEmbed keys the n-th embedding call of a turn.
func AuditKeyEmbed(workflowID string, turn, n int) string {
	return workflowID + ":" + strconv.Itoa(turn) + ":embed:" + strconv.Itoa(n)
}

// AuditKeyTool keys the call-th tool call of a turn (its index, never the model's tool_call_id).
func AuditKeyTool(workflowID string, turn, call int) string {
	return workflowID + ":" + strconv.Itoa(turn) + ":tool:" + strconv.Itoa(call)
}

// AuditKeyIngestEmbed keys one embedding batch of an ingestion workflow.
func AuditKeyIngestEmbed(ingestWorkflowID string, batch int) string {
	return ingestWorkflowID + ":embed:" + strconv.Itoa(batch)
}

// Payload bounds. A Data payload whose JSON exceeds AuditDataLimit is stored
// truncated: each top-level field whose JSON exceeds AuditFieldLimit becomes
// {"truncated": true, "sha256", "bytes", "preview"}, and the event's data gets
// "truncated": true with the sha256 and size of the whole original JSON. If
// that is still too big, the whole payload becomes such a summary.
const (
	AuditDataLimit    = 16 << 10
	AuditFieldLimit   = 2 << 10
	AuditPreviewLimit = 1 << 10
)

// AuditEvent is one entry of the append-only audit trail.
type AuditEvent struct {
	ID             int64
	TenantID       *uuid.UUID // nil for platform-level events
	Actor          string     // "user:<id>", "system", "slack:<user>", "agent:<id>"
	Action         string     // "agent.create", "auth.token", store.AuditLLMCall, ...
	TargetType     string
	TargetID       string
	AgentID        *uuid.UUID
	ConversationID *uuid.UUID
	WorkflowID     string
	// IdempotencyKey, when set, makes AppendAudit write the event once per
	// tenant and key (see AuditKeyLLM and friends).
	IdempotencyKey string
	Data           map[string]any
	CreatedAt      time.Time
}

// AppendAudit adds an event. In a tenant transaction the event belongs to it.
// An event whose IdempotencyKey is already recorded in its tenant writes
// nothing and is no error. A Data payload over AuditDataLimit is truncated.
func (t *Tx) AppendAudit(ctx context.Context, e AuditEvent) error {
	if t.tenantID != uuid.Nil {
		tid := t.tenantID
		e.TenantID = &tid
	}
	data, err := auditData(e.Data)
	if err != nil {
		return fmt.Errorf("store: append audit %s: data: %w", e.Action, err)
	}
	var key *string
	if e.IdempotencyKey != "" {
		key = &e.IdempotencyKey
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO audit_events (tenant_id, actor, action, target_type, target_id,
			agent_id, conversation_id, workflow_id, idempotency_key, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
		e.TenantID, e.Actor, e.Action, e.TargetType, e.TargetID, e.AgentID, e.ConversationID, e.WorkflowID, key, data)
	if err != nil {
		return fmt.Errorf("store: append audit %s: %w", e.Action, mapErr(err))
	}
	return nil
}

// auditData encodes d as JSON within AuditDataLimit.
func auditData(d map[string]any) ([]byte, error) {
	if d == nil {
		return []byte("{}"), nil
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	if len(raw) <= AuditDataLimit {
		return raw, nil
	}
	sum := sha256.Sum256(raw)
	out := make(map[string]any, len(d)+3)
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := json.Marshal(d[k])
		if err != nil {
			return nil, err
		}
		if len(v) > AuditFieldLimit {
			out[k] = truncatedSummary(v, d[k])
		} else {
			out[k] = json.RawMessage(v)
		}
	}
	out["truncated"], out["sha256"], out["bytes"] = true, hex.EncodeToString(sum[:]), len(raw)
	bounded, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if len(bounded) <= AuditDataLimit {
		return bounded, nil
	}
	return json.Marshal(truncatedSummary(raw, nil))
}

// truncatedSummary stands in for a value too big to keep: its hash, size and
// the beginning of it (of the text itself for a string, else of its JSON).
func truncatedSummary(encoded []byte, v any) map[string]any {
	sum := sha256.Sum256(encoded)
	preview := string(encoded)
	if s, ok := v.(string); ok {
		preview = s
	}
	return map[string]any{"truncated": true, "sha256": hex.EncodeToString(sum[:]), "bytes": len(encoded),
		"preview": cutUTF8(preview, AuditPreviewLimit)}
}

// cutUTF8 shortens s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

const auditColumns = `id, tenant_id, actor, action, target_type, target_id, agent_id, conversation_id,
	workflow_id, coalesce(idempotency_key, ''), data, created_at`

func scanAudit(r pgx.Row) (AuditEvent, error) {
	var e AuditEvent
	err := r.Scan(&e.ID, &e.TenantID, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &e.AgentID, &e.ConversationID,
		&e.WorkflowID, &e.IdempotencyKey, &e.Data, &e.CreatedAt)
	return e, err
}

// ListAudit returns the newest events visible in this scope.
func (t *Tx) ListAudit(ctx context.Context, limit int) ([]AuditEvent, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return t.ListAuditEvents(ctx, AuditFilter{Limit: limit})
}

// AuditCursor is a position in the newest-first order of the trail.
type AuditCursor struct {
	CreatedAt time.Time
	ID        int64
}

// CursorOf is the position of e: a listing after it starts with the next older event.
func CursorOf(e AuditEvent) AuditCursor { return AuditCursor{CreatedAt: e.CreatedAt, ID: e.ID} }

// AuditFilter selects events; zero fields select everything.
type AuditFilter struct {
	From, To time.Time // From ≤ created_at < To
	// Types are exact actions ("llm.call") or prefixes ending in "."
	// ("knowledge."), OR'd together.
	Types          []string
	AgentID        *uuid.UUID
	ConversationID *uuid.UUID
	After          *AuditCursor // only events older than this position
	Limit          int          // 0: no limit
}

// TypeIsPrefix tells whether a type filter names a family of actions ("llm.").
func TypeIsPrefix(typ string) bool { return strings.HasSuffix(typ, ".") }

// query builds the SELECT for f, newest first.
func (f AuditFilter) query(tenantID uuid.UUID) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// RLS already restricts the rows; naming the tenant lets the planner use
	// the (tenant_id, ...) indexes, which the policy's OR cannot.
	if tenantID != uuid.Nil {
		where = append(where, "tenant_id = "+arg(tenantID))
	}
	if !f.From.IsZero() {
		where = append(where, "created_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "created_at < "+arg(f.To))
	}
	if len(f.Types) > 0 {
		var ors []string
		for _, typ := range f.Types {
			if TypeIsPrefix(typ) {
				// action is COLLATE "C": [prefix, prefix with its last byte
				// incremented) is exactly the names starting with prefix.
				hi := []byte(typ)
				hi[len(hi)-1]++ // '.' → '/'
				ors = append(ors, "(action >= "+arg(typ)+" AND action < "+arg(string(hi))+")")
			} else {
				ors = append(ors, "action = "+arg(typ))
			}
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	if f.AgentID != nil {
		where = append(where, "agent_id = "+arg(*f.AgentID))
	}
	if f.ConversationID != nil {
		where = append(where, "conversation_id = "+arg(*f.ConversationID))
	}
	if f.After != nil {
		where = append(where, "(created_at, id) < ("+arg(f.After.CreatedAt)+", "+arg(f.After.ID)+")")
	}
	sql := "SELECT " + auditColumns + " FROM audit_events"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		sql += " LIMIT " + arg(f.Limit)
	}
	return sql, args
}

// ListAuditEvents returns the events f selects, newest first.
func (t *Tx) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	out := []AuditEvent{}
	err := t.EachAuditEvent(ctx, f, func(e AuditEvent) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EachAuditEvent calls fn for each event f selects, newest first, as rows
// arrive from Postgres: an export streams without holding the trail in memory.
// fn's error stops the walk and is returned.
func (t *Tx) EachAuditEvent(ctx context.Context, f AuditFilter, fn func(AuditEvent) error) error {
	sql, args := f.query(t.tenantID)
	rows, err := t.tx.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("store: list audit: %w", mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("store: list audit: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: list audit: %w", mapErr(err))
	}
	return nil
}
