package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// HTTPTool is an HTTP endpoint an operator declared for one agent; the model
// sees it as a function named Name. Headers holds the sealed JSON object of
// header values (secrets.Box); HeaderNames lists them for display.
type HTTPTool struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	AgentID     uuid.UUID
	Name        string
	Description string
	Method      string
	URLTemplate string
	Headers     []byte // sealed; nil when none
	HeaderNames []string
	Parameters  json.RawMessage
	SideEffects bool
	Timeout     time.Duration
	Enabled     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// HTTPToolHeadersAAD binds a tool's sealed headers to its tenant, agent and
// ID: a ciphertext copied to another row won't open.
func HTTPToolHeadersAAD(tenantID, agentID, toolID uuid.UUID) []byte {
	return []byte("http-tool-headers:" + tenantID.String() + ":" + agentID.String() + ":" + toolID.String())
}

const httpToolCols = `id, tenant_id, agent_id, name, description, method, url_template, headers, header_names,
	parameters, side_effects, timeout_ms, enabled, created_at, updated_at`

func scanHTTPTool(row pgx.Row) (HTTPTool, error) {
	var h HTTPTool
	var ms int
	err := row.Scan(&h.ID, &h.TenantID, &h.AgentID, &h.Name, &h.Description, &h.Method, &h.URLTemplate, &h.Headers,
		&h.HeaderNames, &h.Parameters, &h.SideEffects, &ms, &h.Enabled, &h.CreatedAt, &h.UpdatedAt)
	h.Timeout = time.Duration(ms) * time.Millisecond
	return h, mapErr(err)
}

// CreateHTTPTool declares a tool. h.ID must be set (the sealed headers are
// bound to it); a name already used by the agent is ErrConflict.
func (t *Tx) CreateHTTPTool(ctx context.Context, h HTTPTool) (HTTPTool, error) {
	out, err := scanHTTPTool(t.tx.QueryRow(ctx, `
		INSERT INTO http_tools (id, tenant_id, agent_id, name, description, method, url_template, headers, header_names,
			parameters, side_effects, timeout_ms, enabled)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING `+httpToolCols,
		h.ID, t.scope(h.TenantID), h.AgentID, h.Name, h.Description, h.Method, h.URLTemplate, h.Headers, nonNil(h.HeaderNames),
		h.Parameters, h.SideEffects, h.Timeout.Milliseconds(), h.Enabled))
	if err != nil {
		return HTTPTool{}, fmt.Errorf("store: create http tool: %w", err)
	}
	return out, nil
}

// UpdateHTTPTool replaces a tool's declaration.
func (t *Tx) UpdateHTTPTool(ctx context.Context, h HTTPTool) (HTTPTool, error) {
	out, err := scanHTTPTool(t.tx.QueryRow(ctx, `
		UPDATE http_tools SET name = $3, description = $4, method = $5, url_template = $6, headers = $7, header_names = $8,
			parameters = $9, side_effects = $10, timeout_ms = $11, enabled = $12, updated_at = now()
		WHERE id = $1 AND agent_id = $2 RETURNING `+httpToolCols,
		h.ID, h.AgentID, h.Name, h.Description, h.Method, h.URLTemplate, h.Headers, nonNil(h.HeaderNames),
		h.Parameters, h.SideEffects, h.Timeout.Milliseconds(), h.Enabled))
	if err != nil {
		return HTTPTool{}, fmt.Errorf("store: update http tool: %w", err)
	}
	return out, nil
}

// GetHTTPTool loads one of an agent's tools by ID.
func (t *Tx) GetHTTPTool(ctx context.Context, agentID, id uuid.UUID) (HTTPTool, error) {
	h, err := scanHTTPTool(t.tx.QueryRow(ctx, `SELECT `+httpToolCols+` FROM http_tools WHERE agent_id = $1 AND id = $2`, agentID, id))
	if err != nil {
		return HTTPTool{}, fmt.Errorf("store: get http tool: %w", err)
	}
	return h, nil
}

// GetHTTPToolByName loads one of an agent's tools by the name the model calls.
func (t *Tx) GetHTTPToolByName(ctx context.Context, agentID uuid.UUID, name string) (HTTPTool, error) {
	h, err := scanHTTPTool(t.tx.QueryRow(ctx, `SELECT `+httpToolCols+` FROM http_tools WHERE agent_id = $1 AND name = $2`, agentID, name))
	if err != nil {
		return HTTPTool{}, fmt.Errorf("store: get http tool %s: %w", name, err)
	}
	return h, nil
}

// ListHTTPTools lists an agent's tools by name.
func (t *Tx) ListHTTPTools(ctx context.Context, agentID uuid.UUID) ([]HTTPTool, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+httpToolCols+` FROM http_tools WHERE agent_id = $1 ORDER BY name`, agentID)
	if err != nil {
		return nil, fmt.Errorf("store: list http tools: %w", err)
	}
	defer rows.Close()
	var out []HTTPTool
	for rows.Next() {
		h, err := scanHTTPTool(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list http tools: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list http tools: %w", err)
	}
	return out, nil
}

// DeleteHTTPTool removes one of an agent's tools.
func (t *Tx) DeleteHTTPTool(ctx context.Context, agentID, id uuid.UUID) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM http_tools WHERE agent_id = $1 AND id = $2`, agentID, id)
	if err != nil {
		return fmt.Errorf("store: delete http tool: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: delete http tool: %w", ErrNotFound)
	}
	return nil
}

// ToolCall is the exactly-once record of one side-effect tool call.
type ToolCall struct {
	Key      string
	Tool     string
	Status   string // pending | done
	Attempts int    // claims so far: more than one means an earlier attempt may have run the tool
	Content  string
	IsError  bool
}

// ClaimToolCall records the key as pending if new (counting attempts), and
// returns the record as it now stands: "done" means an earlier attempt
// completed the call and its result is to be returned as is.
func (t *Tx) ClaimToolCall(ctx context.Context, key, tool string) (ToolCall, error) {
	var c ToolCall
	err := t.tx.QueryRow(ctx, `
		INSERT INTO tool_calls (tenant_id, idempotency_key, tool) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, idempotency_key) DO UPDATE
			SET attempts = tool_calls.attempts + CASE WHEN tool_calls.status = 'pending' THEN 1 ELSE 0 END
		RETURNING idempotency_key, tool, status, attempts, content, is_error`, t.tenantID, key, tool).
		Scan(&c.Key, &c.Tool, &c.Status, &c.Attempts, &c.Content, &c.IsError)
	if err != nil {
		return ToolCall{}, fmt.Errorf("store: claim tool call %s: %w", key, mapErr(err))
	}
	return c, nil
}

// CompleteToolCall stores a call's result. Only the first completion counts.
func (t *Tx) CompleteToolCall(ctx context.Context, key, content string, isError bool) error {
	_, err := t.tx.Exec(ctx, `UPDATE tool_calls SET status = 'done', content = $2, is_error = $3, completed_at = now()
		WHERE idempotency_key = $1 AND status = 'pending'`, key, content, isError)
	if err != nil {
		return fmt.Errorf("store: complete tool call %s: %w", key, mapErr(err))
	}
	return nil
}
