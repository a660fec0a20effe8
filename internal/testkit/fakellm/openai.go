package fakellm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// OpenAI Chat Completions wire format.

type oaRequest struct {
	Model               string      `json:"model"`
	Messages            []oaMessage `json:"messages"`
	Tools               []oaTool    `json:"tools"`
	MaxTokens           int         `json:"max_tokens"`
	MaxCompletionTokens int         `json:"max_completion_tokens"`
	Temperature         *float64    `json:"temperature"`
	Stream              bool        `json:"stream"`
}

type oaMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	ToolCalls  []oaToolCall    `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type oaToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type oaTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	} `json:"function"`
}

type oaError struct {
	Error oaErrorBody `json:"error"`
}

type oaErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (s *Server) serveOpenAI(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	req := Request{Wire: OpenAI, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var in oaRequest
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err == nil {
		err = parseOpenAI(&req, in)
	}
	h := s.record(req)

	switch {
	case s.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+s.apiKey:
		openAIError(w, Reply{Status: http.StatusUnauthorized,
			ErrorMessage: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."})
		return
	case err != nil:
		openAIError(w, Fail(http.StatusBadRequest, "We could not parse the JSON body of your request: "+err.Error()))
		return
	}
	if msg := validateOpenAI(in); msg != "" {
		openAIError(w, Fail(http.StatusBadRequest, msg))
		return
	}
	if msg := s.blindRefusal(req); msg != "" {
		openAIError(w, Fail(http.StatusBadRequest, msg))
		return
	}

	rep := h(req)
	if !s.wait(r, rep.Delay, rep.Hang) {
		return
	}
	if rep.Status >= 400 {
		openAIError(w, rep)
		return
	}
	writeJSON(w, http.StatusOK, s.openAIResponse(req, rep))
}

func parseOpenAI(req *Request, in oaRequest) error {
	req.Model = in.Model
	req.MaxTokens = max(in.MaxTokens, in.MaxCompletionTokens)
	req.Temperature = in.Temperature
	req.Stream = in.Stream
	var system []string
	for i, m := range in.Messages {
		text, images, err := openAIContent(m.Content)
		if err != nil {
			return fmt.Errorf("messages[%d].content: %w", i, err)
		}
		if len(images) > 0 && m.Role != "user" {
			return fmt.Errorf("messages[%d].content: Image URLs are only allowed for messages with role 'user', but this message with role '%s' contains an image URL", i, m.Role)
		}
		if m.Role == "system" || m.Role == "developer" {
			system = append(system, text)
			continue
		}
		msg := Message{Role: m.Role, Content: text, ToolCallID: m.ToolCallID, Images: images}
		for _, c := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: json.RawMessage(c.Function.Arguments)})
		}
		req.Messages = append(req.Messages, msg)
	}
	req.System = strings.Join(system, "\n")
	for _, t := range in.Tools {
		req.Tools = append(req.Tools, Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	return nil
}

// openAIContent reads content that is a string, null, or an array of parts
// (text, and image_url parts whose url is a base64 data URL).
func openAIContent(raw json.RawMessage) (string, []Image, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil, nil
	}
	var parts []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL *struct {
			URL    string `json:"url"`
			Detail string `json:"detail"`
		} `json:"image_url"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", nil, err
	}
	var b strings.Builder
	var images []Image
	for i, p := range parts {
		switch p.Type {
		case "text":
			b.WriteString(p.Text)
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return "", nil, fmt.Errorf("[%d].image_url.url: Field required", i)
			}
			switch p.ImageURL.Detail {
			case "", "auto", "low", "high":
			default:
				return "", nil, fmt.Errorf("[%d].image_url.detail: Input should be 'auto', 'low' or 'high'", i)
			}
			img, err := parseDataURL(p.ImageURL.URL)
			if err != nil {
				return "", nil, fmt.Errorf("[%d].image_url: %w", i, err)
			}
			if msg := checkImage(img); msg != "" {
				return "", nil, fmt.Errorf("[%d].image_url: %s", i, msg)
			}
			images = append(images, img)
		default:
			return "", nil, fmt.Errorf("[%d].type: Invalid value: '%s'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'.", i, p.Type)
		}
	}
	return b.String(), images, nil
}

// validateOpenAI checks what the API rejects and clients commonly get wrong.
func validateOpenAI(in oaRequest) string {
	if in.Model == "" {
		return "you must provide a model parameter"
	}
	if len(in.Messages) == 0 {
		return "[] is too short - 'messages'"
	}
	if in.Stream {
		return "fakellm: stream:true is not supported by the fake"
	}
	var pending map[string]bool // tool calls of the last assistant message not yet answered
	for i, m := range in.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
			if len(pending) > 0 {
				return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'."
			}
		case "tool":
			if m.ToolCallID == "" || !pending[m.ToolCallID] {
				return fmt.Sprintf("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls' (messages[%d]).", i)
			}
			delete(pending, m.ToolCallID)
			continue
		default:
			return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'.", m.Role)
		}
		if m.Role == "assistant" && len(m.ToolCalls) > 0 {
			pending = map[string]bool{}
			for _, c := range m.ToolCalls {
				if c.ID == "" || c.Type != "function" || c.Function.Name == "" {
					return fmt.Sprintf("messages[%d].tool_calls: each call needs id, type 'function' and function.name", i)
				}
				if !json.Valid([]byte(c.Function.Arguments)) {
					return fmt.Sprintf("messages[%d].tool_calls: function.arguments must be a JSON string", i)
				}
				pending[c.ID] = true
			}
		}
	}
	if len(pending) > 0 {
		return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'."
	}
	for i, t := range in.Tools {
		if t.Type != "function" || t.Function.Name == "" {
			return fmt.Sprintf("tools[%d]: type must be 'function' with a function.name", i)
		}
	}
	return ""
}

func (s *Server) openAIResponse(req Request, rep Reply) map[string]any {
	msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil}
	if rep.Text != "" || len(rep.ToolCalls) == 0 {
		msg["content"] = rep.Text
	}
	finish := "stop"
	if len(rep.ToolCalls) > 0 {
		finish = "tool_calls"
		calls := make([]map[string]any, len(rep.ToolCalls))
		for i, c := range rep.ToolCalls {
			id := c.ID
			if id == "" {
				id = "call_fake_" + s.nextID()
			}
			calls[i] = map[string]any{
				"id":       id,
				"type":     "function",
				"function": map[string]any{"name": c.Name, "arguments": string(args(c))},
			}
		}
		msg["tool_calls"] = calls
	}
	if rep.StopReason == "max_tokens" {
		finish = "length"
	}
	u := usageOf(req, rep)
	return map[string]any{
		"id":      "chatcmpl-fake-" + s.nextID(),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model,
		"choices": []map[string]any{{
			"index": 0, "message": msg, "logprobs": nil, "finish_reason": finish,
		}},
		"usage": map[string]any{
			"prompt_tokens":     u.InputTokens,
			"completion_tokens": u.OutputTokens,
			"total_tokens":      u.InputTokens + u.OutputTokens,
		},
		"system_fingerprint": "fp_fake",
	}
}

// openAIError answers in OpenAI's error shape with the type and code the API
// uses for the status.
func openAIError(w http.ResponseWriter, rep Reply) {
	typ, code := "invalid_request_error", ""
	switch {
	case rep.Status == http.StatusUnauthorized:
		code = "invalid_api_key"
	case rep.Status == http.StatusNotFound:
		code = "model_not_found"
	case rep.Status == http.StatusTooManyRequests:
		typ, code = "requests", "rate_limit_exceeded"
	case rep.Status >= 500:
		typ = "server_error"
	}
	if rep.ErrorType != "" {
		typ = rep.ErrorType
	}
	body := oaErrorBody{Message: errorMessage(rep), Type: typ}
	if code != "" {
		body.Code = &code
	}
	retryAfter(w, rep)
	if rep.Status == http.StatusTooManyRequests {
		w.Header().Set("X-Ratelimit-Reset-Requests", "1s")
	}
	writeJSON(w, rep.Status, oaError{Error: body})
}
