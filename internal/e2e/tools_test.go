package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/platform"
	"github.com/konstruct/konstruct/workflows"
)

// toolEvents returns the tenant's tool.call audit events, oldest first.
func toolEvents(t *testing.T, p *platform.Platform, tenantID string) []store.AuditEvent {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, p.DB.AppURL)
	require.NoError(t, err)
	defer s.Close()
	var out []store.AuditEvent
	require.NoError(t, s.WithTenant(ctx, uuid.MustParse(tenantID), func(tx *store.Tx) error {
		evs, err := tx.ListAuditEvents(ctx, store.AuditFilter{Types: []string{store.AuditToolCall}})
		for i := len(evs) - 1; i >= 0; i-- {
			out = append(out, evs[i])
		}
		return err
	}))
	return out
}

// lastToolResult is the content of the newest tool message of a request.
func lastToolResult(r fakellm.Request) (string, bool) {
	last := r.Messages[len(r.Messages)-1]
	if last.Role != "tool" {
		return "", false
	}
	return last.Content, true
}

// The model first calls a tool with arguments its schema refuses; the
// validation error comes back as the tool's result, the model corrects the
// call, and the user gets the answer. Both calls are in the audit trail.
func TestInvalidToolArgumentsAreCorrectedByTheModel(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		res, ok := lastToolResult(r)
		switch {
		case !ok:
			return fakellm.CallTools(fakellm.ToolCall{Name: "current_time", Arguments: []byte(`{"timezone": 5}`)})
		case strings.Contains(res, "do not match its schema"):
			return fakellm.CallTools(fakellm.ToolCall{Name: "current_time", Arguments: []byte(`{"timezone":"Europe/Paris"}`)})
		}
		return fakellm.Text("In Paris it is " + res)
	})
	tn := p.NewTenant("Fix", platform.AgentSpec{Name: "Fay", Tools: []string{"current_time"}})
	body, _ := tn.Mention("C0FIX", "U0ALICE", "what time is it in Paris?", platform.NewTS(), "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "C0FIX", 1, replyTimeout)
	require.Regexp(t, `^In Paris it is \w+day, .* (CET|CEST)$`, msgs[0].Text)

	reqs := p.LLM.Requests()
	require.Len(t, reqs, 3)
	res, _ := lastToolResult(reqs[1])
	require.Contains(t, res, "arguments to current_time do not match its schema", "the model read the validation error")
	evs := toolEvents(t, p, tn.ID)
	require.Len(t, evs, 2)
	require.Equal(t, "invalid_arguments", evs[0].Data["outcome"])
	require.Equal(t, "ok", evs[1].Data["outcome"])
	require.True(t, strings.HasSuffix(evs[0].IdempotencyKey, ":1:tool:0"), evs[0].IdempotencyKey)
	require.True(t, strings.HasSuffix(evs[1].IdempotencyKey, ":1:tool:1"), evs[1].IdempotencyKey)
}

// fakeAPI is a remote API that dedupes by Idempotency-Key, as Stripe does: a
// key seen before gets the stored answer and no new effect.
type fakeAPI struct {
	mu       sync.Mutex
	effects  map[string]int // effects executed, per key
	requests map[string]int // requests received, per key
	hold     atomic.Bool    // hold the next first request until the client goes away
	held     chan struct{}
	stop     chan struct{} // closed when the test ends, so a held request never outlives it
	srv      *httptest.Server
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{effects: map[string]int{}, requests: map[string]int{}, held: make(chan struct{}, 4), stop: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does the server notice the client
		// going away (and cancel r.Context()).
		_, _ = io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		f.requests[key]++
		first := f.effects[key] == 0
		if first {
			f.effects[key]++ // the refund happens now, whatever becomes of the response
		}
		f.mu.Unlock()
		if first && f.hold.CompareAndSwap(true, false) {
			f.held <- struct{}{}
			select { // the worker dies with the request in flight
			case <-r.Context().Done():
			case <-f.stop:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"refund":"re_1","status":"succeeded","order":"` + strings.TrimPrefix(r.URL.Path, "/orders/") + `"}`))
	}))
	t.Cleanup(func() { close(f.stop); f.srv.Close() })
	return f
}

func (f *fakeAPI) counts() (map[string]int, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, r := map[string]int{}, map[string]int{}
	for k, v := range f.effects {
		e[k] = v
	}
	for k, v := range f.requests {
		r[k] = v
	}
	return e, r
}

func declareRefund(t *testing.T, p *platform.Platform, tn platform.Tenant, url string) {
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/agents/"+tn.AgentID+"/tools", p.AdminToken, map[string]any{
		"name": "refund_order", "description": "Refunds an order.", "method": "POST",
		"url_template": url + "/orders/{order_id}/refund", "headers": map[string]string{"Authorization": "Bearer sk_test_1"},
		"parameters": map[string]any{"type": "object", "required": []string{"order_id"}, "additionalProperties": false,
			"properties": map[string]any{"order_id": map[string]any{"type": "string", "pattern": "^[0-9]+$"}}},
		"side_effects": true, "timeout_ms": 2000,
	}, http.StatusCreated, nil)
}

// The worker is SIGKILLed while a side-effect HTTP tool's endpoint holds the
// request. After the restart the call is retried with the same
// Idempotency-Key, so the remote executes the effect once, and the user gets
// one reply.
func TestSideEffectToolRunsOnceWhenWorkerKilled(t *testing.T) {
	api := newFakeAPI(t)
	api.hold.Store(true)
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS": "127.0.0.1/32"}})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if r.LastUserText() == "barrier" {
			return fakellm.Text("echo: barrier")
		}
		if res, ok := lastToolResult(r); ok {
			return fakellm.Text("Done: " + res)
		}
		return fakellm.CallTools(fakellm.ToolCall{Name: "refund_order", Arguments: []byte(`{"order_id":"42"}`)})
	})
	tn := p.NewTenant("Refunds", platform.AgentSpec{Name: "Ray"})
	declareRefund(t, p, tn, api.srv.URL)
	ts := platform.NewTS()
	body, _ := tn.Mention("C0REFUND", "U0ALICE", "refund order 42", ts, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)

	select {
	case <-api.held:
	case <-time.After(replyTimeout):
		t.Fatal("the tool's endpoint was never called")
	}
	p.KillWorker()
	p.StartWorker()

	msgs := p.Slack.WaitForMessages(t, "C0REFUND", 1, 60*time.Second)
	require.Contains(t, msgs[0].Text, `Done: HTTP 200`)
	require.Contains(t, msgs[0].Text, `"order":"42/refund"`)
	msgs = barrier(t, p, tn, "C0REFUND", ts, 2)
	require.Len(t, msgs, 2, "exactly one reply to the interrupted turn")

	effects, requests := api.counts()
	require.Len(t, effects, 1, "one call, one key: %v", effects)
	for key, n := range effects {
		require.Equal(t, 1, n, "effect executed once for %s", key)
		require.Equal(t, 2, requests[key], "the retry carried the same key")
		require.True(t, strings.HasSuffix(key, ":1:tool:0"), key)
		require.True(t, strings.HasPrefix(key, workflows.ConversationID(tn.ID, "slack", workflows.SlackKey(tn.TeamID, "C0REFUND", ts))), key)
	}
	evs := toolEvents(t, p, tn.ID)
	require.Len(t, evs, 1, "the call is audited once")
	require.Equal(t, "ok", evs[0].Data["outcome"])
	require.Equal(t, true, evs[0].Data["side_effects"])
	require.EqualValues(t, 2, evs[0].Data["attempts"])
}

// An HTTP tool pointed at internal addresses is refused before anything is
// sent (no allow-list here), and the model is told why; 127.0.0.1 is the
// only address a request could actually reach, and it receives nothing.
func TestHTTPToolRefusesInternalAddresses(t *testing.T) {
	var hits atomic.Int32
	local := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer local.Close()
	port := local.URL[strings.LastIndexByte(local.URL, ':')+1:]
	p := platform.Start(t, platform.Options{})
	targets := map[string]string{
		"loopback": local.URL + "/x", "localhost": "http://localhost:" + port + "/x",
		"private": "http://10.0.0.1/x", "metadata": "http://169.254.169.254/latest/meta-data/",
	}
	results := make(chan string, 8)
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if res, ok := lastToolResult(r); ok {
			results <- res
			return fakellm.Text("could not reach it")
		}
		return fakellm.CallTools(fakellm.ToolCall{Name: "probe_" + r.LastUserText(), Arguments: []byte(`{}`)})
	})
	tn := p.NewTenant("SSRF", platform.AgentSpec{Name: "Sam"})
	for name, url := range targets {
		p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/agents/"+tn.AgentID+"/tools", p.AdminToken, map[string]any{
			"name": "probe_" + name, "description": "Probes.", "url_template": url}, http.StatusCreated, nil)
	}
	for name := range targets {
		body, _ := tn.Mention("C0SSRF", "U0ALICE", name, platform.NewTS(), "")
		status, _ := p.PostEvent(body, 0)
		require.Equal(t, http.StatusOK, status)
		select {
		case res := <-results:
			require.Contains(t, res, "refused to connect", name)
		case <-time.After(replyTimeout):
			t.Fatalf("%s: no tool result reached the model", name)
		}
	}
	require.Zero(t, hits.Load(), "a refused request reached the local server")
	evs := toolEvents(t, p, tn.ID)
	require.Len(t, evs, len(targets))
	for _, ev := range evs {
		require.Equal(t, "refused", ev.Data["outcome"])
	}

	// A tool the agent does not have is an error result naming those it has.
	body, _ := tn.Mention("C0SSRF", "U0ALICE", "imaginary", platform.NewTS(), "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	select {
	case res := <-results:
		require.Contains(t, res, `there is no tool named "probe_imaginary" for this assistant; use one of: probe_`)
	case <-time.After(replyTimeout):
		t.Fatal("no tool result reached the model")
	}
	evs = toolEvents(t, p, tn.ID)
	require.Len(t, evs, len(targets)+1)
	require.Equal(t, "unknown_tool", evs[len(evs)-1].Data["outcome"])
}

// historyToolsFile is the history of the tool-activities change.
const historyToolsFile = "conversation_v3_tools.json"

// A conversation using every tool path — a read-only tool with bad then good
// arguments, a side-effect HTTP tool (its own activity), and a model that
// keeps calling tools until the round limit makes it answer — replays on the
// current code. With KONSTRUCT_UPDATE_HISTORY=1 the history is written to
// workflows/testdata.
func TestRecordToolsHistory(t *testing.T) {
	api := newFakeAPI(t)
	p := platform.Start(t, platform.Options{Env: map[string]string{"KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS": "127.0.0.1/32"}})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply {
		res, ok := lastToolResult(r)
		text := r.LastUserText()
		switch {
		case text == "loop" && strings.Contains(r.System, "Do not call any tool now"):
			return fakellm.Text("final answer after the tool limit")
		case text == "loop":
			return fakellm.CallTools(fakellm.ToolCall{Name: "current_time", Arguments: []byte(`{}`)})
		case ok && strings.Contains(res, "do not match"):
			return fakellm.CallTools(fakellm.ToolCall{Name: "current_time", Arguments: []byte(`{"timezone":"UTC"}`)})
		case ok:
			return fakellm.Text("result: " + res)
		case text == "time":
			return fakellm.CallTools(fakellm.ToolCall{Name: "current_time", Arguments: []byte(`{"timezone":1}`)})
		case text == "refund":
			return fakellm.CallTools(fakellm.ToolCall{Name: "refund_order", Arguments: []byte(`{"order_id":"7"}`)})
		}
		return fakellm.Text("echo: " + text)
	})
	tn := p.NewTenant("ToolsHistory", platform.AgentSpec{Name: "Hal", Tools: []string{"current_time"}})
	declareRefund(t, p, tn, api.srv.URL)
	ts := platform.NewTS()
	for i, text := range []string{"time", "refund", "loop"} {
		thread, msgTS := ts, platform.NewTS()
		if i == 0 {
			thread, msgTS = "", ts
		}
		body, _ := tn.Mention("C0TOOLH", "U0ALICE", text, msgTS, thread)
		status, _ := p.PostEvent(body, 0)
		require.Equal(t, http.StatusOK, status)
		p.Slack.WaitForMessages(t, "C0TOOLH", i+1, replyTimeout)
	}
	msgs := p.Slack.WaitForMessages(t, "C0TOOLH", 3, replyTimeout)
	require.True(t, strings.HasPrefix(msgs[0].Text, "result: "), msgs[0].Text)
	require.Contains(t, msgs[1].Text, "succeeded")
	require.Equal(t, "final answer after the tool limit", msgs[2].Text, "the bound asks for an answer, it does not cut silently")

	c := testkit.NewTemporal(t)
	id := workflows.ConversationID(tn.ID, "slack", workflows.SlackKey(tn.TeamID, "C0TOOLH", ts))
	hist, err := workflows.FetchHistory(context.Background(), c, id, "")
	require.NoError(t, err)
	require.NoError(t, workflows.Replay(hist))
	require.Contains(t, string(hist), "RunSideEffectTool", "the side-effect tool ran as its own activity")
	var h struct{ Events []json.RawMessage }
	require.NoError(t, json.Unmarshal(hist, &h))

	if os.Getenv("KONSTRUCT_UPDATE_HISTORY") == "1" {
		path := filepath.Join("..", "..", "workflows", "testdata", historyToolsFile)
		require.NoError(t, os.WriteFile(path, hist, 0o644))
		t.Logf("wrote %s (%d bytes, %d events)", path, len(hist), len(h.Events))
	}
}
