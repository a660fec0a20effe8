// Package fakellm is an in-process LLM server for tests. One httptest server
// speaks three real wire formats, routed by path:
//
//   - OpenAI Chat Completions: POST /v1/chat/completions (and /chat/completions,
//     for clients whose base URL already ends in /v1);
//   - Anthropic Messages: POST /v1/messages;
//   - Ollama native chat: POST /api/chat (stream:false only);
//   - embeddings: POST /v1/embeddings (OpenAI) and POST /api/embed (Ollama),
//     with deterministic vectors from [Embedding] (see embed.go);
//   - model lists: GET /v1/models (OpenAI and Anthropic, told apart by the
//     anthropic-version header) and GET /api/tags (Ollama) (see models.go).
//
// Each test scripts the answers with a [Handler] that sees the parsed request
// and returns a [Reply]: text, tool calls, an HTTP error in the provider's own
// error shape, a delay or a hang. Every request is recorded for assertions.
//
// The fake validates what the real APIs validate and what is easy to get wrong
// in a client (credentials, required headers, tool-call/tool-result pairing),
// answering with the same statuses and error bodies, so a client that passes
// against it sends requests the real service accepts.
package fakellm

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Wire names the API dialect a request was made in.
type Wire string

const (
	OpenAI    Wire = "openai"
	Anthropic Wire = "anthropic"
	Ollama    Wire = "ollama"
)

// DefaultAPIKey is the key the server accepts unless [WithAPIKey] says otherwise.
const DefaultAPIKey = "fake-key"

// Request is one request as the server understood it, normalised across the
// wire formats where they agree and kept wire-specific where they do not
// (Anthropic tool results are blocks in a user message, OpenAI's are messages
// with role "tool"), so tests can assert the exact placement.
type Request struct {
	Wire        Wire
	Path        string
	Header      http.Header
	Model       string
	System      string // OpenAI/Ollama: the leading system message; Anthropic: top-level system
	Messages    []Message
	Tools       []Tool
	MaxTokens   int // max_tokens / max_completion_tokens / options.num_predict; 0 if absent
	Temperature *float64
	Stream      bool
	Body        []byte // raw request body

	// Embedding requests only (see [Server.EmbedRequests]).
	Inputs         []string // the texts to embed
	Dimensions     int      // requested size; 0 if absent
	EncodingFormat string   // OpenAI: "float", "base64" or ""
}

// Message is one conversation turn as sent on the wire (system messages are
// lifted into Request.System).
type Message struct {
	Role        string // "user", "assistant", or "tool" (OpenAI and Ollama)
	Content     string // text, with text blocks/parts concatenated
	ToolCalls   []ToolCall
	ToolCallID  string       // OpenAI/Ollama role "tool": the call this answers
	ToolName    string       // Ollama role "tool": tool_name
	ToolResults []ToolResult // Anthropic: tool_result blocks of a user message
	Images      []Image      // images sent with the message, in order
}

// ToolResult is an Anthropic tool_result block.
type ToolResult struct {
	ToolCallID string
	Content    string
	IsError    bool
}

// ToolCall is a call of a tool by the model, in a request's history or in a Reply.
type ToolCall struct {
	ID        string // generated when empty in a Reply (Ollama replies carry no ID)
	Name      string
	Arguments json.RawMessage // a JSON object; "{}" when empty
}

// Tool is a tool definition offered to the model.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // JSON Schema
}

// LastUserText returns the text of the last user message, or "".
func (r Request) LastUserText() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" && r.Messages[i].Content != "" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Usage overrides the token counts of a reply.
type Usage struct{ InputTokens, OutputTokens int }

// Reply scripts the server's answer to one request.
type Reply struct {
	Text      string
	ToolCalls []ToolCall
	// StopReason forces "max_tokens"; otherwise it follows from the reply
	// (tool calls → tool use, else a normal end of turn).
	StopReason string
	// Usage overrides the word-count estimate of token usage.
	Usage *Usage

	// Status >= 400 answers with an error in the wire's own error shape.
	Status       int
	ErrorMessage string
	ErrorType    string // overrides the wire's error type for Status
	RetryAfter   string // retry-after header; defaults to "1" on 429

	Delay time.Duration // wait before answering (aborted when the client goes away)
	Hang  bool          // never answer; return when the client goes away or the server closes
}

// Text answers with text.
func Text(s string) Reply { return Reply{Text: s} }

// CallTools answers with tool calls.
func CallTools(calls ...ToolCall) Reply { return Reply{ToolCalls: calls} }

// Fail answers with an HTTP error status and message.
func Fail(status int, msg string) Reply { return Reply{Status: status, ErrorMessage: msg} }

// Hang never answers.
func Hang() Reply { return Reply{Hang: true} }

// After delays r by d.
func (r Reply) After(d time.Duration) Reply { r.Delay = d; return r }

// Handler scripts replies. It is called concurrently.
type Handler func(Request) Reply

// Server is the fake. Create it with [New].
type Server struct {
	URL string // base URL, e.g. http://127.0.0.1:41234

	ts     *httptest.Server
	apiKey string
	done   chan struct{}
	once   sync.Once
	ids    atomic.Int64

	mu           sync.Mutex
	handler      Handler
	reqs         []Request
	blind        map[string]bool // models that refuse images (SetBlind)
	embedHandler Handler
	embeds       []Request
	models       map[Wire][]string
	listFailure  Reply
	lists        []Request
}

// Option configures a Server.
type Option func(*Server)

// WithAPIKey sets the key the server requires; "" accepts any credentials.
func WithAPIKey(key string) Option { return func(s *Server) { s.apiKey = key } }

// WithHandler sets the initial handler (default: answer "ok").
func WithHandler(h Handler) Option { return func(s *Server) { s.handler = h } }

// New starts a server that is closed when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		apiKey:  DefaultAPIKey,
		done:    make(chan struct{}),
		handler: func(Request) Reply { return Text("ok") },
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.serveOpenAI)
	mux.HandleFunc("POST /chat/completions", s.serveOpenAI)
	mux.HandleFunc("POST /v1/messages", s.serveAnthropic)
	mux.HandleFunc("POST /api/chat", s.serveOllama)
	mux.HandleFunc("POST /v1/embeddings", s.serveOpenAIEmbed)
	mux.HandleFunc("POST /embeddings", s.serveOpenAIEmbed)
	mux.HandleFunc("POST /api/embed", s.serveOllamaEmbed)
	mux.HandleFunc("GET /v1/models", s.serveModels)
	mux.HandleFunc("GET /models", s.serveModels)
	mux.HandleFunc("GET /api/tags", s.serveOllamaTags)
	s.ts = httptest.NewServer(mux)
	s.URL = s.ts.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops the server, releasing hanging handlers first so it cannot block.
// It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// OpenAIBaseURL is the base URL for OpenAI clients (it ends in /v1).
func (s *Server) OpenAIBaseURL() string { return s.URL + "/v1" }

// AnthropicBaseURL is the base URL for Anthropic clients.
func (s *Server) AnthropicBaseURL() string { return s.URL }

// OllamaURL is the base URL for Ollama clients.
func (s *Server) OllamaURL() string { return s.URL }

// APIKey is the key the server accepts ("" = any).
func (s *Server) APIKey() string { return s.apiKey }

// SetHandler replaces the handler; safe while requests are in flight.
func (s *Server) SetHandler(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Requests returns a copy of every request received so far, in arrival order,
// including those rejected for bad credentials or shape.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Count is the number of requests received so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Reset forgets the recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	s.reqs, s.embeds = nil, nil
	s.mu.Unlock()
}

func (s *Server) record(r Request) Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	return s.handler
}

func (s *Server) nextID() string { return strconv.FormatInt(s.ids.Add(1), 10) }

// wait sleeps for d, or forever when hang is set; it reports false when the
// client went away or the server is closing, in which case nothing is written.
func (s *Server) wait(r *http.Request, d time.Duration, hang bool) bool {
	if !hang && d <= 0 {
		return true
	}
	var timeout <-chan time.Time
	if !hang {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

// readBody reads a request body with a limit far above any test's needs.
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 16<<20))
}

// writeJSON writes v with an explicit Content-Length so clients that stop
// reading at the end of the JSON value still get their connection reused.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// retryAfter sets retry-after on throttling replies, as the real APIs do.
func retryAfter(w http.ResponseWriter, rep Reply) {
	switch {
	case rep.RetryAfter != "":
		w.Header().Set("Retry-After", rep.RetryAfter)
	case rep.Status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	}
}

// errorMessage is the reply's error message or a default one for its status.
func errorMessage(rep Reply) string {
	if rep.ErrorMessage != "" {
		return rep.ErrorMessage
	}
	return fmt.Sprintf("fake: %d %s", rep.Status, http.StatusText(rep.Status))
}

// RefusedURL returns an http URL on the loopback interface whose connections
// are refused: it listens on a free port and closes the listener at once.
func RefusedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakellm: listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("fakellm: close listener: %v", err)
	}
	return "http://" + addr
}
