package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func appendIn(t *testing.T, s *store.Store, tenantID uuid.UUID, events ...store.AuditEvent) {
	t.Helper()
	ctx := context.Background()
	for _, e := range events {
		// One transaction each, as retried activities would run.
		require.NoError(t, s.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.AppendAudit(ctx, e) }))
	}
}

func listIn(t *testing.T, s *store.Store, tenantID uuid.UUID, f store.AuditFilter) []store.AuditEvent {
	t.Helper()
	ctx := context.Background()
	var out []store.AuditEvent
	require.NoError(t, s.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListAuditEvents(ctx, f)
		return err
	}))
	return out
}

// A retried activity passes the same key: the second append writes nothing
// and is no error. The key is per tenant: another tenant's identical key
// neither blocks nor is blocked.
func TestAppendAuditWritesOncePerKey(t *testing.T) {
	s := openStore(t)
	a, b := seed(t, context.Background(), s, "a"), seed(t, context.Background(), s, "b")
	key := store.AuditKeyLLM("wf-x", 3, 0)
	require.Equal(t, "wf-x:3:llm:0", key)
	ev := store.AuditEvent{Actor: "agent:" + a.agent.ID.String(), Action: store.AuditLLMCall, AgentID: &a.agent.ID,
		ConversationID: &a.conversation.ID, WorkflowID: "wf-x", IdempotencyKey: key, Data: map[string]any{"attempt": 1}}
	appendIn(t, s, a.tenant.ID, ev)
	retry := ev
	retry.Data = map[string]any{"attempt": 2}
	appendIn(t, s, a.tenant.ID, retry, retry)
	bev := ev
	bev.AgentID, bev.ConversationID = &b.agent.ID, &b.conversation.ID
	appendIn(t, s, b.tenant.ID, bev)
	// Events without a key are never deduplicated.
	appendIn(t, s, a.tenant.ID, store.AuditEvent{Actor: "test", Action: "x.y"}, store.AuditEvent{Actor: "test", Action: "x.y"})

	got := listIn(t, s, a.tenant.ID, store.AuditFilter{Types: []string{store.AuditLLMCall}})
	var keyed []store.AuditEvent
	for _, e := range got {
		if e.IdempotencyKey == key {
			keyed = append(keyed, e)
		}
	}
	require.Len(t, keyed, 1)
	require.Equal(t, float64(1), keyed[0].Data["attempt"], "the first write stands")
	require.Equal(t, a.agent.ID, *keyed[0].AgentID)
	require.Equal(t, a.conversation.ID, *keyed[0].ConversationID)
	require.Equal(t, "wf-x", keyed[0].WorkflowID)
	require.Len(t, listIn(t, s, a.tenant.ID, store.AuditFilter{Types: []string{"x.y"}}), 2)
	bgot := listIn(t, s, b.tenant.ID, store.AuditFilter{Types: []string{store.AuditLLMCall}})
	require.Len(t, bgot, 2, "B's own seed event and the event with A's key")

	// Platform-level events (no tenant) dedupe too.
	ctx := context.Background()
	for range 2 {
		require.NoError(t, s.WithPlatform(ctx, func(tx *store.Tx) error {
			return tx.AppendAudit(ctx, store.AuditEvent{Actor: "cli", Action: "platform.thing", IdempotencyKey: "p1"})
		}))
	}
	require.NoError(t, s.WithPlatform(ctx, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM audit_events WHERE idempotency_key = 'p1' AND tenant_id IS NULL`)
		require.Equal(t, int64(1), n)
		return err
	}))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// An oversized payload keeps its small fields, summarises its big ones, and
// records the hash and size of the original.
func TestAppendAuditTruncatesLargePayloads(t *testing.T) {
	s := openStore(t)
	a := seed(t, context.Background(), s, "a")
	big := strings.Repeat("é", 20<<10) // 40 KiB of two-byte characters
	data := map[string]any{"tool": "http_request", "duration_ms": 12, "result": big}
	raw, err := json.Marshal(data)
	require.NoError(t, err)
	bigJSON, err := json.Marshal(big)
	require.NoError(t, err)
	appendIn(t, s, a.tenant.ID, store.AuditEvent{Actor: "test", Action: store.AuditToolCall, Data: data})

	got := listIn(t, s, a.tenant.ID, store.AuditFilter{Types: []string{store.AuditToolCall}})
	require.Len(t, got, 1)
	d := got[0].Data
	require.Equal(t, "http_request", d["tool"])
	require.Equal(t, float64(12), d["duration_ms"])
	require.Equal(t, true, d["truncated"])
	require.Equal(t, sha(raw), d["sha256"])
	require.Equal(t, float64(len(raw)), d["bytes"])
	res, ok := d["result"].(map[string]any)
	require.True(t, ok, "result is summarised: %v", d["result"])
	require.Equal(t, true, res["truncated"])
	require.Equal(t, sha(bigJSON), res["sha256"])
	require.Equal(t, float64(len(bigJSON)), res["bytes"])
	preview := res["preview"].(string)
	require.True(t, strings.HasPrefix(big, preview))
	require.Equal(t, store.AuditPreviewLimit, len(preview), "two-byte characters fit 1 KiB exactly")
	stored, err := json.Marshal(d)
	require.NoError(t, err)
	require.LessOrEqual(t, len(stored), store.AuditDataLimit)

	// Many fields each under the field bound but together over the limit:
	// the whole payload becomes one summary.
	many := map[string]any{}
	for i := range 20 {
		many[strings.Repeat("k", i+1)] = strings.Repeat("x", store.AuditFieldLimit-100)
	}
	rawMany, err := json.Marshal(many)
	require.NoError(t, err)
	appendIn(t, s, a.tenant.ID, store.AuditEvent{Actor: "test", Action: "big.many", Data: many})
	got = listIn(t, s, a.tenant.ID, store.AuditFilter{Types: []string{"big.many"}})
	require.Len(t, got, 1)
	require.Equal(t, true, got[0].Data["truncated"])
	require.Equal(t, sha(rawMany), got[0].Data["sha256"])
	require.Equal(t, float64(len(rawMany)), got[0].Data["bytes"])
	require.Equal(t, string(rawMany[:store.AuditPreviewLimit]), got[0].Data["preview"])

	// A payload within the bound is stored as given.
	small := map[string]any{"result": strings.Repeat("y", store.AuditFieldLimit*2)}
	appendIn(t, s, a.tenant.ID, store.AuditEvent{Actor: "test", Action: "small", Data: small})
	got = listIn(t, s, a.tenant.ID, store.AuditFilter{Types: []string{"small"}})
	require.Equal(t, small, got[0].Data)

	// A payload that cannot be JSON is refused with the action named.
	err = s.WithTenant(context.Background(), a.tenant.ID, func(tx *store.Tx) error {
		return tx.AppendAudit(context.Background(), store.AuditEvent{Actor: "test", Action: "bad", Data: map[string]any{"f": func() {}}})
	})
	require.ErrorContains(t, err, "append audit bad")
}

// Each filter selects exactly its events, and cursor paging visits every
// selected event once, newest first.
func TestListAuditEventsFiltersAndPages(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := seed(t, ctx, s, "a")
	other := uuid.New()
	actions := []string{store.AuditLLMCall, store.AuditToolCall, store.AuditKnowledgeCreate, store.AuditKnowledgeDelete,
		"knowledgebase.other", "llm.calls"}
	// 30 events in one transaction (sharing created_at, so id breaks ties) and
	// 30 in separate ones.
	var evs []store.AuditEvent
	for i := range 60 {
		e := store.AuditEvent{Actor: "test", Action: actions[i%len(actions)]}
		if i%2 == 0 {
			e.AgentID = &a.agent.ID
		} else {
			e.AgentID = &other
		}
		if i%3 == 0 {
			e.ConversationID = &a.conversation.ID
		}
		evs = append(evs, e)
	}
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		for _, e := range evs[:30] {
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}))
	appendIn(t, s, a.tenant.ID, evs[30:]...)

	all := listIn(t, s, a.tenant.ID, store.AuditFilter{})
	require.Len(t, all, 62, "60 and seed's two")
	for i := 1; i < len(all); i++ {
		prev, cur := all[i-1], all[i]
		require.True(t, prev.CreatedAt.After(cur.CreatedAt) || (prev.CreatedAt.Equal(cur.CreatedAt) && prev.ID > cur.ID),
			"newest first at %d", i)
	}
	count := func(f store.AuditFilter, keep func(store.AuditEvent) bool) {
		t.Helper()
		var want []int64
		for _, e := range all {
			if keep(e) {
				want = append(want, e.ID)
			}
		}
		var got []int64
		for _, e := range listIn(t, s, a.tenant.ID, f) {
			got = append(got, e.ID)
		}
		require.NotEmpty(t, want, "the filter %+v selects something", f)
		require.Equal(t, want, got, "filter %+v", f)
	}
	count(store.AuditFilter{Types: []string{"knowledge."}}, func(e store.AuditEvent) bool {
		return strings.HasPrefix(e.Action, "knowledge.")
	})
	count(store.AuditFilter{Types: []string{store.AuditLLMCall}}, func(e store.AuditEvent) bool { return e.Action == "llm.call" })
	count(store.AuditFilter{Types: []string{"llm.", store.AuditToolCall}}, func(e store.AuditEvent) bool {
		return strings.HasPrefix(e.Action, "llm.") || e.Action == "tool.call"
	})
	count(store.AuditFilter{AgentID: &a.agent.ID}, func(e store.AuditEvent) bool { return e.AgentID != nil && *e.AgentID == a.agent.ID })
	count(store.AuditFilter{ConversationID: &a.conversation.ID, Types: []string{"knowledge."}}, func(e store.AuditEvent) bool {
		return e.ConversationID != nil && *e.ConversationID == a.conversation.ID && strings.HasPrefix(e.Action, "knowledge.")
	})
	mid := all[20].CreatedAt
	count(store.AuditFilter{From: mid}, func(e store.AuditEvent) bool { return !e.CreatedAt.Before(mid) })
	count(store.AuditFilter{To: mid}, func(e store.AuditEvent) bool { return e.CreatedAt.Before(mid) })

	// Pages of 7 visit all 62 once, in order.
	var seen []int64
	f := store.AuditFilter{Limit: 7}
	for {
		page := listIn(t, s, a.tenant.ID, f)
		for _, e := range page {
			seen = append(seen, e.ID)
		}
		if len(page) < f.Limit {
			break
		}
		c := store.CursorOf(page[len(page)-1])
		f.After = &c
	}
	var ids []int64
	for _, e := range all {
		ids = append(ids, e.ID)
	}
	require.Equal(t, ids, seen)

	// Streaming yields the same rows and stops at the callback's error.
	var streamed int
	stop := context.Canceled
	err := s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		return tx.EachAuditEvent(ctx, store.AuditFilter{}, func(store.AuditEvent) error {
			streamed++
			if streamed == 5 {
				return stop
			}
			return nil
		})
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 5, streamed)
}
