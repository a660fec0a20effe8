package llm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// EmbedResponse is what the pool returns for one batch of inputs.
type EmbedResponse struct {
	Provider, Model string      // who served it, as named in the chain ("openai", "text-embedding-3-small")
	Vectors         [][]float32 // one per input, in order
	Dimensions      int
	Usage           Usage // InputTokens counted by the provider
	CostMicroUSD    int64
	Attempts        []Attempt
}

// embedSuffix names a provider's embedding circuit.
const embedSuffix = "-embeddings"

// EmbeddingModel is the chain entry that served a response ("openai/text-embedding-3-small"):
// vectors are only comparable with vectors of the same model and dimension.
func (r EmbedResponse) EmbeddingModel() string { return r.Provider + "/" + r.Model }

// Embedder is implemented by providers that serve embeddings. Embed returns
// one vector per input, in order, all of the same dimension, or an *Error.
type Embedder interface {
	Embed(ctx context.Context, model string, inputs []string) (EmbedResponse, error)
}

// Embed embeds inputs with the first model of chain that answers, with the
// same fallback rules, circuit breakers and metrics as [Pool.Complete]. Each
// provider's embedding endpoint has its own circuit ("openai-embeddings" in
// the circuit metric and logs), so an embedding outage never skips chat
// models, nor the reverse. chain entries are "provider/model", e.g.
// "openai/text-embedding-3-small" or "ollama/nomic-embed-text".
//
// Falling back to another model yields vectors of another space (and often
// another dimension); the response names the model that served them so
// callers store and compare vectors per model.
func (p *Pool) Embed(ctx context.Context, chain []string, inputs []string) (EmbedResponse, error) {
	if err := p.checkChain(chain); err != nil {
		return EmbedResponse{}, err
	}
	if len(inputs) == 0 {
		return EmbedResponse{}, &Error{Kind: KindRequest, Message: "nothing to embed"}
	}
	for i, in := range inputs {
		if strings.TrimSpace(in) == "" {
			return EmbedResponse{}, &Error{Kind: KindRequest, Message: fmt.Sprintf("input %d is empty: the embedding APIs reject empty text", i)}
		}
	}
	attempts := make([]Attempt, 0, len(chain))
	var errs []error
	for i, entry := range chain {
		if ctx.Err() != nil {
			return EmbedResponse{}, canceled(ctx, attempts)
		}
		provider, model, _ := splitModel(entry) // checked above
		var resp EmbedResponse
		err, a := p.try(ctx, p.members[provider], provider, model, attempts, true, func(actx context.Context, pr Provider) error {
			e, ok := pr.(Embedder)
			if !ok {
				return &Error{Kind: KindRequest, Provider: provider, Model: model,
					Message: fmt.Sprintf("provider %s does not serve embeddings (use openai/... or ollama/...)", provider)}
			}
			r, err := e.Embed(actx, model, inputs)
			if err == nil {
				err = checkVectors(provider, model, r.Vectors, len(inputs))
			}
			resp = r
			return err
		})
		attempts = append(attempts, a)
		p.cfg.Metrics.attempt(a)
		if err == nil {
			resp.Provider, resp.Model = provider, model
			resp.Dimensions = len(resp.Vectors[0])
			resp.CostMicroUSD = cost(provider, model, resp.Usage)
			resp.Attempts = attempts
			p.cfg.Metrics.answered(Response{Provider: provider, Model: model, Usage: resp.Usage, CostMicroUSD: resp.CostMicroUSD})
			return resp, nil
		}
		switch err.Kind {
		case KindCanceled:
			return EmbedResponse{}, canceled(ctx, attempts)
		case KindRequest:
			err.Attempts = attempts
			return EmbedResponse{}, err
		}
		errs = append(errs, err)
		if i+1 < len(chain) {
			p.cfg.Metrics.fallback(provider, model)
			p.log.Warn("llm: embedding falling back to the next model",
				"provider", provider, "model", model, "outcome", a.Outcome, "error", err.Error(), "next", chain[i+1])
		}
	}
	return EmbedResponse{}, exhausted(Keys{}, chain, attempts, errs)
}

// checkVectors refuses an answer that cannot be stored: a server that
// returned the wrong number of vectors or mixed sizes is misbehaving, which
// another model may not be.
func checkVectors(provider, model string, vecs [][]float32, n int) error {
	bad := func(msg string) error {
		return &Error{Kind: KindUnavailable, Provider: provider, Model: model, Message: msg}
	}
	if len(vecs) != n {
		return bad(fmt.Sprintf("answered %d vectors for %d inputs", len(vecs), n))
	}
	for i, v := range vecs {
		if len(v) == 0 {
			return bad(fmt.Sprintf("vector %d is empty", i))
		}
		if len(v) != len(vecs[0]) {
			return bad(fmt.Sprintf("vector %d has %d dimensions, vector 0 has %d", i, len(v), len(vecs[0])))
		}
	}
	return nil
}

// Embed calls POST {base}/embeddings with go-openai, asking for float
// vectors (the default encoding; the fake and compatible servers speak both).
func (p *openAIProvider) Embed(ctx context.Context, model string, inputs []string) (EmbedResponse, error) {
	resp, err := p.client.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
		Input: inputs,
		Model: openai.EmbeddingModel(model),
	})
	if err != nil {
		e := openAIError(model, err)
		e.Err = fmt.Errorf("openai: create embeddings: %w", err)
		return EmbedResponse{}, e
	}
	// The API documents data in input order with an index each; place by
	// index so a server that reorders cannot mix vectors up.
	vecs := make([][]float32, len(inputs))
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= len(vecs) || vecs[d.Index] != nil {
			return EmbedResponse{}, &Error{Kind: KindUnavailable, Provider: ProviderOpenAI, Model: model,
				Message: fmt.Sprintf("embedding index %d is out of range or repeated", d.Index)}
		}
		vecs[d.Index] = d.Embedding
	}
	if len(resp.Data) != len(inputs) {
		return EmbedResponse{}, &Error{Kind: KindUnavailable, Provider: ProviderOpenAI, Model: model,
			Message: fmt.Sprintf("answered %d vectors for %d inputs", len(resp.Data), len(inputs))}
	}
	return EmbedResponse{Vectors: vecs, Usage: Usage{InputTokens: resp.Usage.PromptTokens}}, nil
}

type ollamaEmbedRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

type ollamaEmbedResponse struct {
	Embeddings      [][]float32 `json:"embeddings"`
	PromptEvalCount int         `json:"prompt_eval_count"`
	Error           string      `json:"error"`
}

// Embed calls Ollama's POST /api/embed (the batch endpoint that replaced
// /api/embeddings; it returns L2-normalised vectors).
func (p *ollamaProvider) Embed(ctx context.Context, model string, inputs []string) (EmbedResponse, error) {
	url := strings.TrimSuffix(p.url, "/api/chat") + "/api/embed"
	var out ollamaEmbedResponse
	if err := p.post(ctx, model, url, "embed", ollamaEmbedRequest{Model: model, Input: inputs}, &out, func() string { return out.Error }); err != nil {
		return EmbedResponse{}, err
	}
	return EmbedResponse{Vectors: out.Embeddings, Usage: Usage{InputTokens: out.PromptEvalCount}}, nil
}

// try runs one chain entry through the checks every call shares (configured,
// credentials not already rejected in this chain, circuit closed), bounded by
// the attempt timeout, and says how it went; m is the platform's or a
// tenant's client for provider (nil: none), earlier holds the attempts made
// so far in this chain.
func (p *Pool) try(ctx context.Context, m *member, provider, model string, earlier []Attempt, embed bool, call func(context.Context, Provider) error) (*Error, Attempt) {
	a := Attempt{Provider: provider, Model: model, KeySource: KeyPlatform}
	if m != nil {
		a.KeySource = m.source
	}
	start := time.Now()
	skip := func(outcome string, e *Error) (*Error, Attempt) {
		a.Outcome, a.Err, a.Skipped, a.Duration = outcome, e.Error(), true, time.Since(start)
		return e, a
	}

	if m == nil || !m.configured {
		e := notConfigured(provider, model)
		if m != nil && m.why != "" {
			e.Message = m.why
		}
		return skip(OutcomeNotConfigured, e)
	}
	for _, e := range earlier {
		if e.Provider == provider && e.KeySource == a.KeySource && e.Outcome == OutcomeAuth {
			return skip(OutcomeAuth, &Error{Kind: KindAuth, Provider: provider, Model: model,
				Message: "skipped: the provider rejected this key earlier in this chain"})
		}
	}
	br := m.breaker
	if embed {
		br = m.embedBreaker
	}
	done, err := br.Allow()
	if err != nil { // open, or half-open with its probe in flight
		return skip(OutcomeCircuitOpen, &Error{Kind: KindUnavailable, Provider: provider, Model: model,
			Message: "skipped: circuit open after repeated failures", Err: err})
	}

	actx, cancel := context.WithTimeout(ctx, p.cfg.AttemptTimeout)
	cerr := call(actx, m.provider)
	timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
	cancel()
	a.Duration = time.Since(start)

	if cerr == nil {
		done(nil)
		a.Outcome = OutcomeOK
		return nil, a
	}
	if ctx.Err() != nil {
		// The caller gave up (or its deadline passed): not the provider's fault.
		done(errCallerGone)
		e := &Error{Kind: KindCanceled, Provider: provider, Model: model, Err: ctx.Err()}
		a.Outcome, a.Err = OutcomeCanceled, e.Error()
		return e, a
	}
	e := asError(cerr, provider, model)
	if timedOut && e.Kind == KindUnavailable && e.Message == "" {
		e.Message = fmt.Sprintf("no answer within the attempt timeout (%s)", p.cfg.AttemptTimeout)
	}
	done(e)
	a.Outcome, a.Err = e.Kind.outcome(), e.Error()
	return e, a
}
