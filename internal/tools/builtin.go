package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Builtin returns the registry of tools that ship with Konstruct.
func Builtin() *Registry {
	r, err := NewRegistry(CurrentTime(time.Now), EscalateToHuman())
	if err != nil {
		panic(err) // the built-in schemas are constants; a test compiles them
	}
	return r
}

// CurrentTime tells the model the date and time, which it cannot know.
func CurrentTime(now func() time.Time) *Tool {
	return &Tool{
		Name:        "current_time",
		Title:       "Current date and time",
		Description: "Returns the current date, time and weekday, in the given IANA time zone (default UTC).",
		Timeout:     5 * time.Second,
		Parameters: json.RawMessage(`{
			"type": "object",
			"additionalProperties": false,
			"properties": {
				"timezone": {"type": "string", "description": "IANA time zone, e.g. Europe/Paris", "maxLength": 64}
			}
		}`),
		Run: func(_ context.Context, _ Invocation, raw json.RawMessage) (Result, error) {
			var args struct {
				Timezone string `json:"timezone"`
			}
			if err := json.Unmarshal(raw, &args); err != nil {
				return Result{}, fmt.Errorf("current_time: %w", err)
			}
			loc := time.UTC
			if args.Timezone != "" {
				l, err := time.LoadLocation(args.Timezone)
				if err != nil {
					return Result{}, fmt.Errorf("unknown time zone %q; use an IANA name such as Europe/Paris", args.Timezone)
				}
				loc = l
			}
			return Result{Content: now().In(loc).Format("Monday, 2 January 2006, 15:04 MST")}, nil
		},
	}
}
