package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

// providerCase builds one provider against the fake (or any base URL).
type providerCase struct {
	name  string
	wire  fakellm.Wire
	model string
	build func(s *fakellm.Server) Provider
	at    func(baseURL string) Provider // for URLs that are not the fake
}

var providerCases = []providerCase{
	{
		name: ProviderOpenAI, wire: fakellm.OpenAI, model: "gpt-4o-mini",
		build: func(s *fakellm.Server) Provider {
			return NewOpenAI(OpenAIConfig{APIKey: s.APIKey(), BaseURL: s.OpenAIBaseURL()})
		},
		at: func(u string) Provider { return NewOpenAI(OpenAIConfig{APIKey: "k", BaseURL: u + "/v1"}) },
	},
	{
		name: ProviderAnthropic, wire: fakellm.Anthropic, model: "claude-haiku-4-5",
		build: func(s *fakellm.Server) Provider {
			return NewAnthropic(AnthropicConfig{APIKey: s.APIKey(), BaseURL: s.AnthropicBaseURL()})
		},
		at: func(u string) Provider { return NewAnthropic(AnthropicConfig{APIKey: "k", BaseURL: u}) },
	},
	{
		name: ProviderOllama, wire: fakellm.Ollama, model: "llama3.2",
		build: func(s *fakellm.Server) Provider { return NewOllama(OllamaConfig{BaseURL: s.OllamaURL()}) },
		at:    func(u string) Provider { return NewOllama(OllamaConfig{BaseURL: u}) },
	},
}

func userSays(s string) Request {
	return Request{Messages: []Message{{Role: RoleUser, Content: s}}}
}

var weatherTool = ToolDef{
	Name:        "get_weather",
	Description: "Current weather for a city",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}

func TestProviderTextAnswer(t *testing.T) {
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t, fakellm.WithHandler(func(r fakellm.Request) fakellm.Reply {
				return fakellm.Text("echo: " + r.LastUserText())
			}))
			p := pc.build(s)
			require.Equal(t, pc.name, p.Name())

			resp, err := p.Complete(context.Background(), pc.model, userSays("hello world"))
			require.NoError(t, err)
			require.Equal(t, "echo: hello world", resp.Content)
			require.Equal(t, StopEnd, resp.StopReason)
			require.Empty(t, resp.ToolCalls)
			// The fake counts words: "hello world" in, "echo: hello world" out.
			require.Equal(t, Usage{InputTokens: 2, OutputTokens: 3}, resp.Usage)

			reqs := s.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, pc.wire, reqs[0].Wire)
			require.Equal(t, pc.model, reqs[0].Model)
		})
	}
}

func TestProviderUsageAndStopReason(t *testing.T) {
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t, fakellm.WithHandler(func(fakellm.Request) fakellm.Reply {
				return fakellm.Reply{Text: "trunc", StopReason: "max_tokens", Usage: &fakellm.Usage{InputTokens: 1234, OutputTokens: 56}}
			}))
			resp, err := pc.build(s).Complete(context.Background(), pc.model, userSays("hi"))
			require.NoError(t, err)
			require.Equal(t, Usage{InputTokens: 1234, OutputTokens: 56}, resp.Usage)
			require.Equal(t, StopMaxTokens, resp.StopReason)
		})
	}
}

func TestProviderSystemPromptAndOptions(t *testing.T) {
	temp := 0.3
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t)
			req := userSays("hi")
			req.System = "You are Ada, a support agent."
			req.MaxTokens = 321
			req.Temperature = &temp
			_, err := pc.build(s).Complete(context.Background(), pc.model, req)
			require.NoError(t, err)

			got := s.Requests()[0]
			require.Equal(t, "You are Ada, a support agent.", got.System)
			require.Len(t, got.Messages, 1, "the system prompt is not a conversation message")
			require.Equal(t, 321, got.MaxTokens)

			var body map[string]any
			require.NoError(t, json.Unmarshal(got.Body, &body))
			switch pc.wire {
			case fakellm.OpenAI:
				first := body["messages"].([]any)[0].(map[string]any)
				require.Equal(t, "system", first["role"], "system message first")
				require.EqualValues(t, 321, body["max_completion_tokens"])
				require.InDelta(t, 0.3, *got.Temperature, 1e-6)
			case fakellm.Anthropic:
				require.Contains(t, body, "system", "top-level system")
				require.NotEmpty(t, got.Header.Get("Anthropic-Version"))
				require.Nil(t, got.Temperature, "API version 2026-10-21 has no temperature")
			case fakellm.Ollama:
				first := body["messages"].([]any)[0].(map[string]any)
				require.Equal(t, "system", first["role"])
				require.Equal(t, false, body["stream"])
				require.InDelta(t, 0.3, *got.Temperature, 1e-6)
			}
		})
	}
}

// A tool call and its result make a round trip in each wire format.
func TestProviderToolRoundTrip(t *testing.T) {
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t, fakellm.WithHandler(func(r fakellm.Request) fakellm.Reply {
				if len(r.Messages) == 1 {
					return fakellm.CallTools(fakellm.ToolCall{Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)})
				}
				return fakellm.Text("It is 18C and sunny in Paris.")
			}))
			p := pc.build(s)
			req := userSays("What's the weather in Paris?")
			req.Tools = []ToolDef{weatherTool}

			first, err := p.Complete(context.Background(), pc.model, req)
			require.NoError(t, err)
			require.Equal(t, StopToolUse, first.StopReason)
			require.Len(t, first.ToolCalls, 1)
			call := first.ToolCalls[0]
			require.NotEmpty(t, call.ID)
			require.Equal(t, "get_weather", call.Name)
			require.JSONEq(t, `{"city":"Paris"}`, string(call.Arguments))

			tools := s.Requests()[0].Tools
			require.Len(t, tools, 1)
			require.Equal(t, "get_weather", tools[0].Name)
			require.Equal(t, "Current weather for a city", tools[0].Description)
			require.JSONEq(t, string(weatherTool.Parameters), string(tools[0].Parameters))

			req.Messages = append(req.Messages,
				Message{Role: RoleAssistant, ToolCalls: first.ToolCalls},
				Message{Role: RoleTool, ToolCallID: call.ID, Content: `{"temp_c":18,"sky":"sunny"}`},
			)
			second, err := p.Complete(context.Background(), pc.model, req)
			require.NoError(t, err, "the fake validates tool-call/result pairing")
			require.Equal(t, "It is 18C and sunny in Paris.", second.Content)
			require.Equal(t, StopEnd, second.StopReason)

			sent := s.Requests()[1].Messages
			switch pc.wire {
			case fakellm.OpenAI:
				require.Len(t, sent, 3)
				require.Equal(t, "assistant", sent[1].Role)
				require.Equal(t, call.ID, sent[1].ToolCalls[0].ID)
				require.JSONEq(t, `{"city":"Paris"}`, string(sent[1].ToolCalls[0].Arguments))
				require.Equal(t, "tool", sent[2].Role)
				require.Equal(t, call.ID, sent[2].ToolCallID)
				require.Equal(t, `{"temp_c":18,"sky":"sunny"}`, sent[2].Content)
			case fakellm.Anthropic:
				require.Len(t, sent, 3)
				require.Equal(t, "assistant", sent[1].Role)
				require.Equal(t, call.ID, sent[1].ToolCalls[0].ID)
				require.Equal(t, "user", sent[2].Role, "tool results travel in a user message")
				require.Equal(t, []fakellm.ToolResult{{ToolCallID: call.ID, Content: `{"temp_c":18,"sky":"sunny"}`}}, sent[2].ToolResults)
			case fakellm.Ollama:
				require.Len(t, sent, 3)
				require.Equal(t, "get_weather", sent[1].ToolCalls[0].Name)
				require.Equal(t, "tool", sent[2].Role)
				require.Equal(t, "get_weather", sent[2].ToolName, "Ollama matches results by tool name")
			}
		})
	}
}

func TestProviderErrorClassification(t *testing.T) {
	cases := []struct {
		status int
		kind   Kind
	}{
		{http.StatusBadRequest, KindRequest},
		{http.StatusUnauthorized, KindAuth},
		{http.StatusForbidden, KindAuth},
		{http.StatusNotFound, KindRequest},
		{http.StatusRequestEntityTooLarge, KindRequest},
		{http.StatusUnprocessableEntity, KindRequest},
		{http.StatusTooManyRequests, KindUnavailable},
		{http.StatusInternalServerError, KindUnavailable},
		{http.StatusServiceUnavailable, KindUnavailable},
		{529, KindUnavailable},
	}
	for _, pc := range providerCases {
		s := fakellm.New(t)
		p := pc.build(s)
		for _, c := range cases {
			t.Run(pc.name+"/"+http.StatusText(c.status), func(t *testing.T) {
				s.SetHandler(func(fakellm.Request) fakellm.Reply {
					return fakellm.Fail(c.status, "provider says no")
				})
				_, err := p.Complete(context.Background(), pc.model, userSays("hi"))
				var e *Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, c.kind, e.Kind, err.Error())
				require.Equal(t, c.status, e.Status)
				require.Equal(t, pc.name, e.Provider)
				require.Equal(t, pc.model, e.Model)
				require.Contains(t, e.Error(), "provider says no", "the provider's message is surfaced")
				require.Equal(t, c.kind == KindUnavailable, IsRetryable(err))
			})
		}
	}
}

func TestProviderBadKey(t *testing.T) {
	for _, pc := range providerCases {
		if pc.wire == fakellm.Ollama {
			continue // Ollama has no credentials
		}
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t, fakellm.WithAPIKey("the-right-key"))
			_, err := pc.build(s).Complete(context.Background(), pc.model, userSays("hi")) // sends s.APIKey()
			require.NoError(t, err)
			p := pc.at(s.URL) // key "k"
			_, err = p.Complete(context.Background(), pc.model, userSays("hi"))
			require.Equal(t, KindAuth, KindOf(err), err)
		})
	}
}

func TestProviderTimeoutAndRefused(t *testing.T) {
	for _, pc := range providerCases {
		t.Run(pc.name+"/timeout", func(t *testing.T) {
			s := fakellm.New(t, fakellm.WithHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Hang() }))
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := pc.build(s).Complete(ctx, pc.model, userSays("hi"))
			require.Equal(t, KindUnavailable, KindOf(err), err)
			require.ErrorIs(t, err, context.DeadlineExceeded)
		})
		t.Run(pc.name+"/refused", func(t *testing.T) {
			_, err := pc.at(fakellm.RefusedURL(t)).Complete(context.Background(), pc.model, userSays("hi"))
			require.Equal(t, KindUnavailable, KindOf(err), err)
			var e *Error
			require.True(t, errors.As(err, &e))
			require.Zero(t, e.Status)
		})
	}
}

func TestProviderRejectsInvalidArgumentsBeforeSending(t *testing.T) {
	for _, pc := range providerCases {
		t.Run(pc.name, func(t *testing.T) {
			s := fakellm.New(t)
			req := userSays("hi")
			req.Messages = append(req.Messages,
				Message{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "c1", Name: "f", Arguments: json.RawMessage(`{broken`)}}},
				Message{Role: RoleTool, ToolCallID: "c1", Content: "x"})
			_, err := pc.build(s).Complete(context.Background(), pc.model, req)
			require.Equal(t, KindRequest, KindOf(err), err)
			require.Zero(t, s.Count())
		})
	}
}

func TestAnthropicMergesConsecutiveTurns(t *testing.T) {
	s := fakellm.New(t)
	p := NewAnthropic(AnthropicConfig{APIKey: s.APIKey(), BaseURL: s.AnthropicBaseURL()})
	req := Request{Messages: []Message{
		{Role: RoleUser, Content: "Weather in Paris and Rome?"},
		{Role: RoleUser, Content: "Celsius please."},
		{Role: RoleAssistant, Content: "Checking both.", ToolCalls: []ToolCall{
			{ID: "toolu_a", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)},
			{ID: "toolu_b", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Rome"}`)},
		}},
		{Role: RoleTool, ToolCallID: "toolu_a", Content: "18C"},
		{Role: RoleTool, ToolCallID: "toolu_b", Content: "24C"},
		{Role: RoleUser, Content: "And tomorrow?"},
	}}
	_, err := p.Complete(context.Background(), "claude-sonnet-4-5", req)
	require.NoError(t, err)

	got := s.Requests()[0]
	require.Equal(t, 1024, got.MaxTokens, "Anthropic requires max_tokens; default 1024")
	require.Len(t, got.Messages, 3, "user+user merged; both tool results and the next user text merged")
	require.Equal(t, "Weather in Paris and Rome?Celsius please.", got.Messages[0].Content)
	require.Len(t, got.Messages[1].ToolCalls, 2)
	require.Equal(t, "user", got.Messages[2].Role)
	require.Equal(t, []fakellm.ToolResult{{ToolCallID: "toolu_a", Content: "18C"}, {ToolCallID: "toolu_b", Content: "24C"}}, got.Messages[2].ToolResults)
	require.Equal(t, "And tomorrow?", got.Messages[2].Content)
}

func TestOpenAIDropsTemperatureForReasoningModels(t *testing.T) {
	s := fakellm.New(t)
	p := NewOpenAI(OpenAIConfig{APIKey: s.APIKey(), BaseURL: s.OpenAIBaseURL()})
	temp := 0.2
	req := userSays("hi")
	req.Temperature = &temp
	_, err := p.Complete(context.Background(), "o3-mini", req)
	require.NoError(t, err)
	require.Nil(t, s.Requests()[0].Temperature)
}

func TestOpenAIInvalidToolArgumentsFromModel(t *testing.T) {
	s := fakellm.New(t, fakellm.WithHandler(func(fakellm.Request) fakellm.Reply {
		return fakellm.CallTools(fakellm.ToolCall{ID: "c1", Name: "f", Arguments: json.RawMessage(`{"a":`)})
	}))
	p := NewOpenAI(OpenAIConfig{APIKey: s.APIKey(), BaseURL: s.OpenAIBaseURL()})
	resp, err := p.Complete(context.Background(), "gpt-4o-mini", userSays("hi"))
	require.NoError(t, err)
	require.True(t, json.Valid(resp.ToolCalls[0].Arguments), "kept as a JSON string for the tool framework to reject")
	require.Equal(t, `"{\"a\":"`, string(resp.ToolCalls[0].Arguments))
}

func TestConfigured(t *testing.T) {
	require.False(t, NewOpenAI(OpenAIConfig{}).(configurable).Configured())
	require.True(t, NewOpenAI(OpenAIConfig{APIKey: "k"}).(configurable).Configured())
	require.True(t, NewOpenAI(OpenAIConfig{BaseURL: "http://vllm:8000/v1"}).(configurable).Configured(), "keyless compatible server")
	require.False(t, NewAnthropic(AnthropicConfig{}).(configurable).Configured())
	require.True(t, NewAnthropic(AnthropicConfig{APIKey: "k"}).(configurable).Configured())
	require.False(t, NewOllama(OllamaConfig{}).(configurable).Configured())
	require.True(t, NewOllama(OllamaConfig{BaseURL: "http://127.0.0.1:11434"}).(configurable).Configured())
	require.Equal(t, "http://127.0.0.1:11434/api/chat", NewOllama(OllamaConfig{BaseURL: "127.0.0.1:11434/"}).(*ollamaProvider).url)
}
