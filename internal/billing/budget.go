package billing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

// Call is a model call about to be made.
type Call struct {
	TenantID       uuid.UUID
	AgentID        uuid.UUID
	ConversationID uuid.UUID
	Key            string // the call's usage idempotency key, <workflowID>:<turn>:llm:<call>
	TurnKey        string // <workflowID>:<turn>
	FirstOfTurn    bool   // the turn's first call: the message allowance is checked once per message
	// OwnKeys: the call can run on the tenant's own LLM keys, so the plan's
	// platform-paid tokens being used up does not stop it.
	OwnKeys bool
	Chain   []string
	Request llm.Request
}

// Refusal kinds.
const (
	RefusedBudget    = "budget"    // a hard-stop budget is spent
	RefusedAllowance = "allowance" // the plan's monthly messages or tokens are used up
)

// Refusal is why a model call may not be made. Notice is what the user is
// told ("" when this conversation was already told this month); Reason is
// for the operator and the logs.
type Refusal struct {
	Kind   string
	Notice string
	Reason string
}

func (r *Refusal) Error() string { return "billing: " + r.Kind + ": " + r.Reason }

// PausedNotice is what users hear when a hard-stop budget is spent.
const PausedNotice = "I'm paused at the moment: this workspace has reached its monthly AI budget, so I can't answer this message. " +
	"An administrator has been told and can raise the budget in the Konstruct portal."

// AllowanceNotice is what a conversation hears (once a month) when the
// plan's monthly allowance is used up.
const AllowanceNotice = "I can't answer more messages this month: this workspace has used its plan's monthly allowance. " +
	"An administrator has been told and can upgrade the plan in the Konstruct portal; I'll be back next month otherwise."

// BusyWait bounds how long a call waits for calls in flight to settle when
// their reservations, not spending, fill a budget.
const BusyWait = 10 * time.Second

// StaleReservation is when a reservation whose call never settled (its
// activity died) is released.
const StaleReservation = 15 * time.Minute

// Estimate is the most a request can cost on chain: its prompt's tokens as
// counted by llm.EstimateTokens (which errs high) plus MaxTokens of output,
// priced at the chain's dearest model (the pool may fall back to any).
func Estimate(chain []string, req llm.Request) int64 {
	in := llm.EstimateTokens(req.System)
	for _, m := range req.Messages {
		in += llm.EstimateMessageTokens(m)
	}
	for _, t := range req.Tools {
		in += llm.EstimateTokens(t.Name) + llm.EstimateTokens(t.Description) + llm.EstimateTokens(string(t.Parameters))
	}
	out := req.MaxTokens
	var most int64
	for _, m := range chain {
		most = max(most, llm.Cost(m, llm.Usage{InputTokens: in, OutputTokens: out}))
	}
	return most
}

// Admit decides, before the model is called, whether the call may go ahead:
// the plan's monthly allowance (on the turn's first call, when plans are
// enforced), then every hard-stop budget the call falls under, reserving its
// estimated cost (Estimate) atomically in Postgres. A nil Refusal admits the
// call; its reservation is settled with Settle (or released with Release)
// exactly once, keyed like the call's usage row, whatever the retries.
func (s *Service) Admit(ctx context.Context, c Call) (*Refusal, error) {
	if c.FirstOfTurn && s.Enforced() {
		r, err := s.checkAllowance(ctx, c)
		if r != nil || err != nil {
			return r, err
		}
	}
	amount := Estimate(c.Chain, c.Request)
	agent := c.AgentID
	deadline := s.now().Add(BusyWait)
	for {
		var res store.ReserveResult
		err := s.Store.WithTenant(ctx, c.TenantID, func(tx *store.Tx) error {
			var err error
			res, err = tx.ReserveBudget(ctx, c.TenantID, c.Key, &agent, amount, s.now(), StaleReservation)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("billing: admit: %w", err)
		}
		switch res.Outcome {
		case store.ReserveGranted, store.ReserveExisting:
			return nil, nil
		case store.ReserveBusy:
			if s.now().Before(deadline) {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
		}
		scope := "the organisation's"
		if res.Budget.AgentID != nil {
			scope = "this agent's"
		}
		return &Refusal{Kind: RefusedBudget, Notice: PausedNotice,
			Reason: fmt.Sprintf("%s monthly budget of %s has a hard stop and %s of it is spent (%s reserved by calls in flight)",
				scope, USD(res.Budget.LimitMicroUSD), USD(res.Budget.SpentMicroUSD), USD(res.Budget.ReservedMicroUSD))}, nil
	}
}

// checkAllowance refuses a new message over the plan's monthly messages or
// platform tokens. The conversation hears it once a month; the tenant's
// admins are emailed once a month.
func (s *Service) checkAllowance(ctx context.Context, c Call) (*Refusal, error) {
	var r *Refusal
	alert := false
	now := s.now()
	err := s.Store.WithTenant(ctx, c.TenantID, func(tx *store.Tx) error {
		plan, _, err := s.effective(ctx, tx, c.TenantID)
		if err != nil {
			return err
		}
		counts, err := tx.CountBilling(ctx, c.TenantID, now)
		if err != nil {
			return err
		}
		var what string
		switch {
		// The message being answered is already counted.
		case plan.MessagesPerMonth != nil && counts.Messages > int64(*plan.MessagesPerMonth):
			what = fmt.Sprintf("the %s plan's %d messages this month are used up", plan.Name, *plan.MessagesPerMonth)
		case plan.PlatformTokensPerMonth != nil && counts.Tokens >= *plan.PlatformTokensPerMonth && !c.OwnKeys:
			what = fmt.Sprintf("the %s plan's %d model tokens this month are used up", plan.Name, *plan.PlatformTokensPerMonth)
		default:
			return nil
		}
		r = &Refusal{Kind: RefusedAllowance, Reason: what}
		send, err := tx.ClaimNotice(ctx, c.TenantID, now, "allowance:"+c.ConversationID.String(), c.TurnKey)
		if err != nil {
			return err
		}
		if send {
			r.Notice = AllowanceNotice
		}
		alert, err = tx.ClaimNotice(ctx, c.TenantID, now, "alert:allowance", "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("billing: allowance: %w", err)
	}
	if alert {
		link := s.BillingURL(c.TenantID)
		s.sendToAdmins(ctx, c.TenantID, email{subject: "Your agents have stopped answering: monthly allowance used up",
			text: "Your agents are not answering new messages because " + r.Reason + ". Each conversation was told once. " +
				"Upgrade the plan to resume at once: " + link + "\n", link: link})
	}
	return r, nil
}

// Settle releases the call's reservation in the transaction that records
// its usage (whose row carries the actual cost into the budgets).
func (s *Service) Settle(ctx context.Context, tx *store.Tx, key string) error {
	return tx.SettleReservation(ctx, key, "settled")
}

// Release gives back the reservation of a call that failed.
func (s *Service) Release(ctx context.Context, tenantID uuid.UUID, key string) error {
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.SettleReservation(ctx, key, "released") })
	if err != nil {
		return fmt.Errorf("billing: release: %w", err)
	}
	return nil
}

// AfterUsage sends the budget alerts (80% and 100%, each once per budget and
// month) that the tenant's recorded usage has crossed.
func (s *Service) AfterUsage(ctx context.Context, tenantID uuid.UUID) error {
	var alerts []store.BudgetAlert
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		alerts, err = tx.ClaimBudgetAlerts(ctx, s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("billing: budget alerts: %w", err)
	}
	link := s.BillingURL(tenantID)
	for _, a := range alerts {
		whose := "Your organisation's"
		if a.AgentID != nil {
			whose = "The agent " + a.AgentName + "'s"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s monthly AI budget is %d%% spent: %s of %s.\n\n", whose, a.Percent, USD(a.SpentMicroUSD), USD(a.LimitMicroUSD))
		switch {
		case a.Percent >= 100 && a.HardStop:
			b.WriteString("The budget has a hard stop, so the agents it covers are paused: users are told the assistant is paused " +
				"until the budget is raised or the month ends.")
		case a.Percent >= 100:
			b.WriteString("The budget has no hard stop, so the agents keep answering and the spending goes on.")
		default:
			b.WriteString("Nothing is paused yet.")
		}
		fmt.Fprintf(&b, " Review the budget and the cost dashboard: %s\n", link)
		s.sendToAdmins(ctx, tenantID, email{subject: fmt.Sprintf("Budget %d%% spent", a.Percent), text: b.String(), link: link})
	}
	return nil
}

// USD formats micro-USD as dollars: with cents, or under a cent with the
// digits it takes (at least four: $0.0010, $0.00085).
func USD(micro int64) string {
	if micro >= 10_000 || micro <= -10_000 {
		return fmt.Sprintf("$%.2f", float64(micro)/1e6)
	}
	if micro == 0 {
		return "$0.00"
	}
	s := MicroToUSD(micro)
	for strings.HasSuffix(s, "0") && len(s)-strings.IndexByte(s, '.') > 5 {
		s = s[:len(s)-1]
	}
	if strings.HasPrefix(s, "-") {
		return "-$" + s[1:]
	}
	return "$" + s
}
