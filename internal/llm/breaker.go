package llm

import (
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// The circuit breaker is sony/gobreaker's two-step breaker, one per
// provider. It fits without changes:
//   - ReadyToTrip sees consecutive failures, so N failures in a row open it;
//   - Timeout is the cooldown, after which one probe (MaxRequests 1) is let
//     through half-open: success closes the circuit, failure reopens it;
//   - IsSuccessful lets only KindUnavailable count as a failure: a 400 or
//     401 is the provider answering, which is what the breaker asks;
//   - IsExcluded keeps the caller's cancellation out of the counts, and in
//     half-open it frees the probe slot for the next call;
//   - Allow is a mutex and a clock read, so an open circuit is skipped in
//     well under a microsecond.
type breaker = gobreaker.TwoStepCircuitBreaker[struct{}]

// errCallerGone is reported to the breaker when the caller's context ended
// during an attempt; it is excluded from the counts.
var errCallerGone = errors.New("llm: caller went away")

func newBreaker(provider string, failures int, cooldown time.Duration, onChange func(name string, from, to gobreaker.State)) *breaker {
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        provider,
		MaxRequests: 1,
		Interval:    0, // closed-state counts never expire; a success resets the run
		Timeout:     cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(failures)
		},
		IsSuccessful: func(err error) bool {
			return err == nil || KindOf(err) != KindUnavailable
		},
		IsExcluded: func(err error) bool {
			return errors.Is(err, errCallerGone)
		},
		OnStateChange: onChange,
	})
}
