package fakellm

import (
	"net/http"
	"strings"
	"time"
)

// The model lists: the cheap calls that check a key before it is saved.
//
//   - OpenAI: GET /v1/models (and /models) with a bearer key;
//   - Anthropic: GET /v1/models with an anthropic-version header and the key
//     as x-api-key or a bearer token;
//   - Ollama: GET /api/tags, no credentials.
//
// OpenAI and Anthropic share the path; the anthropic-version header, which
// every Anthropic client sends, tells them apart.

// defaultModels are what each wire lists until SetModels says otherwise.
var defaultModels = map[Wire][]string{
	OpenAI:    {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"},
	Anthropic: {"claude-sonnet-4-5", "claude-haiku-4-5"},
	Ollama:    {"llama3.2:latest", "nomic-embed-text:latest"},
}

// SetModels sets the models a wire's list answers with.
func (s *Server) SetModels(w Wire, models ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.models == nil {
		s.models = map[Wire][]string{}
	}
	s.models[w] = append([]string(nil), models...)
}

// FailModelList makes every model list answer with rep (an error status);
// a zero Reply restores the lists.
func (s *Server) FailModelList(rep Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listFailure = rep
}

// ModelListRequests returns the model-list requests received so far.
func (s *Server) ModelListRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.lists...)
}

func (s *Server) modelsOf(w Wire) ([]string, Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.models[w]; ok {
		return m, s.listFailure
	}
	return defaultModels[w], s.listFailure
}

func (s *Server) recordList(r *http.Request, w Wire) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists = append(s.lists, Request{Wire: w, Path: r.URL.Path, Header: r.Header.Clone()})
}

func (s *Server) serveModels(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Anthropic-Version") != "" {
		s.serveAnthropicModels(w, r)
		return
	}
	s.recordList(r, OpenAI)
	if s.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+s.apiKey {
		openAIError(w, Reply{Status: http.StatusUnauthorized,
			ErrorMessage: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."})
		return
	}
	models, fail := s.modelsOf(OpenAI)
	if fail.Status >= 400 {
		openAIError(w, fail)
		return
	}
	data := make([]map[string]any, 0, len(models))
	for _, m := range models {
		data = append(data, map[string]any{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) serveAnthropicModels(w http.ResponseWriter, r *http.Request) {
	s.recordList(r, Anthropic)
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
	}
	models, fail := s.modelsOf(Anthropic)
	if fail.Status >= 400 {
		s.anthropicError(w, fail)
		return
	}
	data := make([]map[string]any, 0, len(models))
	for _, m := range models {
		data = append(data, map[string]any{"type": "model", "id": m, "display_name": m,
			"created_at": time.Date(2025, 9, 29, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)})
	}
	first, last := "", ""
	if len(models) > 0 {
		first, last = models[0], models[len(models)-1]
	}
	w.Header().Set("Request-Id", "req_fake_"+s.nextID())
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last})
}

func (s *Server) serveOllamaTags(w http.ResponseWriter, r *http.Request) {
	s.recordList(r, Ollama)
	models, fail := s.modelsOf(Ollama)
	if fail.Status >= 400 {
		ollamaError(w, fail)
		return
	}
	list := make([]map[string]any, 0, len(models))
	for _, m := range models {
		list = append(list, map[string]any{"name": m, "model": m, "modified_at": "2025-09-29T10:00:00Z", "size": 2019393189,
			"digest":  "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
			"details": map[string]any{"format": "gguf", "family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": list})
}
