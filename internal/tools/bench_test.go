package tools

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// The cost of validating a model's arguments before a tool runs.
func BenchmarkRegistryCall(b *testing.B) {
	r, err := NewRegistry(CurrentTime(func() time.Time { return time.Unix(0, 0) }))
	if err != nil {
		b.Fatal(err)
	}
	args := json.RawMessage(`{"timezone":"UTC"}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Call(ctx, Invocation{}, "current_time", args); err != nil {
			b.Fatal(err)
		}
	}
}
