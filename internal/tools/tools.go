// Package tools is the registry of tools an agent may be given. Each tool
// declares a JSON schema for its arguments; calls are validated against it
// before the tool runs, so a model's malformed call becomes a clear error the
// model can read and correct, never a panic.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Invocation says who is calling a tool, for tools that need the tenant
// (kb_search, http_request) and for idempotency.
type Invocation struct {
	TenantID, AgentID, ConversationID uuid.UUID
	WorkflowID                        string
	Turn, Call                        int    // Call: index of the call within the turn (never the model's tool_call_id)
	IdempotencyKey                    string // "<workflowID>:<turn>:tool:<Call>"
}

// IdempotencyKey is the key of the call-th tool call of a turn. It is built
// from what the workflow decides (never the model's tool_call_id, which a
// provider may change on a retried completion), so every retry of the same
// call carries the same key.
func IdempotencyKey(workflowID string, turn, call int) string {
	return workflowID + ":" + strconv.Itoa(turn) + ":tool:" + strconv.Itoa(call)
}

// Result is what a tool returns: Content goes to the model; Data (optional,
// JSON-able) is kept for the audit trail and the transcript (kb_search puts
// the chunks it returned there).
type Result struct {
	Content string
	Data    any
}

// Defaults for a tool that leaves Timeout or MaxAttempts zero.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 3
)

// Tool is one capability an agent can call.
type Tool struct {
	Name        string
	Title       string          // for the Agent Designer
	Description string          // for the model
	Parameters  json.RawMessage // JSON Schema of the arguments
	Timeout     time.Duration   // one attempt; 0 = DefaultTimeout
	MaxAttempts int             // retry policy; 0 = DefaultMaxAttempts
	SideEffects bool            // true: runs as its own activity, exactly once per Invocation
	// Automatic tools are offered by the platform when a feature is on
	// (escalate_to_human, with the agent's escalation), never chosen in the
	// Agent Designer's tool list.
	Automatic bool
	Run       func(ctx context.Context, inv Invocation, args json.RawMessage) (Result, error)

	schema *jsonschema.Schema
}

// EffectiveTimeout is Timeout or its default.
func (t *Tool) EffectiveTimeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return DefaultTimeout
}

// EffectiveMaxAttempts is MaxAttempts or its default.
func (t *Tool) EffectiveMaxAttempts() int {
	if t.MaxAttempts > 0 {
		return t.MaxAttempts
	}
	return DefaultMaxAttempts
}

// Compile compiles the tool's schema, so that Validate and Registry.Call can
// use it; a tool built at run time (a declared HTTP tool) is compiled once
// when it is loaded.
func (t *Tool) Compile() error {
	s, err := CompileSchema(t.Name+".json", t.Parameters)
	if err != nil {
		return fmt.Errorf("tools: %s: %w", t.Name, err)
	}
	t.schema = s
	return nil
}

// CompileSchema compiles a JSON Schema document (an operator's, when an HTTP
// tool is declared), so a broken schema is refused before anything uses it.
func CompileSchema(name string, schema json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("the schema is not valid JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, errors.New("the schema must be a JSON object")
	}
	c := jsonschema.NewCompiler()
	// A schema is one self-contained document: no $ref may make the server
	// read a file or fetch a URL (the default loader reads file:// URLs).
	c.UseLoader(refuseLoader{})
	url := "https://schemas.konstruct.invalid/" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		var se *jsonschema.SchemaValidationError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("not a valid JSON Schema (2020-12): %s", violations(se.Err))
		}
		return nil, fmt.Errorf("the schema cannot be compiled: %w", err)
	}
	return s, nil
}

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("a schema may not refer to another document (%s); put the definition under $defs", url)
}

// ArgumentError is a call whose arguments are not what the tool's schema
// says. It goes back to the model as the tool's result, so the model can
// correct the call in the next round; it is never a failure of the turn.
type ArgumentError struct {
	Tool   string
	Reason string
}

func (e *ArgumentError) Error() string {
	return fmt.Sprintf("arguments to %s %s", e.Tool, e.Reason)
}

// Validate checks args against the tool's schema.
func (t *Tool) Validate(args json.RawMessage) error {
	if t.schema == nil {
		if err := t.Compile(); err != nil {
			return err
		}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return &ArgumentError{Tool: t.Name, Reason: fmt.Sprintf("are not valid JSON: %v", err)}
	}
	if err := t.schema.Validate(doc); err != nil {
		return &ArgumentError{Tool: t.Name, Reason: "do not match its schema: " + violations(err)}
	}
	return nil
}

var englishPrinter = message.NewPrinter(language.English)

// violations lists a validation error's leaf causes as "at /path: what",
// sorted (the validator's order follows a map) — what the model needs to fix
// its call, without the schema's internal URL.
func violations(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var msgs []string
	var walk func(*jsonschema.ValidationError)
	walk = func(ve *jsonschema.ValidationError) {
		if len(ve.Causes) == 0 {
			loc := "/" + strings.Join(ve.InstanceLocation, "/")
			if loc == "/" {
				loc = "the top level"
			}
			msgs = append(msgs, "at "+loc+": "+ve.ErrorKind.LocalizedString(englishPrinter))
		}
		for _, c := range ve.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.Sort(msgs)
	return strings.Join(slices.Compact(msgs), "; ")
}

// Invoke validates args and runs the tool.
func (t *Tool) Invoke(ctx context.Context, inv Invocation, args json.RawMessage) (Result, error) {
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage(`{}`)
	}
	if err := t.Validate(args); err != nil {
		return Result{}, err
	}
	return t.Run(ctx, inv, args)
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
		if err := r.Register(t); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds a tool (kb_search is registered this way at start-up). It is
// not safe to call once the registry is in use.
func (r *Registry) Register(t *Tool) error {
	if t.Name == "" || t.Run == nil {
		return fmt.Errorf("tools: a tool needs a name and a Run function")
	}
	if _, dup := r.tools[t.Name]; dup {
		return fmt.Errorf("tools: %s registered twice", t.Name)
	}
	if err := t.Compile(); err != nil {
		return err
	}
	r.tools[t.Name] = t
	return nil
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

// Selectable lists the tools an operator may choose for an agent (every
// tool but the automatic ones), sorted.
func (r *Registry) Selectable() []string {
	out := make([]string, 0, len(r.tools))
	for _, n := range r.Names() {
		if !r.tools[n].Automatic {
			out = append(out, n)
		}
	}
	return out
}

// List returns the tools sorted by name, for the Designer and the API.
func (r *Registry) List() []*Tool {
	out := make([]*Tool, 0, len(r.tools))
	for _, n := range r.Names() {
		out = append(out, r.tools[n])
	}
	return out
}

// Get returns a tool by name.
func (r *Registry) Get(name string) (*Tool, bool) {
	t, ok := r.tools[name]
	return t, ok
}

// Call validates args against the tool's schema and runs it. Errors are
// written for the model to read; an *ArgumentError means the model should
// correct its arguments.
func (r *Registry) Call(ctx context.Context, inv Invocation, name string, args json.RawMessage) (Result, error) {
	t, ok := r.tools[name]
	if !ok {
		return Result{}, fmt.Errorf("there is no tool named %q", name)
	}
	return t.Invoke(ctx, inv, args)
}
