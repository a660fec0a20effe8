package fakellm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Ollama native chat wire format (POST /api/chat). Ollama has no credentials.

type olRequest struct {
	Model    string         `json:"model"`
	Messages []olMessage    `json:"messages"`
	Tools    []oaTool       `json:"tools"` // same shape as OpenAI's
	Stream   *bool          `json:"stream"`
	Options  map[string]any `json:"options"`
}

type olMessage struct {
	Role       string       `json:"role"`
	Content    string       `json:"content"`
	ToolCalls  []olToolCall `json:"tool_calls,omitempty"`
	ToolName   string       `json:"tool_name,omitempty"`
	ToolCallID string       `json:"tool_call_id,omitempty"`
	Images     []string     `json:"images,omitempty"` // base64, no data: prefix
}

type olToolCall struct {
	ID       string `json:"id,omitempty"`
	Function struct {
		Index     int             `json:"index"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

func (s *Server) serveOllama(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	req := Request{Wire: Ollama, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var in olRequest
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err == nil {
		parseOllama(&req, in)
	}
	h := s.record(req)
	if err != nil {
		ollamaError(w, Fail(http.StatusBadRequest, err.Error()))
		return
	}
	if msg := validateOllama(in); msg != "" {
		ollamaError(w, Fail(http.StatusBadRequest, msg))
		return
	}
	if msg := s.blindRefusal(req); msg != "" {
		ollamaError(w, Fail(http.StatusBadRequest, msg))
		return
	}

	rep := h(req)
	if !s.wait(r, rep.Delay, rep.Hang) {
		return
	}
	if rep.Status >= 400 {
		ollamaError(w, rep)
		return
	}
	writeJSON(w, http.StatusOK, ollamaResponse(req, rep))
}

func parseOllama(req *Request, in olRequest) {
	req.Model = in.Model
	req.Stream = in.Stream == nil || *in.Stream
	if v, ok := in.Options["num_predict"].(float64); ok {
		req.MaxTokens = int(v)
	}
	if v, ok := in.Options["temperature"].(float64); ok {
		req.Temperature = &v
	}
	for _, m := range in.Messages {
		if m.Role == "system" {
			req.System += m.Content
			continue
		}
		msg := Message{Role: m.Role, Content: m.Content, ToolName: m.ToolName, ToolCallID: m.ToolCallID}
		for _, raw := range m.Images {
			if data, err := decodeBase64(raw); err == nil { // an invalid one is refused by validateOllama
				msg.Images = append(msg.Images, Image{MimeType: sniff(data), Data: data})
			}
		}
		for _, c := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
		}
		req.Messages = append(req.Messages, msg)
	}
	for _, t := range in.Tools {
		req.Tools = append(req.Tools, Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
}

func validateOllama(in olRequest) string {
	if in.Model == "" {
		return "model is required"
	}
	if in.Stream == nil || *in.Stream {
		// Real Ollama would stream NDJSON; the client must ask for one object.
		return "fakellm: send \"stream\": false; streaming is not supported by the fake"
	}
	for i, m := range in.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		case "tool":
			if m.ToolName == "" && m.ToolCallID == "" {
				return fmt.Sprintf("messages[%d]: tool message needs tool_name", i)
			}
		default:
			return fmt.Sprintf("messages[%d]: invalid role %q", i, m.Role)
		}
		for _, c := range m.ToolCalls {
			var obj map[string]any
			if json.Unmarshal(c.Function.Arguments, &obj) != nil {
				return fmt.Sprintf("messages[%d].tool_calls: arguments must be a JSON object", i)
			}
		}
		for j, raw := range m.Images {
			data, err := decodeBase64(raw)
			if err != nil {
				return fmt.Sprintf("messages[%d].images[%d]: illegal base64 data: %v", i, j, err)
			}
			if sniff(data) == "" {
				return fmt.Sprintf("messages[%d].images[%d]: image: unknown format", i, j)
			}
		}
	}
	return ""
}

func ollamaResponse(req Request, rep Reply) map[string]any {
	msg := map[string]any{"role": "assistant", "content": rep.Text}
	if len(rep.ToolCalls) > 0 {
		calls := make([]map[string]any, len(rep.ToolCalls))
		for i, c := range rep.ToolCalls {
			fn := map[string]any{"index": i, "name": c.Name, "arguments": args(c)}
			calls[i] = map[string]any{"function": fn}
			if c.ID != "" {
				calls[i]["id"] = c.ID
			}
		}
		msg["tool_calls"] = calls
	}
	done := "stop"
	if rep.StopReason == "max_tokens" {
		done = "length"
	}
	u := usageOf(req, rep)
	return map[string]any{
		"model":                req.Model,
		"created_at":           time.Now().UTC().Format(time.RFC3339Nano),
		"message":              msg,
		"done":                 true,
		"done_reason":          done,
		"total_duration":       1_000_000,
		"load_duration":        100_000,
		"prompt_eval_count":    u.InputTokens,
		"prompt_eval_duration": 400_000,
		"eval_count":           u.OutputTokens,
		"eval_duration":        500_000,
	}
}

// ollamaError answers in Ollama's error shape, {"error": "..."}.
func ollamaError(w http.ResponseWriter, rep Reply) {
	retryAfter(w, rep)
	writeJSON(w, rep.Status, map[string]string{"error": errorMessage(rep)})
}
