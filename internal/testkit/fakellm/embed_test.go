package fakellm_test

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

func cosine(a, b []float32) float64 {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return dot // both are unit vectors
}

func TestEmbeddingIsDeterministicAndSharesWords(t *testing.T) {
	a := fakellm.Embedding("My favourite colour is TEAL.", 1536)
	require.Equal(t, a, fakellm.Embedding("my favourite colour is teal", 1536), "case and punctuation do not matter")
	var norm float64
	for _, f := range a {
		norm += float64(f) * float64(f)
	}
	require.InDelta(t, 1, norm, 1e-5)

	q := fakellm.Embedding("what is my favourite colour?", 1536)
	other := fakellm.Embedding("the invoice was paid on Tuesday", 1536)
	require.Greater(t, cosine(a, q), 0.5)
	require.Less(t, cosine(a, other), 0.2)
	require.Equal(t, float32(1), fakellm.Embedding("?!", 8)[0], "no words: a unit vector, never zero")
}

func TestOpenAIEmbeddingsWire(t *testing.T) {
	s := fakellm.New(t)
	status, _, out := post(t, s.OpenAIBaseURL()+"/embeddings", openAIAuth,
		`{"model":"text-embedding-3-small","input":["hello world","bye"]}`)
	require.Equal(t, http.StatusOK, status)
	data := out["data"].([]any)
	require.Len(t, data, 2)
	first := data[0].(map[string]any)
	require.Equal(t, "embedding", first["object"])
	require.EqualValues(t, 0, first["index"])
	require.Len(t, first["embedding"].([]any), 1536)
	require.EqualValues(t, 3, out["usage"].(map[string]any)["prompt_tokens"])

	// dimensions and base64 (what the official SDKs send) are honoured.
	status, _, out = post(t, s.OpenAIBaseURL()+"/embeddings", openAIAuth,
		`{"model":"text-embedding-3-small","input":"hello world","dimensions":8,"encoding_format":"base64"}`)
	require.Equal(t, http.StatusOK, status)
	raw, err := base64.StdEncoding.DecodeString(out["data"].([]any)[0].(map[string]any)["embedding"].(string))
	require.NoError(t, err)
	require.Len(t, raw, 8*4)
	got := make([]float32, 8)
	for i := range got {
		got[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	require.Equal(t, fakellm.Embedding("hello world", 8), got)

	reqs := s.EmbedRequests()
	require.Len(t, reqs, 2)
	require.Equal(t, []string{"hello world"}, reqs[1].Inputs)
	require.Equal(t, 8, reqs[1].Dimensions)
	require.Empty(t, s.Requests(), "embedding requests are recorded apart from chat")

	status, _, out = post(t, s.OpenAIBaseURL()+"/embeddings", nil, `{"model":"text-embedding-3-small","input":"x"}`)
	require.Equal(t, http.StatusUnauthorized, status)
	status, _, out = post(t, s.OpenAIBaseURL()+"/embeddings", openAIAuth, `{"model":"text-embedding-3-small","input":[]}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, out["error"].(map[string]any)["message"], "'$.input' is invalid")
}

func TestOllamaEmbedWire(t *testing.T) {
	s := fakellm.New(t)
	status, _, out := post(t, s.OllamaURL()+"/api/embed", nil, `{"model":"nomic-embed-text","input":"hello world"}`)
	require.Equal(t, http.StatusOK, status)
	vecs := out["embeddings"].([]any)
	require.Len(t, vecs, 1)
	require.Len(t, vecs[0].([]any), 768)
	require.EqualValues(t, 2, out["prompt_eval_count"])

	status, _, out = post(t, s.OllamaURL()+"/api/embed", nil, `{"input":"x"}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "model is required", out["error"])
}

func TestEmbedFailureInjection(t *testing.T) {
	s := fakellm.New(t, fakellm.WithEmbedHandler(func(r fakellm.Request) fakellm.Reply {
		return fakellm.Fail(http.StatusServiceUnavailable, "embeddings down for "+r.Model)
	}))
	status, _, out := post(t, s.OpenAIBaseURL()+"/embeddings", openAIAuth, `{"model":"text-embedding-3-small","input":"x"}`)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "embeddings down for text-embedding-3-small", out["error"].(map[string]any)["message"])
	status, _, out = post(t, s.OllamaURL()+"/api/embed", nil, `{"model":"nomic-embed-text","input":"x"}`)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "embeddings down for nomic-embed-text", out["error"])

	// Chat is scripted separately and still answers.
	status, _, _ = post(t, s.OpenAIBaseURL()+"/chat/completions", openAIAuth,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, status)
}
