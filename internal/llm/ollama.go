package llm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// OllamaConfig configures the Ollama provider.
type OllamaConfig struct {
	BaseURL    string       // e.g. http://127.0.0.1:11434 (a bare host:port means http)
	HTTPClient *http.Client // optional; by default one tuned client per provider
}

// The provider speaks Ollama's native POST /api/chat with "stream": false,
// not its OpenAI-compatible /v1 endpoint, because:
//   - the native API is Ollama's primary, documented surface; /v1 is a
//     compatibility layer that has lagged behind it (tool calling, options);
//   - it reports token counts (prompt_eval_count, eval_count) and why
//     generation stopped (done_reason) on every answer;
//   - it takes Ollama options such as num_predict directly;
//   - anyone who prefers /v1 can already use it: point the openai provider
//     at http://host:11434/v1 with KONSTRUCT_OPENAI_BASE_URL.
//
// The cost is a small hand-written client (this file) instead of reusing
// go-openai.
type ollamaProvider struct {
	url    string // .../api/chat
	client *http.Client
}

// NewOllama builds the Ollama provider; the HTTP client is built here, once.
func NewOllama(cfg OllamaConfig) Provider {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newHTTPClient()
	}
	p := &ollamaProvider{client: hc}
	if base := strings.TrimRight(cfg.BaseURL, "/"); base != "" {
		if !strings.Contains(base, "://") { // OLLAMA_HOST style "host:port"
			base = "http://" + base
		}
		p.url = base + "/api/chat"
	}
	return p
}

func (p *ollamaProvider) Name() string     { return ProviderOllama }
func (p *ollamaProvider) Configured() bool { return p.url != "" }

type ollamaChatRequest struct {
	Model    string          `json:"model"`
	Messages []ollamaMessage `json:"messages"`
	Tools    []ollamaTool    `json:"tools,omitempty"`
	Stream   bool            `json:"stream"` // always false: one JSON answer
	Options  *ollamaOptions  `json:"options,omitempty"`
}

type ollamaOptions struct {
	NumPredict  int      `json:"num_predict,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
}

type ollamaMessage struct {
	Role       string           `json:"role"`
	Content    string           `json:"content"`
	ToolCalls  []ollamaToolCall `json:"tool_calls,omitempty"`
	ToolName   string           `json:"tool_name,omitempty"`    // which tool produced a tool message
	ToolCallID string           `json:"tool_call_id,omitempty"` // newer servers match results by ID
	Images     []string         `json:"images,omitempty"`       // base64, for vision models
}

type ollamaToolCall struct {
	ID       string             `json:"id,omitempty"`
	Function ollamaFunctionCall `json:"function"`
}

type ollamaFunctionCall struct {
	Index     int             `json:"index"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"` // an object, not a string as in OpenAI
}

type ollamaTool struct {
	Type     string         `json:"type"`
	Function ollamaFunction `json:"function"`
}

type ollamaFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type ollamaChatResponse struct {
	Message         ollamaMessage `json:"message"`
	Done            bool          `json:"done"`
	DoneReason      string        `json:"done_reason"`
	PromptEvalCount int           `json:"prompt_eval_count"`
	EvalCount       int           `json:"eval_count"`
	Error           string        `json:"error"`
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

func (p *ollamaProvider) Complete(ctx context.Context, model string, req Request) (Response, error) {
	var out ollamaChatResponse
	if err := p.post(ctx, model, p.url, "chat", ollamaRequest(model, req), &out, func() string { return out.Error }); err != nil {
		return Response{}, err
	}
	return ollamaResponse(out), nil
}

// post sends one JSON request to an Ollama endpoint (op names it in errors:
// "chat", "embed") and decodes the answer into out. Ollama answers errors as
// {"error": "..."}, with an error status or, mid-stream, with 200; errText
// reads the latter from the decoded answer.
func (p *ollamaProvider) post(ctx context.Context, model, url, op string, in, out any, errText func() string) *Error {
	fail := func(kind Kind, status int, msg string, err error) *Error {
		return &Error{Kind: kind, Provider: ProviderOllama, Model: model, Status: status, Message: msg, Err: err}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fail(KindRequest, 0, "", fmt.Errorf("ollama: encode %s request: %w", op, err))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fail(KindRequest, 0, "", fmt.Errorf("ollama: build %s request: %w", op, err))
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	res, err := p.client.Do(hreq)
	if err != nil {
		return fail(kindForTransport(err), 0, "", fmt.Errorf("ollama: %s: %w", op, err))
	}
	defer res.Body.Close()
	if res.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		var e struct {
			Error string `json:"error"`
		}
		msg := truncate(string(b), 500)
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return fail(kindForStatus(res.StatusCode), res.StatusCode, msg, fmt.Errorf("ollama: %s: %s", op, res.Status))
	}
	// Read it all (rather than stream-decode) so the connection is reused.
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fail(kindForTransport(err), res.StatusCode, "", fmt.Errorf("ollama: read %s answer: %w", op, err))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fail(KindUnavailable, res.StatusCode, "", fmt.Errorf("ollama: decode %s answer: %w", op, err))
	}
	if msg := errText(); msg != "" {
		return fail(KindUnavailable, res.StatusCode, msg, fmt.Errorf("ollama: %s: %s", op, msg))
	}
	return nil
}

func ollamaRequest(model string, req Request) ollamaChatRequest {
	out := ollamaChatRequest{Model: model, Messages: make([]ollamaMessage, 0, len(req.Messages)+1)}
	if req.System != "" {
		out.Messages = append(out.Messages, ollamaMessage{Role: "system", Content: req.System})
	}
	// Ollama identifies a tool result by the tool's name; find it from the
	// call the result answers.
	var callNames map[string]string
	for _, m := range req.Messages {
		om := ollamaMessage{Role: string(m.Role), Content: m.Content}
		for _, img := range m.Images {
			om.Images = append(om.Images, base64.StdEncoding.EncodeToString(img.Data))
		}
		switch m.Role {
		case RoleAssistant:
			for i, c := range m.ToolCalls {
				if callNames == nil {
					callNames = map[string]string{}
				}
				callNames[c.ID] = c.Name
				om.ToolCalls = append(om.ToolCalls, ollamaToolCall{
					ID:       c.ID,
					Function: ollamaFunctionCall{Index: i, Name: c.Name, Arguments: argumentsOrEmpty(c.Arguments)},
				})
			}
		case RoleTool:
			om.ToolName = callNames[m.ToolCallID]
			om.ToolCallID = m.ToolCallID
		}
		out.Messages = append(out.Messages, om)
	}
	for _, t := range req.Tools {
		out.Tools = append(out.Tools, ollamaTool{Type: "function", Function: ollamaFunction{Name: t.Name, Description: t.Description, Parameters: t.Parameters}})
	}
	if req.MaxTokens > 0 || req.Temperature != nil {
		out.Options = &ollamaOptions{NumPredict: req.MaxTokens, Temperature: req.Temperature}
	}
	return out
}

func ollamaResponse(r ollamaChatResponse) Response {
	out := Response{
		Content: r.Message.Content,
		Usage:   Usage{InputTokens: r.PromptEvalCount, OutputTokens: r.EvalCount},
	}
	for _, c := range r.Message.ToolCalls {
		id := c.ID
		if id == "" { // older servers send no ID; the conversation needs one
			id = newCallID()
		}
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: id, Name: c.Function.Name, Arguments: argumentsOrEmpty(c.Function.Arguments)})
	}
	switch {
	case len(out.ToolCalls) > 0:
		out.StopReason = StopToolUse
	case r.DoneReason == "length":
		out.StopReason = StopMaxTokens
	default:
		out.StopReason = StopEnd
	}
	return out
}
