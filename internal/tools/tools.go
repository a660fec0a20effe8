// Package tools is the registry of tools an agent may be given. Each tool
// declares a JSON schema for its arguments; calls are validated against it
// before the tool runs, so a model's malformed call becomes a clear error the
// model can read and correct, never a panic.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Tool is one capability an agent can call.
type Tool struct {
	Name        string
	Title       string // for the Agent Designer
	Description string // for the model
	Parameters  json.RawMessage
	Run         func(ctx context.Context, args json.RawMessage) (string, error)

	schema *jsonschema.Schema
}

// Registry holds the available tools by name.
type Registry struct {
	tools map[string]*Tool
}

// NewRegistry compiles each tool's schema; a broken schema is a programming
// error and fails at start-up.
func NewRegistry(tools ...*Tool) (*Registry, error) {
	r := &Registry{tools: make(map[string]*Tool, len(tools))}
	for _, t := range tools {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(t.Parameters))
		if err != nil {
			return nil, fmt.Errorf("tools: %s: schema: %w", t.Name, err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource(t.Name+".json", doc); err != nil {
			return nil, fmt.Errorf("tools: %s: schema: %w", t.Name, err)
		}
		if t.schema, err = c.Compile(t.Name + ".json"); err != nil {
			return nil, fmt.Errorf("tools: %s: schema: %w", t.Name, err)
		}
		r.tools[t.Name] = t
	}
	return r, nil
}

// Names lists the tools, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.tools))
	for n := range r.tools {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns a tool by name.
func (r *Registry) Get(name string) (*Tool, bool) {
	t, ok := r.tools[name]
	return t, ok
}

// Call validates args against the tool's schema and runs it. Errors are
// written for the model to read.
func (r *Registry) Call(ctx context.Context, name string, args json.RawMessage) (string, error) {
	t, ok := r.tools[name]
	if !ok {
		return "", fmt.Errorf("there is no tool named %q", name)
	}
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage(`{}`)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return "", fmt.Errorf("arguments to %s are not valid JSON: %v", name, err)
	}
	if err := t.schema.Validate(doc); err != nil {
		return "", fmt.Errorf("arguments to %s do not match its schema: %v", name, err)
	}
	return t.Run(ctx, args)
}
