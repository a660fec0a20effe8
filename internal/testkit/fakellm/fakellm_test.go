package fakellm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

func post(t *testing.T, url string, header map[string]string, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return res.StatusCode, res.Header, out
}

var (
	openAIAuth    = map[string]string{"Authorization": "Bearer " + fakellm.DefaultAPIKey}
	anthropicAuth = map[string]string{"X-Api-Key": fakellm.DefaultAPIKey, "Anthropic-Version": "2023-06-01"}
)

func TestOpenAIShapes(t *testing.T) {
	s := fakellm.New(t)
	s.SetHandler(func(r fakellm.Request) fakellm.Reply {
		if r.LastUserText() == "weather" {
			return fakellm.CallTools(fakellm.ToolCall{Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)})
		}
		return fakellm.Text("hello there")
	})
	body := `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}`

	status, _, out := post(t, s.OpenAIBaseURL()+"/chat/completions", openAIAuth, body)
	require.Equal(t, http.StatusOK, status)
	choice := out["choices"].([]any)[0].(map[string]any)
	require.Equal(t, "stop", choice["finish_reason"])
	require.Equal(t, "hello there", choice["message"].(map[string]any)["content"])
	require.EqualValues(t, 2, out["usage"].(map[string]any)["completion_tokens"])

	status, _, out = post(t, s.OpenAIBaseURL()+"/chat/completions", openAIAuth,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"weather"}]}`)
	require.Equal(t, http.StatusOK, status)
	choice = out["choices"].([]any)[0].(map[string]any)
	require.Equal(t, "tool_calls", choice["finish_reason"])
	call := choice["message"].(map[string]any)["tool_calls"].([]any)[0].(map[string]any)
	require.Equal(t, `{"city":"Paris"}`, call["function"].(map[string]any)["arguments"])

	reqs := s.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, "be brief", reqs[0].System)
	require.Equal(t, fakellm.OpenAI, reqs[0].Wire)
}

func TestOpenAIErrors(t *testing.T) {
	s := fakellm.New(t, fakellm.WithHandler(func(fakellm.Request) fakellm.Reply {
		return fakellm.Fail(http.StatusTooManyRequests, "slow down")
	}))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

	status, hdr, out := post(t, s.OpenAIBaseURL()+"/chat/completions", openAIAuth, body)
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "1", hdr.Get("Retry-After"))
	e := out["error"].(map[string]any)
	require.Equal(t, "slow down", e["message"])
	require.Equal(t, "rate_limit_exceeded", e["code"])

	status, _, out = post(t, s.OpenAIBaseURL()+"/chat/completions", map[string]string{"Authorization": "Bearer nope"}, body)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "invalid_api_key", out["error"].(map[string]any)["code"])

	// A tool message that answers no call is rejected like the real API does.
	status, _, out = post(t, s.OpenAIBaseURL()+"/chat/completions", openAIAuth,
		`{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"x","content":"r"}]}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, out["error"].(map[string]any)["message"], "role 'tool'")
}

func TestAnthropicShapes(t *testing.T) {
	s := fakellm.New(t, fakellm.WithHandler(func(r fakellm.Request) fakellm.Reply {
		return fakellm.Reply{Text: "let me check", ToolCalls: []fakellm.ToolCall{{ID: "toolu_1", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}}}
	}))
	body := `{"model":"claude-haiku-4-5","max_tokens":100,"system":"be brief","messages":[{"role":"user","content":"weather"}]}`
	status, hdr, out := post(t, s.AnthropicBaseURL()+"/v1/messages", anthropicAuth, body)
	require.Equal(t, http.StatusOK, status)
	require.NotEmpty(t, hdr.Get("Request-Id"))
	require.Equal(t, "tool_use", out["stop_reason"])
	content := out["content"].([]any)
	require.Len(t, content, 2)
	require.Equal(t, "tool_use", content[1].(map[string]any)["type"])
	require.Equal(t, map[string]any{"city": "Paris"}, content[1].(map[string]any)["input"])
	require.Equal(t, "be brief", s.Requests()[0].System)
	require.Equal(t, 100, s.Requests()[0].MaxTokens)
}

func TestAnthropicErrors(t *testing.T) {
	s := fakellm.New(t, fakellm.WithHandler(func(fakellm.Request) fakellm.Reply {
		return fakellm.Fail(529, "Overloaded")
	}))
	body := `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

	status, _, out := post(t, s.AnthropicBaseURL()+"/v1/messages", anthropicAuth, body)
	require.Equal(t, 529, status)
	require.Equal(t, "error", out["type"])
	require.Equal(t, map[string]any{"type": "overloaded_error", "message": "Overloaded"}, out["error"])

	for name, hdr := range map[string]map[string]string{
		"no key":     {"Anthropic-Version": "2023-06-01"},
		"wrong key":  {"X-Api-Key": "nope", "Anthropic-Version": "2023-06-01"},
		"no version": {"X-Api-Key": fakellm.DefaultAPIKey},
	} {
		status, _, out := post(t, s.AnthropicBaseURL()+"/v1/messages", hdr, body)
		want := http.StatusUnauthorized
		if name == "no version" {
			want = http.StatusBadRequest
		}
		require.Equal(t, want, status, name)
		require.Equal(t, "error", out["type"], name)
	}

	// The fake insists on merged turns and paired tool results.
	for _, bad := range []string{
		`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
		`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":"no result"}]}`,
		`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":""}]}`,
		`{"model":"m","messages":[{"role":"user","content":"a"}]}`,
	} {
		status, _, out := post(t, s.AnthropicBaseURL()+"/v1/messages", anthropicAuth, bad)
		require.Equal(t, http.StatusBadRequest, status, bad)
		require.Equal(t, "invalid_request_error", out["error"].(map[string]any)["type"], bad)
	}
}

func TestOllamaShapes(t *testing.T) {
	s := fakellm.New(t, fakellm.WithHandler(func(fakellm.Request) fakellm.Reply {
		return fakellm.CallTools(fakellm.ToolCall{Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)})
	}))
	status, _, out := post(t, s.OllamaURL()+"/api/chat", nil,
		`{"model":"llama3.2","stream":false,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"weather"}]}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, out["done"])
	call := out["message"].(map[string]any)["tool_calls"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{"city": "Paris"}, call["function"].(map[string]any)["arguments"])
	require.NotZero(t, out["prompt_eval_count"])

	status, _, out = post(t, s.OllamaURL()+"/api/chat", nil, `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusBadRequest, status, "stream must be false")
	require.Contains(t, out["error"], "stream")

	s.SetHandler(func(fakellm.Request) fakellm.Reply {
		return fakellm.Fail(404, `model "x" not found, try pulling it first`)
	})
	status, _, out = post(t, s.OllamaURL()+"/api/chat", nil, `{"model":"x","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, `model "x" not found, try pulling it first`, out["error"])
}

func TestHangRespectsClientAndClose(t *testing.T) {
	s := fakellm.New(t, fakellm.WithHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Hang() }))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.OllamaURL()+"/api/chat",
		strings.NewReader(`{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// A request still hanging when the server closes must not block Close.
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.OllamaURL()+"/api/chat",
			strings.NewReader(`{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}]}`))
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return s.Count() == 2 }, time.Second, 5*time.Millisecond)
	s.Close()
}

func TestRefusedURL(t *testing.T) {
	u := fakellm.RefusedURL(t)
	_, err := http.Post(u, "application/json", strings.NewReader("{}"))
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ECONNREFUSED), err.Error())
}
