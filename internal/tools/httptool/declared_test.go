package httptool

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
)

func TestValidateDeclaration(t *testing.T) {
	ok := Declaration{Name: "get_order", Description: "Looks up an order by ID", URLTemplate: "https://api.example.com/orders/{order_id}?v=1",
		Parameters: json.RawMessage(`{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string"}}}`),
		Headers:    map[string]string{"X-Api-Key": "k"}}
	d := ok
	require.NoError(t, Validate(&d, []string{"current_time"}))
	require.Equal(t, "GET", d.Method)
	require.Equal(t, DefaultToolTimeout, d.Timeout)

	for field, mutate := range map[string]func(*Declaration){
		"name":         func(d *Declaration) { d.Name = "current_time" },
		"description":  func(d *Declaration) { d.Description = "" },
		"method":       func(d *Declaration) { d.Method = "TRACE" },
		"parameters":   func(d *Declaration) { d.Parameters = json.RawMessage(`{"type": 7}`) },
		"url_template": func(d *Declaration) { d.URLTemplate = "https://{host}.example.com/x" },
		"headers":      func(d *Declaration) { d.Headers = map[string]string{"Host": "evil"} },
		"timeout_ms":   func(d *Declaration) { d.Timeout = time.Hour },
	} {
		d := ok
		mutate(&d)
		err := Validate(&d, []string{"current_time"})
		var f apperr.Fields
		require.True(t, errors.As(err, &f), "%s: %v", field, err)
		require.NotEmpty(t, f.Message(field), "%s: %v", field, err)
	}
	d = ok
	d.URLTemplate = "https://api.example.com/orders/{id}"
	err := Validate(&d, nil)
	require.ErrorContains(t, err, "placeholder {id} is not a property")
	d = ok
	d.URLTemplate = "ftp://api.example.com/"
	require.ErrorContains(t, Validate(&d, nil), "http:// or https://")
}

func TestDeclaredToolRequest(t *testing.T) {
	type seen struct {
		method, path, query, key, apiKey, body string
	}
	got := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Idempotency-Key"), r.Header.Get("X-Api-Key"), string(b)}
		_, _ = w.Write([]byte(`{"status":"shipped"}`))
	}))
	defer srv.Close()
	c := NewClient(Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	schema := json.RawMessage(`{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string"},"verbose":{"type":"boolean"},"note":{"type":"string"}}}`)

	tool, err := Tool(store.HTTPTool{ID: uuid.New(), Name: "get_order", Description: "d", Method: "GET",
		URLTemplate: srv.URL + "/orders/{order_id}", Parameters: schema, Timeout: time.Second},
		map[string]string{"X-Api-Key": "sekret"}, c)
	require.NoError(t, err)
	inv := tools.Invocation{IdempotencyKey: tools.IdempotencyKey("wf", 2, 0)}
	res, err := tool.Invoke(context.Background(), inv, json.RawMessage(`{"order_id":"A/1 2","verbose":true}`))
	require.NoError(t, err)
	require.Equal(t, "HTTP 200\n{\"status\":\"shipped\"}", res.Content)
	s := <-got
	require.Equal(t, seen{"GET", "/orders/A%2F1%202", "verbose=true", "wf:2:tool:0", "sekret", ""}, s)

	_, err = tool.Invoke(context.Background(), inv, json.RawMessage(`{"verbose":true}`))
	var argErr *tools.ArgumentError
	require.True(t, errors.As(err, &argErr), "%v", err)
	require.Empty(t, got, "invalid arguments send nothing")

	post, err := Tool(store.HTTPTool{ID: uuid.New(), Name: "refund", Description: "d", Method: "POST",
		URLTemplate: srv.URL + "/orders/{order_id}/refund", Parameters: schema, SideEffects: true}, nil, c)
	require.NoError(t, err)
	require.True(t, post.SideEffects)
	_, err = post.Invoke(context.Background(), inv, json.RawMessage(`{"order_id":"7","note":"late"}`))
	require.NoError(t, err)
	s = <-got
	require.Equal(t, seen{"POST", "/orders/7/refund", "", "wf:2:tool:0", "", `{"note":"late"}`}, s)
}
