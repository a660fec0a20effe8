package fakellm

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"unicode"
)

// Embedding endpoints:
//
//   - OpenAI: POST /v1/embeddings (and /embeddings), input a string or an
//     array of strings, "dimensions" honoured, "encoding_format" float or
//     base64 (the official SDKs ask for base64);
//   - Ollama: POST /api/embed, input a string or an array of strings.
//
// Vectors come from [Embedding], so a test can compute what was stored. The
// embedding handler ([WithEmbedHandler], [Server.SetEmbedHandler]) scripts
// failures with the same [Reply] as chat (Status, Delay, Hang); its text is
// ignored. Embedding requests are recorded apart from chat requests
// ([Server.EmbedRequests]) so that tests asserting on what a chat model was
// sent are not disturbed by the platform's memory.

// Embedding is the fake's embedding of text in dims dimensions: a
// feature-hashed bag of lower-cased words (runs of letters and digits), each
// word adding ±1 at an FNV-1a-chosen coordinate, L2-normalised. Texts sharing
// words are close in cosine distance; texts sharing none are nearly
// orthogonal. A text without words (or whose words cancel out, possible in
// few dimensions) embeds as the first unit vector, so no vector is ever zero
// (a zero vector has no cosine distance).
func Embedding(text string, dims int) []float32 {
	v := make([]float32, dims)
	if dims <= 0 {
		return v
	}
	n := 0
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		h := fnv.New64a()
		_, _ = h.Write([]byte(w))
		x := h.Sum64()
		sign := float32(1)
		if x>>63 == 1 {
			sign = -1
		}
		v[int((x&(1<<63-1))%uint64(dims))] += sign
		n++
	}
	var sum float64
	for _, f := range v {
		sum += float64(f) * float64(f)
	}
	if n == 0 || sum == 0 { // no words, or words that cancelled out
		clear(v)
		v[0] = 1
		return v
	}
	norm := float32(math.Sqrt(sum))
	for i := range v {
		v[i] /= norm
	}
	return v
}

// DefaultDimensions is the size the fake gives a model's vectors when the
// request does not ask for one, following the real models.
func DefaultDimensions(wire Wire, model string) int {
	switch {
	case wire == OpenAI && strings.HasPrefix(model, "text-embedding-3-large"):
		return 3072
	case wire == OpenAI:
		return 1536 // text-embedding-3-small, text-embedding-ada-002
	case strings.HasPrefix(model, "mxbai-embed-large"):
		return 1024
	case strings.HasPrefix(model, "all-minilm"):
		return 384
	default:
		return 768 // nomic-embed-text
	}
}

// WithEmbedHandler sets the initial embedding handler (default: answer).
func WithEmbedHandler(h Handler) Option { return func(s *Server) { s.embedHandler = h } }

// SetEmbedHandler replaces the embedding handler; safe while requests are in flight.
func (s *Server) SetEmbedHandler(h Handler) {
	s.mu.Lock()
	s.embedHandler = h
	s.mu.Unlock()
}

// EmbedRequests returns a copy of every embedding request received so far.
func (s *Server) EmbedRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.embeds...)
}

func (s *Server) recordEmbed(r Request) Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embeds = append(s.embeds, r)
	if s.embedHandler == nil {
		return func(Request) Reply { return Reply{} }
	}
	return s.embedHandler
}

// embedInput reads "input" as a string or an array of strings.
func embedInput(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("'input' must be a string or an array of strings")
	}
	return many, nil
}

func validateEmbedInputs(inputs []string) string {
	if len(inputs) == 0 {
		return "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
	}
	if len(inputs) > 2048 {
		return "'$.input' is too long: at most 2048 inputs per request"
	}
	for i, in := range inputs {
		if in == "" {
			return fmt.Sprintf("'$.input[%d]' is invalid: empty string", i)
		}
	}
	return ""
}

type oaEmbedRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     int             `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

func (s *Server) serveOpenAIEmbed(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	req := Request{Wire: OpenAI, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var in oaEmbedRequest
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err == nil {
		req.Model, req.Dimensions, req.EncodingFormat = in.Model, in.Dimensions, in.EncodingFormat
		req.Inputs, err = embedInput(in.Input)
	}
	h := s.recordEmbed(req)

	switch {
	case s.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+s.apiKey:
		openAIError(w, Reply{Status: http.StatusUnauthorized,
			ErrorMessage: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."})
		return
	case err != nil:
		openAIError(w, Fail(http.StatusBadRequest, "We could not parse the JSON body of your request: "+err.Error()))
		return
	case in.Model == "":
		openAIError(w, Fail(http.StatusBadRequest, "you must provide a model parameter"))
		return
	case in.EncodingFormat != "" && in.EncodingFormat != "float" && in.EncodingFormat != "base64":
		openAIError(w, Fail(http.StatusBadRequest, "Invalid value for 'encoding_format': must be 'float' or 'base64'"))
		return
	case in.Dimensions < 0:
		openAIError(w, Fail(http.StatusBadRequest, "Invalid value for 'dimensions': must be at least 1"))
		return
	}
	if msg := validateEmbedInputs(req.Inputs); msg != "" {
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
	dims := in.Dimensions
	if dims == 0 {
		dims = DefaultDimensions(OpenAI, in.Model)
	}
	data := make([]map[string]any, len(req.Inputs))
	tokens := 0
	for i, text := range req.Inputs {
		vec := Embedding(text, dims)
		var emb any = vec
		if in.EncodingFormat == "base64" {
			emb = encodeBase64(vec)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
		tokens += max(words(text), 1)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   data,
		"model":  in.Model,
		"usage":  map[string]any{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// encodeBase64 is OpenAI's base64 format: little-endian float32s.
func encodeBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

type olEmbedRequest struct {
	Model      string          `json:"model"`
	Input      json.RawMessage `json:"input"`
	Dimensions int             `json:"dimensions"`
}

func (s *Server) serveOllamaEmbed(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	req := Request{Wire: Ollama, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	var in olEmbedRequest
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err == nil {
		req.Model, req.Dimensions = in.Model, in.Dimensions
		req.Inputs, err = embedInput(in.Input)
	}
	h := s.recordEmbed(req)
	switch {
	case err != nil:
		ollamaError(w, Fail(http.StatusBadRequest, err.Error()))
		return
	case in.Model == "":
		ollamaError(w, Fail(http.StatusBadRequest, "model is required"))
		return
	}
	if msg := validateEmbedInputs(req.Inputs); msg != "" {
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
	dims := in.Dimensions
	if dims <= 0 {
		dims = DefaultDimensions(Ollama, in.Model)
	}
	vecs := make([][]float32, len(req.Inputs))
	tokens := 0
	for i, text := range req.Inputs {
		vecs[i] = Embedding(text, dims)
		tokens += max(words(text), 1)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model":             in.Model,
		"embeddings":        vecs,
		"total_duration":    1_000_000,
		"load_duration":     100_000,
		"prompt_eval_count": tokens,
	})
}
