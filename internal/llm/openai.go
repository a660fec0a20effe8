package llm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// OpenAIConfig configures the OpenAI provider. BaseURL points it at any
// OpenAI-compatible server (vLLM, LiteLLM, Azure-compatible gateways, a test
// fake); such servers may need no key, so either field makes it configured.
type OpenAIConfig struct {
	APIKey       string
	BaseURL      string // default https://api.openai.com/v1
	Organization string
	HTTPClient   *http.Client // optional; by default one tuned client per provider
}

type openAIProvider struct {
	client     *openai.Client
	configured bool
}

// NewOpenAI builds the OpenAI provider; the HTTP client is built here, once.
func NewOpenAI(cfg OpenAIConfig) Provider {
	c := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		c.BaseURL = cfg.BaseURL
	}
	c.OrgID = cfg.Organization
	c.HTTPClient = cfg.HTTPClient
	if cfg.HTTPClient == nil {
		c.HTTPClient = newHTTPClient()
	}
	return &openAIProvider{
		client:     openai.NewClientWithConfig(c),
		configured: cfg.APIKey != "" || cfg.BaseURL != "",
	}
}

func (p *openAIProvider) Name() string     { return ProviderOpenAI }
func (p *openAIProvider) Configured() bool { return p.configured }

func (p *openAIProvider) Complete(ctx context.Context, model string, req Request) (Response, error) {
	creq, err := openAIRequest(model, req)
	if err != nil {
		return Response{}, &Error{Kind: KindRequest, Provider: ProviderOpenAI, Model: model, Err: fmt.Errorf("openai: build request: %w", err)}
	}
	resp, err := p.client.CreateChatCompletion(ctx, creq)
	if err != nil {
		return Response{}, openAIError(model, err)
	}
	if len(resp.Choices) == 0 {
		return Response{}, &Error{Kind: KindUnavailable, Provider: ProviderOpenAI, Model: model, Message: "response has no choices"}
	}
	return openAIResponse(resp), nil
}

// isReasoningModel matches the o-series and gpt-5 families, which reject a
// temperature other than the default.
func isReasoningModel(model string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

func openAIRequest(model string, req Request) (openai.ChatCompletionRequest, error) {
	msgs := make([]openai.ChatCompletionMessage, 0, len(req.Messages)+1)
	if req.System != "" {
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: req.System})
	}
	for i, m := range req.Messages {
		switch m.Role {
		case RoleUser:
			msgs = append(msgs, openAIUserMessage(m))
		case RoleAssistant:
			om := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: m.Content}
			for _, c := range m.ToolCalls {
				if err := checkArguments(c.Arguments); err != nil {
					return openai.ChatCompletionRequest{}, fmt.Errorf("message %d: tool call %s: %w", i, c.ID, err)
				}
				om.ToolCalls = append(om.ToolCalls, openai.ToolCall{
					ID:       c.ID,
					Type:     openai.ToolTypeFunction,
					Function: openai.FunctionCall{Name: c.Name, Arguments: string(argumentsOrEmpty(c.Arguments))},
				})
			}
			msgs = append(msgs, om)
		case RoleTool:
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleTool, Content: m.Content, ToolCallID: m.ToolCallID})
		default:
			return openai.ChatCompletionRequest{}, fmt.Errorf("message %d: unknown role %q", i, m.Role)
		}
	}
	out := openai.ChatCompletionRequest{Model: model, Messages: msgs}
	for _, t := range req.Tools {
		def := &openai.FunctionDefinition{Name: t.Name, Description: t.Description}
		if len(t.Parameters) > 0 {
			def.Parameters = t.Parameters
		}
		out.Tools = append(out.Tools, openai.Tool{Type: openai.ToolTypeFunction, Function: def})
	}
	if req.MaxTokens > 0 {
		// max_tokens is deprecated and rejected by reasoning models;
		// max_completion_tokens works for every current chat model.
		out.MaxCompletionTokens = req.MaxTokens
	}
	if req.Temperature != nil && !isReasoningModel(model) {
		// go-openai omits a zero temperature (omitempty on float32), so 0
		// means the server default; reasoning models accept no temperature
		// at all, and dropping it beats failing the whole chain with a 400.
		out.Temperature = float32(*req.Temperature)
	}
	return out, nil
}

// openAIUserMessage is a user message: a string, or with images an array of
// content parts, each image a base64 data URL (the images first, then the
// text, as OpenAI's vision guide shows them).
func openAIUserMessage(m Message) openai.ChatCompletionMessage {
	if len(m.Images) == 0 {
		return openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: m.Content}
	}
	parts := make([]openai.ChatMessagePart, 0, len(m.Images)+1)
	for _, img := range m.Images {
		parts = append(parts, openai.ChatMessagePart{Type: openai.ChatMessagePartTypeImageURL,
			ImageURL: &openai.ChatMessageImageURL{URL: dataURL(img), Detail: openai.ImageURLDetailAuto}})
	}
	if m.Content != "" {
		parts = append(parts, openai.ChatMessagePart{Type: openai.ChatMessagePartTypeText, Text: m.Content})
	}
	return openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, MultiContent: parts}
}

// dataURL is an image as a data: URL ("data:image/png;base64,...").
func dataURL(img Image) string {
	return "data:" + img.MimeType + ";base64," + base64.StdEncoding.EncodeToString(img.Data)
}

func openAIResponse(resp openai.ChatCompletionResponse) Response {
	ch := resp.Choices[0]
	out := Response{
		Content: ch.Message.Content,
		Usage:   Usage{InputTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.CompletionTokens},
	}
	for _, c := range ch.Message.ToolCalls {
		id := c.ID
		if id == "" { // some OpenAI-compatible servers omit it
			id = newCallID()
		}
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: id, Name: c.Function.Name, Arguments: modelArguments(c.Function.Arguments)})
	}
	switch {
	case len(out.ToolCalls) > 0: // some compatible servers say "stop" with tool calls
		out.StopReason = StopToolUse
	case ch.FinishReason == openai.FinishReasonLength:
		out.StopReason = StopMaxTokens
	default:
		out.StopReason = StopEnd
	}
	return out
}

func openAIError(model string, err error) *Error {
	e := &Error{Provider: ProviderOpenAI, Model: model, Err: fmt.Errorf("openai: create chat completion: %w", err)}
	var (
		reqErr *openai.RequestError
		apiErr *openai.APIError
	)
	switch {
	case errors.As(err, &reqErr): // an error status whose body is not OpenAI's error JSON
		e.Status = reqErr.HTTPStatusCode
		e.Kind = kindForStatus(e.Status)
		e.Message = truncate(string(reqErr.Body), 500)
	case errors.As(err, &apiErr):
		e.Status = apiErr.HTTPStatusCode
		e.Kind = kindForStatus(e.Status)
		e.Message = apiErr.Message
	default:
		e.Kind = kindForTransport(err)
	}
	return e
}

// argumentsOrEmpty returns args, or an empty JSON object.
func argumentsOrEmpty(args json.RawMessage) json.RawMessage {
	if len(args) == 0 {
		return json.RawMessage(`{}`)
	}
	return args
}

// checkArguments rejects arguments that are not JSON before they are sent:
// the wire formats embed them and a vendor would answer with a 400.
func checkArguments(args json.RawMessage) error {
	if len(args) > 0 && !json.Valid(args) {
		return errors.New("arguments are not valid JSON")
	}
	return nil
}

// modelArguments turns a model's argument string into JSON. Models sometimes
// emit invalid JSON; it is kept as a JSON string so the tool framework's
// schema validation reports it back to the model instead of this call failing.
func modelArguments(s string) json.RawMessage {
	switch {
	case strings.TrimSpace(s) == "":
		return json.RawMessage(`{}`)
	case json.Valid([]byte(s)):
		return json.RawMessage(s)
	default:
		b, _ := json.Marshal(s)
		return b
	}
}
