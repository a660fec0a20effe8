package billing_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/mail/mailtest"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

type fixture struct {
	store  *store.Store
	tenant uuid.UUID
	agent  uuid.UUID
	conv   uuid.UUID
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	f := fixture{store: s, tenant: uuid.New()}
	require.NoError(t, s.WithTenant(ctx, f.tenant, func(tx *store.Tx) error {
		if _, err := tx.CreateTenant(ctx, f.tenant, "Budgeted"); err != nil {
			return err
		}
		if _, err := tx.CreateUser(ctx, store.User{Email: "boss@example.com", PasswordHash: "x", Role: store.RoleCustomerAdmin}); err != nil {
			return err
		}
		a, err := tx.CreateAgent(ctx, store.Agent{Name: "Penny"})
		if err != nil {
			return err
		}
		f.agent = a.ID
		cv, err := tx.EnsureConversation(ctx, store.Conversation{AgentID: a.ID, Channel: store.ChannelSlack, ExternalKey: "k", WorkflowID: "wf"})
		f.conv = cv.ID
		return err
	}))
	return f
}

func (f fixture) budget(t testing.TB, agent *uuid.UUID, limit int64, hardStop bool) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, f.store.WithTenant(ctx, f.tenant, func(tx *store.Tx) error {
		return tx.PutBudget(ctx, f.tenant, agent, limit, hardStop)
	}))
}

// call runs one model call through reserve → usage row + settle, as Respond
// does, returning whether it was admitted.
func (f fixture) call(t testing.TB, svc *billing.Service, key string, req llm.Request, actual int64) bool {
	t.Helper()
	ctx := context.Background()
	r, err := svc.Admit(ctx, billing.Call{TenantID: f.tenant, AgentID: f.agent, ConversationID: f.conv, Key: key,
		TurnKey: key, Chain: []string{"openai/gpt-4o-mini"}, Request: req})
	require.NoError(t, err)
	if r != nil {
		require.Equal(t, billing.RefusedBudget, r.Kind)
		require.Equal(t, billing.PausedNotice, r.Notice)
		return false
	}
	require.NoError(t, f.store.WithTenant(ctx, f.tenant, func(tx *store.Tx) error {
		if err := tx.AddUsage(ctx, store.Usage{AgentID: &f.agent, Provider: "openai", Model: "gpt-4o-mini", InputTokens: 10,
			OutputTokens: 10, CostMicroUSD: actual, IdempotencyKey: key}); err != nil {
			return err
		}
		return svc.Settle(ctx, tx, key)
	}))
	return true
}

func (f fixture) budgets(t testing.TB) []store.Budget {
	t.Helper()
	var out []store.Budget
	ctx := context.Background()
	require.NoError(t, f.store.WithTenant(ctx, f.tenant, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListBudgets(ctx, time.Now())
		return err
	}))
	return out
}

// A request's estimate: its prompt counted, its output capped by max_tokens.
var request = llm.Request{System: "You are Penny.", Messages: []llm.Message{{Role: llm.RoleUser, Content: "How much is left?"}}, MaxTokens: 1000}

func TestConcurrentCallsOvershootByAtMostOneEstimate(t *testing.T) {
	f := newFixture(t)
	svc := &billing.Service{Store: f.store, Logger: slog.New(slog.DiscardHandler)}
	est := billing.Estimate([]string{"openai/gpt-4o-mini"}, request)
	require.Positive(t, est)
	limit := 4*est + est/2
	f.budget(t, nil, limit, true)

	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if f.call(t, svc, fmt.Sprintf("wf:%d:llm:0", i), request, est) {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	b := f.budgets(t)
	require.Len(t, b, 1)
	require.Zero(t, b[0].ReservedMicroUSD, "every reservation released")
	require.Equal(t, admitted.Load()*est, b[0].SpentMicroUSD, "spent is the sum of the usage rows")
	require.LessOrEqual(t, b[0].SpentMicroUSD, limit+est, "overshoot bounded by one estimate")
	require.Equal(t, int64(5), admitted.Load(), "calls go ahead while the budget has room")
}

func TestReservationIsOncePerCallKey(t *testing.T) {
	f := newFixture(t)
	svc := &billing.Service{Store: f.store}
	ctx := context.Background()
	f.budget(t, &f.agent, 1_000_000, true)
	c := billing.Call{TenantID: f.tenant, AgentID: f.agent, Key: "wf:1:llm:0", Chain: []string{"openai/gpt-4o-mini"}, Request: request}
	est := billing.Estimate(c.Chain, c.Request)
	for range 3 { // an activity retried
		r, err := svc.Admit(ctx, c)
		require.NoError(t, err)
		require.Nil(t, r)
	}
	require.Equal(t, est, f.budgets(t)[0].ReservedMicroUSD, "reserved once")
	require.NoError(t, svc.Release(ctx, f.tenant, c.Key))
	require.NoError(t, svc.Release(ctx, f.tenant, c.Key))
	require.Zero(t, f.budgets(t)[0].ReservedMicroUSD, "released once")

	// A budget without a hard stop reserves nothing and refuses nothing.
	f.budget(t, &f.agent, 1, false)
	for i := range 3 {
		require.True(t, f.call(t, svc, fmt.Sprintf("soft:%d", i), request, 100))
	}
	require.Zero(t, f.budgets(t)[0].ReservedMicroUSD)
	require.Equal(t, int64(300), f.budgets(t)[0].SpentMicroUSD)
}

func TestStaleReservationIsReleased(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	svc := &billing.Service{Store: f.store, Now: func() time.Time { return now }}
	est := billing.Estimate([]string{"openai/gpt-4o-mini"}, request)
	f.budget(t, nil, est, true)
	ctx := context.Background()
	// A call reserved the whole budget and its worker died.
	r, err := svc.Admit(ctx, billing.Call{TenantID: f.tenant, AgentID: f.agent, Key: "dead:1:llm:0", Chain: []string{"openai/gpt-4o-mini"}, Request: request})
	require.NoError(t, err)
	require.Nil(t, r)
	now = now.Add(billing.StaleReservation + time.Minute)
	require.True(t, f.call(t, svc, "alive:1:llm:0", request, 1), "the dead call's reservation lapsed")
}

func TestBudgetAlertsAreEmailedOncePerPeriod(t *testing.T) {
	f := newFixture(t)
	smtp := mailtest.Start(t)
	sender, err := mail.New(smtp.URL(), "Konstruct <no-reply@konstruct.test>", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	svc := &billing.Service{Store: f.store, Mail: sender, PublicURL: "https://konstruct.example"}
	f.budget(t, nil, 1000, true)
	ctx := context.Background()

	require.True(t, f.call(t, svc, "a", request, 500))
	require.NoError(t, svc.AfterUsage(ctx, f.tenant))
	require.Empty(t, smtp.Messages(), "50%: no alert")

	require.True(t, f.call(t, svc, "b", request, 350))
	require.NoError(t, svc.AfterUsage(ctx, f.tenant))
	m := smtp.Wait(t, "boss@example.com", 10*time.Second)
	require.Contains(t, m.Subject, "Budget 80% spent")
	require.Contains(t, m.Text, "$0.00085 of $0.0010")
	require.Contains(t, m.Text, "https://konstruct.example/t/"+f.tenant.String()+"/billing")
	require.NoError(t, svc.AfterUsage(ctx, f.tenant))

	require.True(t, f.call(t, svc, "c", request, 200))
	require.NoError(t, svc.AfterUsage(ctx, f.tenant))
	require.NoError(t, svc.AfterUsage(ctx, f.tenant))
	m = smtp.Wait(t, "boss@example.com", 10*time.Second)
	require.Contains(t, m.Subject, "Budget 100% spent")
	require.Contains(t, m.Text, "paused")
	require.False(t, f.call(t, svc, "d", request, 1), "the hard stop refuses the next call")
	time.Sleep(200 * time.Millisecond)
	require.Len(t, smtp.Messages(), 2, "each alert once per period")
	for _, m := range smtp.Messages() {
		require.True(t, strings.HasSuffix(m.Subject, "· Budgeted"), m.Subject)
	}
}

// BenchmarkReserveSettle measures the path every model call takes around the
// model: Admit (with hard-stop budgets: the row locks on their month rows and
// the reservation) and the usage row with the settle, against the same calls
// with no budget (Admit finds none) as the baseline.
func BenchmarkReserveSettle(b *testing.B) {
	for _, bc := range []struct {
		name    string
		budgets bool
	}{{"no-budget", false}, {"two-hard-stop-budgets", true}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b)
			svc := &billing.Service{Store: f.store}
			if bc.budgets {
				f.budget(b, nil, 1<<60, true)
				f.budget(b, &f.agent, 1<<60, true)
			}
			i := 0
			for b.Loop() {
				i++
				f.call(b, svc, fmt.Sprintf("bench:%d:llm:0", i), request, 100)
			}
		})
	}
}
