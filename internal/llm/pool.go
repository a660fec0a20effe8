package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
)

// PoolConfig tunes a Pool. Zero values take the defaults.
type PoolConfig struct {
	AttemptTimeout  time.Duration // per model attempt (default 60s); the caller's deadline still wins
	BreakerFailures int           // consecutive unavailable failures that open a provider's circuit (default 5)
	BreakerCooldown time.Duration // how long a circuit stays open before a half-open probe (default 30s)
	Metrics         *Metrics      // may be nil
	Logger          *slog.Logger  // may be nil: slog.Default()
}

// Pool completes requests along a chain of models, falling back from one to
// the next. It is safe for concurrent use; build one per process.
type Pool struct {
	members map[string]*member
	cfg     PoolConfig
	log     *slog.Logger
}

type member struct {
	provider   Provider
	configured bool
	breaker    *breaker
	// embedBreaker is the circuit of the provider's embedding endpoint: an
	// embedding outage must not stop chat, nor the reverse.
	embedBreaker *breaker
}

// NewPool builds a pool over providers. Providers reporting that they are
// not configured are kept so that chains naming them are skipped with a
// message naming the variable to set; nil providers are ignored, and a later
// provider replaces an earlier one of the same name.
func NewPool(providers []Provider, cfg PoolConfig) *Pool {
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 60 * time.Second
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = 5
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = 30 * time.Second
	}
	p := &Pool{members: make(map[string]*member, len(providers)), cfg: cfg, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.Default()
	}
	for _, pr := range providers {
		if pr == nil {
			continue
		}
		name := pr.Name()
		m := &member{provider: pr, configured: true}
		if c, ok := pr.(configurable); ok {
			m.configured = c.Configured()
		}
		m.breaker = newBreaker(name, cfg.BreakerFailures, cfg.BreakerCooldown, p.onStateChange)
		m.embedBreaker = newBreaker(name+embedSuffix, cfg.BreakerFailures, cfg.BreakerCooldown, p.onStateChange)
		p.members[name] = m
		if m.configured {
			cfg.Metrics.circuitState(name, gobreaker.StateClosed)
			cfg.Metrics.circuitState(name+embedSuffix, gobreaker.StateClosed)
		}
	}
	return p
}

// onStateChange runs under the breaker's lock: it must not call the breaker.
func (p *Pool) onStateChange(provider string, from, to gobreaker.State) {
	p.cfg.Metrics.circuitState(provider, to)
	level := slog.LevelInfo
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
	}
	p.log.Log(context.Background(), level, "llm: circuit state changed", "provider", provider, "from", from.String(), "to", to.String())
}

// Configured returns the names of the configured providers, sorted.
func (p *Pool) Configured() []string {
	var names []string
	for name, m := range p.members {
		if m.configured {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Complete asks the models of chain in order until one answers.
//
//   - KindUnavailable (outage, throttling, timeout, open circuit): next model.
//   - KindAuth (401/402/403): next model of another provider; later models of
//     the same provider are skipped, since they share the rejected key.
//   - KindNotConfigured: skipped.
//   - KindRequest: returned at once; the request would fail everywhere.
//   - The caller's context ending: returned at once as KindCanceled.
//
// When nothing answers, the *Error wraps every attempt's error and its Kind
// is KindUnavailable if any model was unavailable (retrying later may work),
// else KindAuth, else KindNotConfigured. Errors carry Attempts too.
func (p *Pool) Complete(ctx context.Context, chain []string, req Request) (Response, error) {
	if err := p.checkChain(chain); err != nil {
		return Response{}, err
	}
	attempts := make([]Attempt, 0, len(chain))
	var errs []error
	for i, entry := range chain {
		if ctx.Err() != nil {
			return Response{}, canceled(ctx, attempts)
		}
		provider, model, _ := splitModel(entry) // checked above
		resp, err, a := p.attempt(ctx, provider, model, req, attempts)
		attempts = append(attempts, a)
		p.cfg.Metrics.attempt(a)
		if err == nil {
			resp.Provider, resp.Model = provider, model
			resp.CostMicroUSD = cost(provider, model, resp.Usage)
			resp.Attempts = attempts
			p.cfg.Metrics.answered(resp)
			return resp, nil
		}
		switch err.Kind {
		case KindCanceled:
			return Response{}, canceled(ctx, attempts)
		case KindRequest:
			err.Attempts = attempts
			return Response{}, err
		}
		errs = append(errs, err)
		if i+1 < len(chain) {
			p.cfg.Metrics.fallback(provider, model)
			p.log.Warn("llm: falling back to the next model",
				"provider", provider, "model", model, "outcome", a.Outcome, "error", err.Error(), "next", chain[i+1])
		}
	}
	return Response{}, exhausted(chain, attempts, errs)
}

// attempt completes req on one chain entry; earlier holds the attempts made
// so far in this chain.
func (p *Pool) attempt(ctx context.Context, provider, model string, req Request, earlier []Attempt) (Response, *Error, Attempt) {
	if !supportsVision(provider, model) && hasImages(req) {
		// A model that cannot see would refuse the whole request (a 400,
		// which stops the chain): it reads each image's text instead.
		req = withoutImages(req)
	}
	var resp Response
	err, a := p.try(ctx, provider, model, earlier, false, func(actx context.Context, pr Provider) error {
		var cerr error
		resp, cerr = pr.Complete(actx, model, req)
		return cerr
	})
	if err != nil {
		return Response{}, err, a
	}
	return resp, nil, a
}

// checkChain rejects malformed chains before anything is called: a typo in
// an agent's configuration should be loud, not a silent fallback.
func (p *Pool) checkChain(chain []string) error {
	if len(chain) == 0 {
		return &Error{Kind: KindNotConfigured, Message: "the model chain is empty: give the agent models or set KONSTRUCT_DEFAULT_MODELS"}
	}
	for _, entry := range chain {
		provider, _, err := splitModel(entry)
		if err != nil {
			return &Error{Kind: KindRequest, Err: err}
		}
		if p.members[provider] == nil && !isKnownProvider(provider) {
			return &Error{Kind: KindRequest, Err: fmt.Errorf("llm: model %q: unknown provider %q (known: %s)", entry, provider, strings.Join(knownProviders, ", "))}
		}
	}
	return nil
}

// asError gives a provider's error a Kind. Providers return *Error; anything
// else is treated as unavailable, so that one provider's unexpected failure
// cannot stop the chain.
func asError(err error, provider, model string) *Error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		if c.Provider == "" {
			c.Provider, c.Model = provider, model
		}
		if c.Kind == 0 || c.Kind == KindCanceled {
			c.Kind = KindUnavailable
		}
		return &c
	}
	return &Error{Kind: KindUnavailable, Provider: provider, Model: model, Err: err}
}

func canceled(ctx context.Context, attempts []Attempt) *Error {
	return &Error{Kind: KindCanceled, Err: fmt.Errorf("llm: complete: %w", ctx.Err()), Attempts: attempts}
}

// exhausted builds the error for a chain in which nothing answered.
func exhausted(chain []string, attempts []Attempt, errs []error) *Error {
	kind := KindNotConfigured
	for _, a := range attempts {
		switch a.Outcome {
		case OutcomeUnavailable, OutcomeCircuitOpen:
			kind = KindUnavailable
		case OutcomeAuth:
			if kind != KindUnavailable {
				kind = KindAuth
			}
		}
	}
	e := &Error{Kind: kind, Err: errors.Join(errs...), Attempts: attempts}
	switch kind {
	case KindNotConfigured:
		var hints []string
		for _, a := range attempts {
			h := envHint(a.Provider)
			if !slices.Contains(hints, h) {
				hints = append(hints, h)
			}
		}
		e.Message = fmt.Sprintf("no provider in the model chain %v is configured: set %s", chain, strings.Join(hints, "; "))
	default:
		e.Message = fmt.Sprintf("no model in the chain %v answered:\n%s", chain, e.Err)
	}
	return e
}
