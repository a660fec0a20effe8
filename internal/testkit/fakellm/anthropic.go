package fakellm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Anthropic Messages wire format.

type anRequest struct {
	Model       string          `json:"model"`
	MaxTokens   *int            `json:"max_tokens"`
	System      json.RawMessage `json:"system"`
	Messages    []anMessage     `json:"messages"`
	Tools       []anTool        `json:"tools"`
	Temperature *float64        `json:"temperature"`
	Stream      bool            `json:"stream"`
}

type anMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Source    *anSource       `json:"source"`
}

// anSource is an image block's source; the client sends base64 only.
type anSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
}

// image decodes an image block (nil when it is not a valid base64 image).
func (b anBlock) image() (Image, string) {
	switch {
	case b.Source == nil:
		return Image{}, "source: Field required"
	case b.Source.Type != "base64":
		return Image{}, fmt.Sprintf("source.type: the fake accepts 'base64' sources only (got %q)", b.Source.Type)
	case !knownImageType(b.Source.MediaType):
		return Image{}, fmt.Sprintf("source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp' (got %q)", b.Source.MediaType)
	}
	data, err := decodeBase64(b.Source.Data)
	if err != nil {
		return Image{}, "source.data: invalid base64 data"
	}
	img := Image{MimeType: b.Source.MediaType, Data: data}
	if msg := checkImage(img); msg != "" {
		return Image{}, "source: " + msg
	}
	return img, ""
}

type anTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

func (s *Server) serveAnthropic(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	req := Request{Wire: Anthropic, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var in anRequest
	var blocks [][]anBlock
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err == nil {
		blocks, err = parseAnthropic(&req, in)
	}
	h := s.record(req)

	// The API accepts the key as x-api-key or, since API version 2026-10-21
	// (which anthropic-sdk-go v2 sends), as a bearer token.
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		key = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	switch {
	case s.apiKey != "" && key == "":
		s.anthropicError(w, Fail(http.StatusUnauthorized, "x-api-key header is required"))
		return
	case s.apiKey != "" && key != s.apiKey:
		s.anthropicError(w, Fail(http.StatusUnauthorized, "invalid x-api-key"))
		return
	case r.Header.Get("Anthropic-Version") == "":
		s.anthropicError(w, Fail(http.StatusBadRequest, "anthropic-version: header is required"))
		return
	case err != nil:
		s.anthropicError(w, Fail(http.StatusBadRequest, "invalid request body: "+err.Error()))
		return
	}
	if msg := validateAnthropic(in, blocks); msg != "" {
		s.anthropicError(w, Fail(http.StatusBadRequest, msg))
		return
	}
	if msg := s.blindRefusal(req); msg != "" {
		s.anthropicError(w, Fail(http.StatusBadRequest, msg))
		return
	}

	rep := h(req)
	if !s.wait(r, rep.Delay, rep.Hang) {
		return
	}
	if rep.Status >= 400 {
		s.anthropicError(w, rep)
		return
	}
	w.Header().Set("Request-Id", "req_fake_"+s.nextID())
	writeJSON(w, http.StatusOK, s.anthropicResponse(req, rep))
}

// anthropicBlocks reads content that is a string or an array of blocks.
func anthropicBlocks(raw json.RawMessage) ([]anBlock, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []anBlock{{Type: "text", Text: s}}, nil
	}
	var bs []anBlock
	err := json.Unmarshal(raw, &bs)
	return bs, err
}

func blocksText(bs []anBlock) string {
	var b strings.Builder
	for _, bl := range bs {
		if bl.Type == "text" {
			b.WriteString(bl.Text)
		}
	}
	return b.String()
}

func parseAnthropic(req *Request, in anRequest) ([][]anBlock, error) {
	req.Model = in.Model
	if in.MaxTokens != nil {
		req.MaxTokens = *in.MaxTokens
	}
	req.Temperature = in.Temperature
	req.Stream = in.Stream
	sys, err := anthropicBlocks(in.System)
	if err != nil {
		return nil, fmt.Errorf("system: %w", err)
	}
	req.System = blocksText(sys)
	all := make([][]anBlock, len(in.Messages))
	for i, m := range in.Messages {
		bs, err := anthropicBlocks(m.Content)
		if err != nil {
			return nil, fmt.Errorf("messages.%d.content: %w", i, err)
		}
		all[i] = bs
		msg := Message{Role: m.Role, Content: blocksText(bs)}
		for _, b := range bs {
			switch b.Type {
			case "tool_use":
				msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: b.ID, Name: b.Name, Arguments: b.Input})
			case "image":
				if img, bad := b.image(); bad == "" { // an invalid one is refused by validateAnthropic
					msg.Images = append(msg.Images, img)
				}
			case "tool_result":
				inner, err := anthropicBlocks(b.Content)
				if err != nil {
					return nil, fmt.Errorf("messages.%d.content.tool_result: %w", i, err)
				}
				msg.ToolResults = append(msg.ToolResults, ToolResult{ToolCallID: b.ToolUseID, Content: blocksText(inner), IsError: b.IsError})
			}
		}
		req.Messages = append(req.Messages, msg)
	}
	for _, t := range in.Tools {
		req.Tools = append(req.Tools, Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema})
	}
	return all, nil
}

// validateAnthropic checks what the API rejects. It is stricter than the API
// in one respect: consecutive messages with the same role are rejected
// (the API merges them itself), so a client's own merging is tested.
func validateAnthropic(in anRequest, blocks [][]anBlock) string {
	switch {
	case in.Model == "":
		return "model: Field required"
	case in.MaxTokens == nil:
		return "max_tokens: Field required"
	case len(in.Messages) == 0:
		return "messages: at least one message is required"
	case in.Stream:
		return "fakellm: stream:true is not supported by the fake"
	}
	var prevToolUses map[string]bool
	for i, m := range in.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		if i > 0 && in.Messages[i-1].Role == m.Role {
			return fmt.Sprintf("messages.%d: roles must alternate between \"user\" and \"assistant\" (fakellm is strict here)", i)
		}
		if len(blocks[i]) == 0 {
			return fmt.Sprintf("messages.%d: all messages must have non-empty content", i)
		}
		answered := map[string]bool{}
		toolUses := map[string]bool{}
		for j, b := range blocks[i] {
			switch b.Type {
			case "text":
				if b.Text == "" {
					return fmt.Sprintf("messages.%d.content.%d: text content blocks must be non-empty", i, j)
				}
			case "tool_use":
				if m.Role != "assistant" || b.ID == "" || b.Name == "" {
					return fmt.Sprintf("messages.%d.content.%d: tool_use needs id and name, in an assistant message", i, j)
				}
				var obj map[string]any
				if json.Unmarshal(b.Input, &obj) != nil {
					return fmt.Sprintf("messages.%d.content.%d.input: Input should be a valid dictionary", i, j)
				}
				toolUses[b.ID] = true
			case "image":
				if m.Role != "user" {
					return fmt.Sprintf("messages.%d.content.%d: image blocks are only allowed in user messages", i, j)
				}
				if _, bad := b.image(); bad != "" {
					return fmt.Sprintf("messages.%d.content.%d.image.%s", i, j, bad)
				}
			case "tool_result":
				if m.Role != "user" || !prevToolUses[b.ToolUseID] {
					return fmt.Sprintf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, b.ToolUseID)
				}
				answered[b.ToolUseID] = true
			default:
				return fmt.Sprintf("messages.%d.content.%d.type: unsupported block type %q", i, j, b.Type)
			}
		}
		for id := range prevToolUses {
			if !answered[id] {
				return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i-1, id)
			}
		}
		prevToolUses = toolUses
	}
	for i, t := range in.Tools {
		var schema struct {
			Type string `json:"type"`
		}
		if t.Name == "" {
			return fmt.Sprintf("tools.%d.name: Field required", i)
		}
		if json.Unmarshal(t.InputSchema, &schema) != nil || schema.Type != "object" {
			return fmt.Sprintf("tools.%d.custom.input_schema.type: Input should be 'object'", i)
		}
	}
	return ""
}

func (s *Server) anthropicResponse(req Request, rep Reply) map[string]any {
	content := []map[string]any{}
	if rep.Text != "" || len(rep.ToolCalls) == 0 {
		content = append(content, map[string]any{"type": "text", "text": rep.Text})
	}
	stop := "end_turn"
	for _, c := range rep.ToolCalls {
		id := c.ID
		if id == "" {
			id = "toolu_fake_" + s.nextID()
		}
		content = append(content, map[string]any{"type": "tool_use", "id": id, "name": c.Name, "input": args(c)})
		stop = "tool_use"
	}
	if rep.StopReason == "max_tokens" {
		stop = "max_tokens"
	}
	u := usageOf(req, rep)
	return map[string]any{
		"id":            "msg_fake_" + s.nextID(),
		"type":          "message",
		"role":          "assistant",
		"model":         req.Model,
		"content":       content,
		"stop_reason":   stop,
		"stop_sequence": nil,
		"usage": map[string]any{
			"input_tokens":                u.InputTokens,
			"output_tokens":               u.OutputTokens,
			"cache_creation_input_tokens": 0,
			"cache_read_input_tokens":     0,
			"service_tier":                "standard",
		},
	}
}

// anthropicError answers in Anthropic's error shape with the type the API
// uses for the status (529 is overloaded_error).
func (s *Server) anthropicError(w http.ResponseWriter, rep Reply) {
	typ := rep.ErrorType
	if typ == "" {
		switch rep.Status {
		case http.StatusBadRequest:
			typ = "invalid_request_error"
		case http.StatusUnauthorized:
			typ = "authentication_error"
		case http.StatusPaymentRequired:
			typ = "billing_error"
		case http.StatusForbidden:
			typ = "permission_error"
		case http.StatusNotFound:
			typ = "not_found_error"
		case http.StatusRequestEntityTooLarge:
			typ = "request_too_large"
		case http.StatusTooManyRequests:
			typ = "rate_limit_error"
		case http.StatusGatewayTimeout:
			typ = "timeout_error"
		case 529:
			typ = "overloaded_error"
		default:
			typ = "api_error"
			if rep.Status < 500 {
				typ = "invalid_request_error"
			}
		}
	}
	id := "req_fake_" + s.nextID()
	w.Header().Set("Request-Id", id)
	retryAfter(w, rep)
	writeJSON(w, rep.Status, map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": typ, "message": errorMessage(rep)},
		"request_id": id,
	})
}
