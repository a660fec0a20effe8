package llm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
)

// AnthropicConfig configures the Anthropic provider.
type AnthropicConfig struct {
	APIKey     string
	BaseURL    string       // default https://api.anthropic.com
	HTTPClient *http.Client // optional; by default one tuned client per provider
}

// anthropicDefaultMaxTokens is sent when the request leaves MaxTokens at 0:
// the Messages API requires a value.
const anthropicDefaultMaxTokens = 1024

type anthropicProvider struct {
	client     anthropic.Client
	configured bool
}

// NewAnthropic builds the Anthropic provider (Messages API, anthropic-sdk-go
// v2); the HTTP client is built here, once.
func NewAnthropic(cfg AnthropicConfig) Provider {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newHTTPClient()
	}
	opts := []option.RequestOption{
		// Configuration comes from KONSTRUCT_* only: never from ANTHROPIC_*
		// variables or a credentials profile on the worker's disk.
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(cfg.APIKey),
		option.WithHTTPClient(hc),
		// The pool falls back and Temporal retries later; SDK retries
		// would multiply attempts and hold a dead provider for seconds.
		option.WithMaxRetries(0),
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	return &anthropicProvider{client: anthropic.NewClient(opts...), configured: cfg.APIKey != ""}
}

func (p *anthropicProvider) Name() string     { return ProviderAnthropic }
func (p *anthropicProvider) Configured() bool { return p.configured }

func (p *anthropicProvider) Complete(ctx context.Context, model string, req Request) (Response, error) {
	params, err := anthropicRequest(model, req)
	if err != nil {
		return Response{}, &Error{Kind: KindRequest, Provider: ProviderAnthropic, Model: model, Err: fmt.Errorf("anthropic: build request: %w", err)}
	}
	msg, err := p.client.Messages.New(ctx, params)
	if err != nil {
		return Response{}, anthropicError(model, err)
	}
	return anthropicResponse(msg), nil
}

// anthropicRequest maps a Request to the Messages API: the system prompt is
// top-level, tool calls are tool_use blocks of the assistant turn, tool
// results are tool_result blocks of the following user turn, and consecutive
// turns of one role are merged into one message (several tool results after
// one assistant turn become one user message).
//
// Temperature is not sent: API version 2026-10-21, which this SDK speaks,
// no longer has the parameter.
func anthropicRequest(model string, req Request) (anthropic.MessageNewParams, error) {
	p := anthropic.MessageNewParams{Model: model, MaxTokens: anthropicDefaultMaxTokens}
	if req.MaxTokens > 0 {
		p.MaxTokens = int64(req.MaxTokens)
	}
	if req.System != "" {
		p.System = []anthropic.TextBlockParam{{Text: req.System}}
	}
	msgs := make([]anthropic.MessageParam, 0, len(req.Messages))
	lastRole := Role("")
	for i, m := range req.Messages {
		var blocks []anthropic.ContentBlockParamUnion
		role := RoleUser
		switch m.Role {
		case RoleUser:
			// Images first, then the text: Anthropic's vision guide finds
			// answers best in that order.
			for _, img := range m.Images {
				blocks = append(blocks, anthropic.NewImageBlockBase64(img.MimeType, base64.StdEncoding.EncodeToString(img.Data)))
			}
			if m.Content != "" { // the API rejects empty text blocks
				blocks = append(blocks, anthropic.NewTextBlock(m.Content))
			}
		case RoleAssistant:
			role = RoleAssistant
			if m.Content != "" {
				blocks = append(blocks, anthropic.NewTextBlock(m.Content))
			}
			for _, c := range m.ToolCalls {
				if err := checkArguments(c.Arguments); err != nil {
					return p, fmt.Errorf("message %d: tool call %s: %w", i, c.ID, err)
				}
				blocks = append(blocks, anthropic.NewToolUseBlock(c.ID, argumentsOrEmpty(c.Arguments), c.Name))
			}
		case RoleTool:
			tr := anthropic.ToolResultBlockParam{ToolUseID: m.ToolCallID}
			if m.Content != "" {
				tr.Content = []anthropic.ToolResultBlockParamContentUnion{{OfText: &anthropic.TextBlockParam{Text: m.Content}}}
			}
			blocks = append(blocks, anthropic.ContentBlockParamUnion{OfToolResult: &tr})
		default:
			return p, fmt.Errorf("message %d: unknown role %q", i, m.Role)
		}
		if len(blocks) == 0 {
			continue
		}
		if role == lastRole {
			last := &msgs[len(msgs)-1]
			if role == RoleUser {
				last.OfUser.Content = append(last.OfUser.Content, blocks...)
			} else {
				last.OfAssistant.Content = append(last.OfAssistant.Content, blocks...)
			}
			continue
		}
		if role == RoleUser {
			msgs = append(msgs, anthropic.NewUserMessage(blocks...))
		} else {
			msgs = append(msgs, anthropic.NewAssistantMessage(blocks...))
		}
		lastRole = role
	}
	p.Messages = msgs
	for _, t := range req.Tools {
		tp := anthropic.ToolParam{Name: t.Name}
		if t.Description != "" {
			tp.Description = anthropic.String(t.Description)
		}
		if len(t.Parameters) > 0 {
			if !json.Valid(t.Parameters) {
				return p, fmt.Errorf("tool %s: parameters are not valid JSON", t.Name)
			}
			// Sent as given: converting the schema into the SDK's typed
			// fields would re-encode it on every call and risk losing keywords.
			tp.InputSchema = param.Override[anthropic.ToolInputSchemaParam](t.Parameters)
		}
		p.Tools = append(p.Tools, anthropic.ToolUnionParam{OfTool: &tp})
	}
	return p, nil
}

func anthropicResponse(msg *anthropic.Message) Response {
	var out Response
	var text strings.Builder
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			out.ToolCalls = append(out.ToolCalls, ToolCall{ID: b.ID, Name: b.Name, Arguments: argumentsOrEmpty(b.Input)})
		}
	}
	out.Content = text.String()
	switch msg.StopReason {
	case anthropic.StopReasonToolUse:
		out.StopReason = StopToolUse
	case anthropic.StopReasonMaxTokens, anthropic.StopReasonModelContextWindowExceeded:
		out.StopReason = StopMaxTokens
	default: // end_turn, stop_sequence, pause_turn, refusal
		out.StopReason = StopEnd
	}
	if len(out.ToolCalls) > 0 {
		out.StopReason = StopToolUse
	}
	u := msg.Usage
	// Cached prompt tokens are prompt tokens too; we do not use prompt
	// caching, so pricing them at the base input rate is exact today.
	out.Usage = Usage{
		InputTokens:  int(u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens),
		OutputTokens: int(u.OutputTokens),
	}
	return out
}

func anthropicError(model string, err error) *Error {
	e := &Error{Provider: ProviderAnthropic, Model: model, Err: fmt.Errorf("anthropic: create message: %w", err)}
	var apiErr *anthropic.Error
	if errors.As(err, &apiErr) {
		e.Status = apiErr.StatusCode
		e.Kind = kindForStatus(e.Status)
		e.Message = apiErr.Message
		if e.Message == "" {
			e.Message = truncate(apiErr.RawJSON(), 500)
		}
		if t := apiErr.Type(); t != "" {
			e.Message = string(t) + ": " + e.Message
		}
		return e
	}
	e.Kind = kindForTransport(err)
	return e
}
