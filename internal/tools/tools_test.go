package tools

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestCurrentTime(t *testing.T) {
	fixed := time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC)
	r, err := NewRegistry(CurrentTime(func() time.Time { return fixed }))
	require.NoError(t, err)
	require.Equal(t, []string{"current_time"}, r.Names())

	out, err := r.Call(context.Background(), Invocation{}, "current_time", json.RawMessage(`{"timezone":"Europe/Paris"}`))
	require.NoError(t, err)
	require.Equal(t, "Wednesday, 25 November 2026, 15:30 CET", out.Content)

	out, err = r.Call(context.Background(), Invocation{}, "current_time", nil)
	require.NoError(t, err)
	require.Contains(t, out.Content, "14:30 UTC")
}

func TestCallRejectsBadArguments(t *testing.T) {
	r := Builtin()
	for args, want := range map[string]string{
		`{"timezone": 5}`:          "do not match its schema",
		`{"tz": "UTC"}`:            "do not match its schema",
		`{"timezone":"Mars/Base"}`: "unknown time zone",
		`{`:                        "not valid JSON",
	} {
		_, err := r.Call(context.Background(), Invocation{}, "current_time", json.RawMessage(args))
		require.ErrorContains(t, err, want, args)
	}
	_, err := r.Call(context.Background(), Invocation{}, "current_time", json.RawMessage(`{"timezone": 5, "x": 1}`))
	require.EqualError(t, err, "arguments to current_time do not match its schema: "+
		"at /timezone: got number, want string; at the top level: additional properties 'x' not allowed")
	_, err = r.Call(context.Background(), Invocation{}, "rm_rf", nil)
	require.ErrorContains(t, err, `no tool named "rm_rf"`)
}

// A schema violation is an *ArgumentError, and the tool does not run.
func TestArgumentsValidatedBeforeRun(t *testing.T) {
	ran := 0
	var got Invocation
	tool := &Tool{Name: "echo", Parameters: json.RawMessage(`{"type":"object","required":["x"],"properties":{"x":{"type":"integer"}}}`),
		Run: func(_ context.Context, inv Invocation, args json.RawMessage) (Result, error) {
			ran++
			got = inv
			return Result{Content: string(args), Data: map[string]int{"n": 1}}, nil
		}}
	r, err := NewRegistry(tool)
	require.NoError(t, err)
	_, err = r.Call(context.Background(), Invocation{}, "echo", json.RawMessage(`{"x":"one"}`))
	var argErr *ArgumentError
	require.True(t, errors.As(err, &argErr), "%v", err)
	require.Equal(t, "echo", argErr.Tool)
	require.Zero(t, ran)

	inv := Invocation{TenantID: uuid.New(), WorkflowID: "wf", Turn: 3, Call: 1, IdempotencyKey: IdempotencyKey("wf", 3, 1)}
	res, err := r.Call(context.Background(), inv, "echo", json.RawMessage(`{"x":1}`))
	require.NoError(t, err)
	require.Equal(t, `{"x":1}`, res.Content)
	require.Equal(t, inv, got)
	require.Equal(t, "wf:3:tool:1", got.IdempotencyKey)
	require.Equal(t, 1, ran)

	require.Error(t, r.Register(tool), "a name is registered once")
	_, err = NewRegistry(&Tool{Name: "bad", Parameters: json.RawMessage(`{"type": 7}`), Run: tool.Run})
	require.ErrorContains(t, err, "bad")
}

// An operator's schema is one document: it cannot make the server read a
// file or fetch a URL, and its errors name the offending keyword.
func TestCompileSchema(t *testing.T) {
	_, err := CompileSchema("p.json", json.RawMessage(`{"type": 12}`))
	require.ErrorContains(t, err, "not a valid JSON Schema (2020-12): at /type:")
	for _, ref := range []string{"file:///etc/passwd", "http://169.254.169.254/latest/meta-data/"} {
		_, err = CompileSchema("p.json", json.RawMessage(`{"$ref":"`+ref+`"}`))
		require.ErrorContains(t, err, "may not refer to another document", ref)
	}
	_, err = CompileSchema("p.json", json.RawMessage(`{"$ref":"#/$defs/a","$defs":{"a":{"type":"object"}}}`))
	require.NoError(t, err)
	_, err = CompileSchema("p.json", json.RawMessage(`[1]`))
	require.ErrorContains(t, err, "must be a JSON object")
}
