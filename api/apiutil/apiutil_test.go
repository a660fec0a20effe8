package apiutil

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/apperr"
)

type sample struct {
	Name   string   `json:"name"`
	Models []string `json:"models"`
	Count  int      `json:"count"`
}

func TestDecodeBytes(t *testing.T) {
	var s sample
	require.NoError(t, DecodeBytes([]byte(`{"name":"Ada","models":["openai/x"],"count":2}`), &s))
	require.Equal(t, sample{Name: "Ada", Models: []string{"openai/x"}, Count: 2}, s)

	cases := map[string]struct{ code, field string }{
		``:                       {"empty_body", ""},
		`   `:                    {"empty_body", ""},
		`{"name":`:               {"malformed_json", ""},
		`{"name":"a"} {"x":1}`:   {"malformed_json", ""},
		`{"name": 5}`:            {"wrong_type", "name"},
		`{"models": "openai/x"}`: {"wrong_type", "models"},
		`{"nmae": "typo"}`:       {"unknown_field", "nmae"},
		`[1,2]`:                  {"wrong_type", ""},
		`{"count": 1e400}`:       {"wrong_type", "count"},
		"{\"name\":\"a\u0000\"":  {"malformed_json", ""},
	}
	for body, want := range cases {
		err := DecodeBytes([]byte(body), &sample{})
		var e *apperr.Error
		require.True(t, errors.As(err, &e), "body %q: %v", body, err)
		require.Equal(t, http.StatusBadRequest, e.Status, body)
		require.Equal(t, want.code, e.Code, "body %q: %v", body, err)
		require.Equal(t, want.field, e.Field, body)
		require.NotEmpty(t, e.Message)
	}
}

// FuzzDecodeBytes: any input either decodes or yields a 4xx apperr.Error; never a panic.
func FuzzDecodeBytes(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{`, `[]`, `{"models":[1]}`, `null`, `{"count":-1}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var s sample
		err := DecodeBytes(body, &s)
		if err == nil {
			return
		}
		var e *apperr.Error
		require.True(t, errors.As(err, &e))
		require.GreaterOrEqual(t, e.Status, 400)
		require.Less(t, e.Status, 500)
	})
}
