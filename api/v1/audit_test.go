package v1_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

type auditEventJSON struct {
	ID             int64          `json:"id"`
	CreatedAt      string         `json:"created_at"`
	Type           string         `json:"type"`
	Actor          string         `json:"actor"`
	AgentID        *string        `json:"agent_id"`
	ConversationID *string        `json:"conversation_id"`
	WorkflowID     string         `json:"workflow_id"`
	WorkflowURL    string         `json:"workflow_url"`
	TargetType     string         `json:"target_type"`
	TargetID       string         `json:"target_id"`
	Data           map[string]any `json:"data"`
}

type auditPage struct {
	Events     []auditEventJSON `json:"events"`
	NextCursor *string          `json:"next_cursor"`
}

func auditPath(tenantID uuid.UUID) string { return tenantPath(tenantID) + "/audit" }

// auditWorld is two tenants with agents, conversations and agent events.
type auditWorld struct {
	s            *apitest.Server
	a, b         apitest.Tenant
	adminA       apitest.User
	adminB       apitest.User
	agentA       apitest.Agent
	agentA2      apitest.Agent
	convA, convB store.Conversation
}

func newAuditWorld(t *testing.T) auditWorld {
	s := apitest.Start(t, apitest.Options{})
	w := auditWorld{s: s, a: s.CreateTenant(t, "Audit A"), b: s.CreateTenant(t, "Audit B")}
	w.adminA = s.NewUser(t, w.a.ID, store.RoleCustomerAdmin)
	w.adminB = s.NewUser(t, w.b.ID, store.RoleCustomerAdmin)
	w.agentA = s.CreateAgent(t, w.adminA.Token, w.a.ID, "Ada")
	w.agentA2 = s.CreateAgent(t, w.adminA.Token, w.a.ID, "Bea")
	agentB := s.CreateAgent(t, w.adminB.Token, w.b.ID, "Cy")
	w.convA = s.SeedConversation(t, w.a.ID, w.agentA.ID, 1)
	w.convB = s.SeedConversation(t, w.b.ID, agentB.ID, 1)

	// The agents' work, written as the conversation activities write it.
	ctx := context.Background()
	write := func(tenantID uuid.UUID, agentID uuid.UUID, cv store.Conversation, n int) {
		require.NoError(t, s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
			for i := range n {
				e := store.AuditEvent{Actor: "agent:" + agentID.String(), AgentID: &agentID, ConversationID: &cv.ID,
					WorkflowID: cv.WorkflowID, Action: store.AuditLLMCall, TargetType: "model", TargetID: "openai/gpt-4o-mini",
					IdempotencyKey: store.AuditKeyLLM(cv.WorkflowID, i, 0) + agentID.String(),
					Data:           map[string]any{"outcome": "ok", "input_tokens": i, "note": "comma, \"quote\"\nnewline"}}
				switch i % 3 {
				case 1:
					e.Action, e.IdempotencyKey = store.AuditToolCall, store.AuditKeyTool(cv.WorkflowID, i, 0)+agentID.String()
				case 2:
					e.Action, e.ConversationID, e.WorkflowID, e.IdempotencyKey = store.AuditKnowledgeCreate, nil, "", ""
				}
				if err := tx.AppendAudit(ctx, e); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	write(w.a.ID, w.agentA.ID, w.convA, 24)
	write(w.a.ID, w.agentA2.ID, w.convA, 6)
	write(w.b.ID, agentB.ID, w.convB, 9)
	return w
}

// pages follows next_cursor from query until the last page.
func (w auditWorld) pages(t *testing.T, token string, tenantID uuid.UUID, query string) []auditEventJSON {
	t.Helper()
	var all []auditEventJSON
	cursor := ""
	for i := 0; ; i++ {
		require.Less(t, i, 100, "paging does not end")
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var p auditPage
		w.s.Do(t, http.MethodGet, auditPath(tenantID)+"?"+q, token, nil).Expect(t, http.StatusOK).JSON(t, &p)
		require.NotNil(t, p.Events)
		all = append(all, p.Events...)
		if p.NextCursor == nil {
			return all
		}
		cursor = *p.NextCursor
	}
}

// dbIDs lists the IDs of tenantID's events, newest first, straight from the table.
func (w auditWorld) dbIDs(t *testing.T, tenantID uuid.UUID, where string) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	require.NoError(t, w.s.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		return tx.QueryRowScan(ctx, `SELECT coalesce(array_agg(id ORDER BY created_at DESC, id DESC), '{}')
			FROM audit_events WHERE tenant_id = $1 AND `+where, []any{tenantID}, &ids)
	}))
	return ids
}

func eventIDs(events []auditEventJSON) []int64 {
	out := make([]int64, 0, len(events))
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

// A tenant's token reads exactly that tenant's events, every one once when
// paging; another tenant's trail is not found; an operator may not read it.
func TestAuditListIsTenantScopedAndPagesEveryRowOnce(t *testing.T) {
	t.Parallel()
	w := newAuditWorld(t)
	s := w.s

	got := w.pages(t, w.adminA.Token, w.a.ID, "limit=7")
	want := w.dbIDs(t, w.a.ID, "true")
	require.Len(t, want, 34, "A's 30 agent events, its creation, its two agents' and its admin's token")
	require.Equal(t, want, eventIDs(got), "exactly A's rows, newest first, each once")
	for _, e := range got {
		if e.AgentID != nil {
			require.Contains(t, []string{w.agentA.ID.String(), w.agentA2.ID.String()}, *e.AgentID)
		}
	}
	// The default page, and the platform admin's view of A.
	var p auditPage
	s.Do(t, http.MethodGet, auditPath(w.a.ID), w.adminA.Token, nil).Expect(t, http.StatusOK).JSON(t, &p)
	require.Len(t, p.Events, min(50, len(want)))
	require.Equal(t, eventIDs(got[:len(p.Events)]), eventIDs(p.Events))
	require.Equal(t, want, eventIDs(w.pages(t, s.AdminToken, w.a.ID, "limit=500")))
	require.Equal(t, w.dbIDs(t, w.b.ID, "true"), eventIDs(w.pages(t, w.adminB.Token, w.b.ID, "limit=500")))

	// B's token cannot reach A's trail, even filtered by A's own IDs.
	s.Do(t, http.MethodGet, auditPath(w.a.ID), w.adminB.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodGet, auditPath(w.a.ID)+"?format=csv", w.adminB.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	require.Empty(t, w.pages(t, w.adminB.Token, w.b.ID, "agent_id="+w.agentA.ID.String()))
	require.Empty(t, w.pages(t, w.adminB.Token, w.b.ID, "conversation_id="+w.convA.ID.String()))
	// The Activity page's rule: operators do not read the trail.
	op := s.NewUser(t, w.a.ID, store.RoleCustomerOperator)
	s.Do(t, http.MethodGet, auditPath(w.a.ID), op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodGet, auditPath(w.a.ID), "", nil).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	s.Do(t, http.MethodGet, auditPath(uuid.New()), s.AdminToken, nil).ExpectError(t, http.StatusNotFound, "not_found", "")

	// Shape of an agent event.
	var llm *auditEventJSON
	for i := range got {
		if got[i].Type == store.AuditLLMCall {
			llm = &got[i]
			break
		}
	}
	require.NotNil(t, llm)
	require.Equal(t, w.convA.WorkflowID, llm.WorkflowID)
	require.Equal(t, "http://127.0.0.1:8233/namespaces/default/workflows/"+url.PathEscape(w.convA.WorkflowID), llm.WorkflowURL)
	require.Equal(t, w.convA.ID.String(), *llm.ConversationID)
	require.Equal(t, "openai/gpt-4o-mini", llm.TargetID)
	require.Equal(t, "ok", llm.Data["outcome"])
	_, err := time.Parse(time.RFC3339Nano, llm.CreatedAt)
	require.NoError(t, err)
}

func TestAuditFilters(t *testing.T) {
	t.Parallel()
	w := newAuditWorld(t)
	tok := w.adminA.Token
	cases := []struct{ query, where string }{
		{"type=llm.call", "action = 'llm.call'"},
		{"type=knowledge.", "action LIKE 'knowledge.%'"},
		{"type=knowledge.*", "action LIKE 'knowledge.%'"},
		{"type=llm.call&type=tool.call", "action IN ('llm.call', 'tool.call')"},
		{"type=llm.call,agent.", "(action = 'llm.call' OR action LIKE 'agent.%')"},
		{"type=agent.create", "action = 'agent.create'"},
		{"agent_id=" + w.agentA2.ID.String(), "agent_id = '" + w.agentA2.ID.String() + "'"},
		{"conversation_id=" + w.convA.ID.String() + "&type=tool.call",
			"conversation_id = '" + w.convA.ID.String() + "' AND action = 'tool.call'"},
		{"agent_id=" + w.agentA.ID.String() + "&type=knowledge.", "agent_id = '" + w.agentA.ID.String() + "' AND action LIKE 'knowledge.%'"},
	}
	for _, tc := range cases {
		want := w.dbIDs(t, w.a.ID, tc.where)
		require.NotEmpty(t, want, tc.query)
		require.Equal(t, want, eventIDs(w.pages(t, tok, w.a.ID, tc.query+"&limit=5")), tc.query)
	}
	require.Empty(t, w.pages(t, tok, w.a.ID, "type=nothing.here"))

	// Time range: from is inclusive, to exclusive.
	all := w.pages(t, tok, w.a.ID, "limit=500")
	pivot := all[len(all)/2].CreatedAt
	pt, err := time.Parse(time.RFC3339Nano, pivot)
	require.NoError(t, err)
	require.Equal(t, w.dbIDs(t, w.a.ID, fmt.Sprintf("created_at >= '%s'", pivot)),
		eventIDs(w.pages(t, tok, w.a.ID, "from="+url.QueryEscape(pivot))))
	require.Equal(t, w.dbIDs(t, w.a.ID, fmt.Sprintf("created_at < '%s'", pivot)),
		eventIDs(w.pages(t, tok, w.a.ID, "to="+url.QueryEscape(pivot))))
	require.Empty(t, w.pages(t, tok, w.a.ID, "from="+url.QueryEscape(pt.Add(time.Hour).Format(time.RFC3339))))

	// Bad parameters are refused, naming the parameter.
	for q, field := range map[string]string{
		"from=yesterday":          "from",
		"to=2026-13-01T00:00:00Z": "to",
		"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z": "to",
		"type=LLM.Call":                              "type",
		"type=llm..call":                             "type",
		"type=" + url.QueryEscape("llm.call'--"):     "type",
		"type=" + strings.Repeat("a,", 21) + "a":     "type",
		"agent_id=42":                                "agent_id",
		"conversation_id=" + url.QueryEscape("\x00"): "conversation_id",
		"cursor=not-a-cursor":                        "cursor",
		"cursor=" + url.QueryEscape("MTIz"):          "cursor",
		"limit=0":                                    "limit",
		"limit=501":                                  "limit",
		"limit=ten":                                  "limit",
		"format=xml":                                 "format",
	} {
		w.s.Do(t, http.MethodGet, auditPath(w.a.ID)+"?"+q, tok, nil).ExpectError(t, http.StatusBadRequest, "invalid_parameter", field)
	}
	require.False(t, strings.Contains(w.s.Logs(), `"level":"ERROR"`), "no server errors were logged")
}

// The CSV export holds exactly what the JSON listing does, field for field,
// and parses back (commas, quotes and newlines in data included).
func TestAuditCSVExportRoundTrips(t *testing.T) {
	t.Parallel()
	w := newAuditWorld(t)
	for _, query := range []string{"", "type=llm.&agent_id=" + w.agentA.ID.String()} {
		jsonEvents := w.pages(t, w.adminA.Token, w.a.ID, query+"&limit=3")
		r := w.s.Do(t, http.MethodGet, auditPath(w.a.ID)+"?format=csv&"+query, w.adminA.Token, nil).Expect(t, http.StatusOK)
		require.Equal(t, "text/csv; charset=utf-8", r.Header.Get("Content-Type"))
		require.Equal(t, `attachment; filename="audit-`+w.a.ID.String()+`.csv"`, r.Header.Get("Content-Disposition"))
		records, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
		require.NoError(t, err)
		require.Equal(t, []string{"id", "created_at", "type", "actor", "agent_id", "conversation_id", "workflow_id",
			"target_type", "target_id", "data"}, records[0])
		rows := records[1:]
		require.Len(t, rows, len(jsonEvents), query)
		for i, row := range rows {
			e := jsonEvents[i]
			id, err := strconv.ParseInt(row[0], 10, 64)
			require.NoError(t, err)
			opt := func(s *string) string {
				if s == nil {
					return ""
				}
				return *s
			}
			require.Equal(t, []any{e.ID, e.CreatedAt, e.Type, e.Actor, opt(e.AgentID), opt(e.ConversationID), e.WorkflowID,
				e.TargetType, e.TargetID}, []any{id, row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]})
			var data map[string]any
			require.NoError(t, json.Unmarshal([]byte(row[9]), &data))
			require.Equal(t, e.Data, data)
		}
	}
	// limit bounds an export; an empty selection is just the header.
	r := w.s.Do(t, http.MethodGet, auditPath(w.a.ID)+"?format=csv&limit=4", w.adminA.Token, nil).Expect(t, http.StatusOK)
	records, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 5)
	r = w.s.Do(t, http.MethodGet, auditPath(w.a.ID)+"?format=csv&type=nothing.here", w.adminA.Token, nil).Expect(t, http.StatusOK)
	require.Equal(t, "id,created_at,type,actor,agent_id,conversation_id,workflow_id,target_type,target_id,data\n", string(r.Body))
	// Bad parameters answer JSON errors, not a broken file.
	w.s.Do(t, http.MethodGet, auditPath(w.a.ID)+"?format=csv&from=x", w.adminA.Token, nil).
		ExpectError(t, http.StatusBadRequest, "invalid_parameter", "from")
}
