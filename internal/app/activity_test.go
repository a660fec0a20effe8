package app_test

import (
	"context"
	"encoding/csv"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
)

var (
	activityRowRE    = regexp.MustCompile(`<tr data-action="([^"]+)"`)
	activityExportRE = regexp.MustCompile(`href="([^"]+)" data-testid="activity-export"`)
	activityOlderRE  = regexp.MustCompile(`href="([^"]+)" rel="next"`)
)

// The Activity page filters the trail like the audit API, pages through it
// with a cursor, links each agent event to its workflow in the Temporal Web
// UI, and exports exactly the filtered selection as CSV.
func TestActivityFiltersPagesAndExports(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.browser()
	home := admin.signUp("ada@acme.test", "Ada", "Acme")
	tenantID := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	ctx := context.Background()

	var sam, iris store.Agent
	var cv store.Conversation
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if sam, err = tx.CreateAgent(ctx, store.Agent{Name: "Sam", Models: []string{"openai/gpt-4o-mini"}}); err != nil {
			return err
		}
		if iris, err = tx.CreateAgent(ctx, store.Agent{Name: "Iris", Models: []string{"openai/gpt-4o-mini"}}); err != nil {
			return err
		}
		cv, err = tx.EnsureConversation(ctx, store.Conversation{AgentID: sam.ID, Channel: store.ChannelSlack,
			ExternalKey: "T1:C1:1.1", WorkflowID: "conversation/" + tenantID.String() + "/slack/T1:C1:1.1", UserRef: "U1"})
		if err != nil {
			return err
		}
		for i := range 60 {
			agent := sam
			if i%4 == 3 {
				agent = iris
			}
			e := store.AuditEvent{Actor: "agent:" + agent.ID.String(), Action: store.AuditLLMCall, AgentID: &agent.ID,
				ConversationID: &cv.ID, WorkflowID: cv.WorkflowID, TargetType: "model", TargetID: "openai/gpt-4o-mini",
				IdempotencyKey: store.AuditKeyLLM(cv.WorkflowID, i, 0),
				Data: map[string]any{"outcome": "ok", "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1200,
					"output_tokens": 80, "cost_micro_usd": 228, "latency_ms": 640, "fallbacks": 1, "attempts": []any{
						map[string]any{"provider": "ollama", "model": "llama3.2", "outcome": "unavailable", "error": "connection <refused>"},
						map[string]any{"provider": "openai", "model": "gpt-4o-mini", "outcome": "ok"}}}}
			if i%3 == 1 {
				e.Action, e.IdempotencyKey = store.AuditToolCall, store.AuditKeyTool(cv.WorkflowID, i, 0)
				e.Data = map[string]any{"tool": "current_time", "outcome": "ok", "duration_ms": 3}
			}
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}))
	countIn := func(where string) int {
		var n int64
		require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
			var err error
			n, err = tx.QueryInt(ctx, `SELECT count(*) FROM audit_events WHERE `+where)
			return err
		}))
		return int(n)
	}
	rows := func(body string) []string {
		var out []string
		for _, m := range activityRowRE.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	// walk follows the Older links from path and returns every row's action.
	walk := func(path string) (actions []string, pages int) {
		for path != "" {
			p := admin.get(path)
			require.Equal(t, http.StatusOK, p.Status, "%s: %s", path, p.Body)
			actions = append(actions, rows(p.Body)...)
			pages++
			path = ""
			if m := activityOlderRE.FindStringSubmatch(p.Body); m != nil {
				path = html.UnescapeString(m[1])
			}
		}
		return actions, pages
	}

	// Everything, in pages of 50.
	all, pages := walk(home + "/activity")
	require.Equal(t, countIn("true"), len(all), "every event once")
	require.Equal(t, 2, pages)
	p := admin.get(home + "/activity")
	require.Contains(t, p.Body, "called openai/gpt-4o-mini: 1,200 in, 80 out, $0.0002, 640 ms after 1 fallback")
	require.Contains(t, p.Body, "used the tool current_time (ok, 3 ms)")
	require.Contains(t, p.Body, `<strong>Sam</strong>`, "an agent is named as the actor")
	require.Contains(t, p.Body, `href="http://temporal-ui.test:8233/namespaces/default/workflows/`+
		html.EscapeString(url.PathEscape(cv.WorkflowID))+`"`, "each agent event links to its workflow")
	require.Contains(t, p.Body, "connection &lt;refused&gt;", "the payload is shown, escaped")

	// Filters: the rows are exactly those the filter selects, on every page.
	for _, tc := range []struct{ query, where string }{
		{"type=tool.", "action LIKE 'tool.%'"},
		{"type=llm.", "action LIKE 'llm.%'"},
		{"agent_id=" + iris.ID.String(), "agent_id = '" + iris.ID.String() + "'"},
		{"type=llm.&agent_id=" + sam.ID.String(), "action = 'llm.call' AND agent_id = '" + sam.ID.String() + "'"},
		{"conversation_id=" + cv.ID.String(), "conversation_id = '" + cv.ID.String() + "'"},
		{"type=user.,invitation.", "(action LIKE 'user.%' OR action LIKE 'invitation.%')"},
	} {
		got, _ := walk(home + "/activity?" + tc.query)
		require.Equal(t, countIn(tc.where), len(got), tc.query)
		for _, a := range got {
			if strings.HasPrefix(tc.query, "type=tool.") {
				require.Equal(t, store.AuditToolCall, a)
			}
		}
	}
	got, _ := walk(home + "/activity?from=2000-01-01&to=2000-01-31")
	require.Empty(t, got, "a period with nothing in it")
	p = admin.get(home + "/activity?from=2000-01-01&to=2000-01-31")
	require.Contains(t, p.Body, "Nothing matches")
	require.Contains(t, p.Body, `value="2000-01-01"`, "the form keeps the filters")

	// The export link carries the current filters and downloads exactly
	// those rows.
	p = admin.get(home + "/activity?type=llm.&agent_id=" + sam.ID.String())
	m := activityExportRE.FindStringSubmatch(p.Body)
	require.NotNil(t, m, "an Export CSV link")
	export := html.UnescapeString(m[1])
	u, err := url.Parse(export)
	require.NoError(t, err)
	require.Equal(t, "csv", u.Query().Get("format"))
	require.Equal(t, "llm.", u.Query().Get("type"))
	require.Equal(t, sam.ID.String(), u.Query().Get("agent_id"))
	dl := admin.get(export)
	require.Equal(t, http.StatusOK, dl.Status, dl.Body)
	require.Equal(t, "text/csv; charset=utf-8", dl.Header.Get("Content-Type"))
	require.Contains(t, dl.Header.Get("Content-Disposition"), "attachment")
	records, err := csv.NewReader(strings.NewReader(dl.Body)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, "id", records[0][0])
	require.Len(t, records[1:], countIn("action = 'llm.call' AND agent_id = '"+sam.ID.String()+"'"))
	for _, r := range records[1:] {
		require.Equal(t, store.AuditLLMCall, r[2])
		require.Equal(t, sam.ID.String(), r[4])
		require.Equal(t, cv.WorkflowID, r[6])
	}

	// A hand-edited bad filter is explained, not a server error.
	p = admin.get(home + "/activity?from=yesterday")
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "That filter did not work: from: must be an RFC 3339 timestamp")
	p = admin.get(home + "/activity?format=csv&agent_id=42")
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Body, "agent_id: must be a UUID")

	// The conversation page links to its activity.
	p = admin.get(home + "/conversations/" + cv.ID.String())
	require.Contains(t, p.Body, html.EscapeString(home+"/activity?conversation_id="+cv.ID.String()))

	// Operators see neither the page nor the export.
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Email: "op@acme.test", Name: "Op", PasswordHash: "x", Role: store.RoleCustomerOperator})
		return err
	}))
	var opID uuid.UUID
	require.NoError(t, h.app.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUserByEmail(ctx, "op@acme.test")
		opID = u.ID
		return err
	}))
	setPassword(t, h, opID, "Operator-Pass-Word-9")
	op := h.browser()
	op.signIn("op@acme.test", "Operator-Pass-Word-9")
	require.Equal(t, http.StatusForbidden, op.get(home+"/activity").Status)
	dl = op.get(home + "/activity?format=csv")
	require.Equal(t, http.StatusForbidden, dl.Status)
	require.NotContains(t, dl.Body, cv.WorkflowID)
}
