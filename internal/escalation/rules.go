// Package escalation holds what human escalation needs outside the workflow
// itself: an agent's rules as a turn applies them, the deterministic
// detection of triggers in a message (keywords, the user asking for a
// person, a turn the assistant could not resolve), the staff actions that
// reach a conversation workflow, and the service the REST API and the
// portal share to record those actions and read escalations.
//
// The detection helpers are pure (no I/O, no clock, no map iteration), so
// the conversation workflow may call them as well as activities.
package escalation

import (
	"time"

	"github.com/konstruct/konstruct/internal/store"
)

// DefaultHandoffMessage is what the user is told when the agent's rules name
// no handoff message.
const DefaultHandoffMessage = "I'm handing this conversation to a person from our team. " +
	"They'll reply here as soon as they can."

// DefaultCooldown is how long after a hand-back only an explicit request for
// a person hands a conversation off again.
const DefaultCooldown = 10 * time.Minute

// Rules are an agent's escalation rules with their defaults applied.
type Rules struct {
	Enabled        bool
	Keywords       []string
	UserRequest    bool // the user asking for a person hands off
	MaxFailedTurns int  // 0: never
	OnError        bool // an unavailable or refusing model chain, or the budget, hands off
	HandoffMessage string
	NotifyChannel  string
	Cooldown       time.Duration
}

// RulesOf applies the defaults to stored rules. Escalation is on when the
// document says so or, in a document written before the switch existed,
// when it sets a rule (keywords or max_failed_turns).
func RulesOf(e store.Escalation) Rules {
	r := Rules{
		Enabled:        len(e.Keywords) > 0 || e.MaxFailedTurns > 0,
		Keywords:       e.Keywords,
		UserRequest:    true,
		MaxFailedTurns: e.MaxFailedTurns,
		OnError:        true,
		HandoffMessage: e.HandoffMessage,
		NotifyChannel:  e.NotifyChannel,
		Cooldown:       DefaultCooldown,
	}
	if e.Enabled != nil {
		r.Enabled = *e.Enabled
	}
	if e.UserRequest != nil {
		r.UserRequest = *e.UserRequest
	}
	if e.OnError != nil {
		r.OnError = *e.OnError
	}
	if e.CooldownMinutes != nil {
		r.Cooldown = time.Duration(*e.CooldownMinutes) * time.Minute
	}
	if r.HandoffMessage == "" {
		r.HandoffMessage = DefaultHandoffMessage
	}
	return r
}

// Allows reports whether the rules let trigger hand a conversation off.
func (r Rules) Allows(trigger string) bool {
	if !r.Enabled {
		return false
	}
	switch trigger {
	case store.TriggerKeyword:
		return len(r.Keywords) > 0
	case store.TriggerUserRequest:
		return r.UserRequest
	case store.TriggerFailedTurns:
		return r.MaxFailedTurns > 0
	case store.TriggerError, store.TriggerBudget:
		return r.OnError
	case store.TriggerTool:
		return true
	}
	return false
}
