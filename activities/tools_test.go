package activities

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/konstruct/konstruct/internal/secrets"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/tools"
	"github.com/konstruct/konstruct/internal/tools/httptool"
)

// RunSideEffectTool on the real store: a retry of a completed call returns
// the stored result without calling the remote again; a retry of a call
// left pending (the worker died mid-request) calls again with the same
// Idempotency-Key; each call is audited once.
func TestRunSideEffectToolExactlyOnce(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	st, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)

	var calls atomic.Int32
	keys := make(chan string, 8)
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		calls.Add(1)
		keys <- r.Header.Get("Idempotency-Key") + " " + r.Header.Get("X-Api-Key")
		_, _ = w.Write([]byte(`{"refunded":true}`))
	}))
	t.Cleanup(remote.Close)

	tenantID := uuid.New()
	var agent store.Agent
	require.NoError(t, st.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if _, err := tx.CreateTenant(ctx, tenantID, "T"); err != nil {
			return err
		}
		if agent, err = tx.CreateAgent(ctx, store.Agent{Name: "A", Status: store.AgentActive}); err != nil {
			return err
		}
		h := store.HTTPTool{ID: uuid.New(), AgentID: agent.ID, Name: "refund", Description: "d", Method: "POST",
			URLTemplate: remote.URL + "/refund/{id}", Parameters: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`),
			SideEffects: true, Timeout: 2e9, Enabled: true, HeaderNames: []string{"X-Api-Key"}}
		plain, _ := json.Marshal(map[string]string{"X-Api-Key": "sk_1"})
		if h.Headers, err = box.Seal(plain, store.HTTPToolHeadersAAD(tenantID, agent.ID, h.ID)); err != nil {
			return err
		}
		_, err = tx.CreateHTTPTool(ctx, h)
		return err
	}))
	reg, err := tools.NewRegistry(tools.CurrentTime(nil))
	require.NoError(t, err)
	acts := &Conversation{Store: st, Secrets: box, Tools: reg, Logger: slog.New(slog.DiscardHandler),
		HTTPTools: httptool.NewClient(httptool.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	in := ToolInput{TenantID: tenantID.String(), AgentID: agent.ID.String(), Allowed: []string{"refund"},
		Call:       ToolCall{ID: "provider-id-1", Name: "refund", Arguments: json.RawMessage(`{"id":"7"}`)},
		WorkflowID: "wf-1", Turn: 3, Index: 1}

	run := func(in ToolInput) ToolOutput {
		v, err := env.ExecuteActivity(acts.RunSideEffectTool, in)
		require.NoError(t, err)
		var out ToolOutput
		require.NoError(t, v.Get(&out))
		return out
	}
	out := run(in)
	require.Equal(t, "HTTP 200\n{\"refunded\":true}", out.Content)
	require.Equal(t, "wf-1:3:tool:1 sk_1", <-keys, "the key comes from workflow, turn and index; the header is opened")

	// The same call again (a retry after completion), even with another
	// provider call ID: the stored result, no new request.
	in2 := in
	in2.Call.ID = "provider-id-2"
	require.Equal(t, out, run(in2))
	require.EqualValues(t, 1, calls.Load())

	// A call left pending by a dead worker is sent again with its key.
	require.NoError(t, st.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		_, err := tx.ClaimToolCall(ctx, tools.IdempotencyKey("wf-1", 3, 2), "refund")
		return err
	}))
	in3 := in
	in3.Index = 2
	run(in3)
	require.Equal(t, "wf-1:3:tool:2 sk_1", <-keys)
	require.EqualValues(t, 2, calls.Load())

	require.NoError(t, st.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		evs, err := tx.ListAuditEvents(ctx, store.AuditFilter{Types: []string{store.AuditToolCall}})
		require.Len(t, evs, 2, "one event per call, not per attempt")
		for _, e := range evs {
			require.Equal(t, "ok", e.Data["outcome"])
			require.Equal(t, true, e.Data["side_effects"])
		}
		require.EqualValues(t, 2, evs[0].Data["attempts"], "the re-sent call counts its attempts")
		return err
	}))
}
