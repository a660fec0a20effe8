package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// Spec is a parsed OpenAPI 3.1 document (api/openapi.yaml) that can check
// real responses against what it promises.
type Spec struct {
	// Doc is the document as plain JSON values.
	Doc map[string]any

	compiler *jsonschema.Compiler
	mu       sync.Mutex
	cache    map[string]*jsonschema.Schema
	ops      []*Operation
}

// Operation is one method on one path of the spec.
type Operation struct {
	Method   string // GET, POST, ...
	Path     string // as written in the spec, e.g. /api/v1/tenants/{tenant_id}
	ID       string // operationId
	Public   bool   // security: [] on the operation
	segments []string
	op       map[string]any
	ptr      string // JSON pointer of the operation object
}

const specURL = "openapi.json"

// LoadSpec parses an OpenAPI document written in YAML.
func LoadSpec(yamlDoc []byte) (*Spec, error) {
	var raw any
	if err := yaml.Unmarshal(yamlDoc, &raw); err != nil {
		return nil, fmt.Errorf("apitest: parse openapi.yaml: %w", err)
	}
	// Through JSON, so the schema compiler sees exactly what a JSON consumer
	// of the spec would (string keys, json.Number).
	js, err := json.Marshal(plain(raw))
	if err != nil {
		return nil, fmt.Errorf("apitest: openapi.yaml as JSON: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, fmt.Errorf("apitest: openapi.yaml as JSON: %w", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("apitest: openapi.yaml is not a mapping")
	}
	if v, _ := top["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("apitest: openapi.yaml declares openapi %q, want 3.1.x", v)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(specURL, doc); err != nil {
		return nil, fmt.Errorf("apitest: openapi.yaml: %w", err)
	}
	s := &Spec{Doc: top, compiler: c, cache: map[string]*jsonschema.Schema{}}
	paths, _ := top["paths"].(map[string]any)
	for p, item := range paths {
		methods, _ := item.(map[string]any)
		for m, o := range methods {
			op, ok := o.(map[string]any)
			if !ok || !isMethod(m) {
				continue
			}
			id, _ := op["operationId"].(string)
			sec, hasSec := op["security"].([]any)
			s.ops = append(s.ops, &Operation{
				Method: strings.ToUpper(m), Path: p, ID: id, Public: hasSec && len(sec) == 0,
				segments: strings.Split(strings.Trim(p, "/"), "/"), op: op,
				ptr: "/paths/" + escapeToken(p) + "/" + m,
			})
		}
	}
	sort.Slice(s.ops, func(i, j int) bool { return s.ops[i].Method+" "+s.ops[i].Path < s.ops[j].Method+" "+s.ops[j].Path })
	return s, nil
}

func isMethod(m string) bool {
	switch m {
	case "get", "put", "post", "delete", "options", "head", "patch", "trace":
		return true
	}
	return false
}

// plain turns YAML's decoded values into JSON-compatible ones.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// escapeToken escapes one JSON-pointer token.
func escapeToken(s string) string {
	s = strings.ReplaceAll(s, "~", "~0")
	return strings.ReplaceAll(s, "/", "~1")
}

// Operations lists every operation, sorted by method and path.
func (s *Spec) Operations() []*Operation { return s.ops }

// Routes lists "METHOD /path/{param}" for every operation, sorted.
func (s *Spec) Routes() []string {
	out := make([]string, len(s.ops))
	for i, o := range s.ops {
		out[i] = o.Method + " " + o.Path
	}
	sort.Strings(out)
	return out
}

// Schema compiles the schema at a JSON pointer into the document, such as
// "/components/schemas/Agent".
func (s *Spec) Schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.cache[ptr]; ok {
		return sch, nil
	}
	tokens := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, t := range tokens {
		tokens[i] = url.PathEscape(t) // the compiler reads a URL fragment
	}
	sch, err := s.compiler.Compile(specURL + "#/" + strings.Join(tokens, "/"))
	if err != nil {
		return nil, fmt.Errorf("apitest: compile %s: %w", ptr, err)
	}
	s.cache[ptr] = sch
	return sch, nil
}

// Component compiles components/schemas/name.
func (s *Spec) Component(name string) (*jsonschema.Schema, error) {
	return s.Schema("/components/schemas/" + name)
}

// Validate checks a decoded JSON value (any JSON body, decoded with
// jsonschema.UnmarshalJSON or json.Decoder.UseNumber) against a component.
func (s *Spec) Validate(component string, body []byte) error {
	sch, err := s.Component(component)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("apitest: body is not JSON: %w", err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("apitest: body does not match %s: %w\nbody: %s", component, err, truncate(body))
	}
	return nil
}

// Find returns the operation serving method and path (a real request path,
// without query), preferring literal segments over parameters; nil when the
// spec has none. pathMatched reports whether some operation has that path
// with another method.
func (s *Spec) Find(method, path string) (op *Operation, pathMatched bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	bestScore := -1
	for _, o := range s.ops {
		score, ok := o.match(segs)
		if !ok {
			continue
		}
		pathMatched = true
		if o.Method == strings.ToUpper(method) && score > bestScore {
			op, bestScore = o, score
		}
	}
	return op, pathMatched
}

func (o *Operation) match(segs []string) (int, bool) {
	if len(segs) != len(o.segments) {
		return 0, false
	}
	score := 0
	for i, t := range o.segments {
		switch {
		case strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}"):
			if segs[i] == "" {
				return 0, false
			}
		case t == segs[i]:
			score++
		default:
			return 0, false
		}
	}
	return score, true
}

// resolve follows a local $ref ("#/components/...") and returns the target
// and its JSON pointer.
func (s *Spec) resolve(v any, ptr string) (map[string]any, string) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, ptr
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr
		}
		ptr = strings.TrimPrefix(ref, "#")
		v = s.lookup(ptr)
	}
	return nil, ptr
}

func (s *Spec) lookup(ptr string) any {
	var cur any = s.Doc
	for _, t := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[t]
	}
	return cur
}

// DocResponse is the documented answer of an operation for a status.
type DocResponse struct {
	Ptr        string         // JSON pointer of the response object (after $ref)
	Obj        map[string]any // the response object
	SchemaPtr  string         // JSON pointer of the application/json schema; "" when none
	JSON       bool           // application/json content is documented
	Text       bool           // text/plain content is documented
	Media      []string       // every documented media type (text/csv, ...)
	EmptyOK    bool           // x-empty-body-allowed: an empty body is fine too
	HeadersReq []string       // headers documented as required
}

// Response returns the documented response of op for status, trying the
// exact code, then "4XX"/"5XX", then "default".
func (s *Spec) Response(op *Operation, status int) (*DocResponse, bool) {
	rs, _ := op.op["responses"].(map[string]any)
	code := strconv.Itoa(status)
	for _, k := range []string{code, code[:1] + "XX", "default"} {
		raw, ok := rs[k]
		if !ok {
			continue
		}
		obj, ptr := s.resolve(raw, op.ptr+"/responses/"+k)
		if obj == nil {
			return nil, false
		}
		r := &DocResponse{Ptr: ptr, Obj: obj}
		r.EmptyOK, _ = obj["x-empty-body-allowed"].(bool)
		if content, ok := obj["content"].(map[string]any); ok {
			if media, ok := content["application/json"].(map[string]any); ok {
				r.JSON = true
				if sch, ok := media["schema"]; ok {
					r.SchemaPtr = ptr + "/content/application~1json/schema"
					if m, ok := sch.(map[string]any); ok {
						if ref, ok := m["$ref"].(string); ok && len(m) == 1 {
							r.SchemaPtr = strings.TrimPrefix(ref, "#")
						}
					}
				}
			}
			_, r.Text = content["text/plain"]
			for mt := range content {
				r.Media = append(r.Media, mt)
			}
		}
		if hs, ok := obj["headers"].(map[string]any); ok {
			for name, h := range hs {
				hobj, _ := s.resolve(h, "")
				if req, _ := hobj["required"].(bool); req {
					r.HeadersReq = append(r.HeadersReq, name)
				}
			}
		}
		return r, true
	}
	return nil, false
}

// CheckResponse checks one real answer against the spec: the operation must
// exist (unknown routes and methods must answer the error envelope with
// 404/405), the status must be documented, required headers present, and a
// JSON body must match the documented schema.
func (s *Spec) CheckResponse(method, path string, status int, header http.Header, body []byte) error {
	op, pathMatched := s.Find(method, path)
	if op == nil {
		want := http.StatusNotFound
		if pathMatched {
			want = http.StatusMethodNotAllowed
		}
		if status != want {
			return fmt.Errorf("%s %s is not in the spec, yet it answered %d (want %d with the error envelope)", method, path, status, want)
		}
		return s.checkJSON(header, body, "/components/schemas/Error")
	}
	r, ok := s.Response(op, status)
	if !ok {
		return fmt.Errorf("%s %s (%s) answered %d, which the spec does not document for it; body: %s",
			method, path, op.Path, status, truncate(body))
	}
	for _, h := range r.HeadersReq {
		if header.Get(h) == "" {
			return fmt.Errorf("%s %s answered %d without the required header %s", method, path, status, h)
		}
	}
	// A documented media type other than JSON (a CSV export) is taken as is:
	// its test parses it.
	if mt, _, err := mime.ParseMediaType(header.Get("Content-Type")); err == nil && mt != "application/json" &&
		mt != "text/plain" && len(body) > 0 {
		for _, m := range r.Media {
			if m == mt {
				return nil
			}
		}
		return fmt.Errorf("%s %s answered %d as %s, which the spec does not document for it", method, path, status, mt)
	}
	switch {
	case len(body) == 0 && (r.EmptyOK || (!r.JSON && !r.Text)):
		return nil
	case !r.JSON && !r.Text:
		return fmt.Errorf("%s %s answered %d with a body, but the spec documents none: %s", method, path, status, truncate(body))
	case r.Text:
		return nil
	case r.SchemaPtr == "":
		return nil
	}
	return s.checkJSON(header, body, r.SchemaPtr)
}

func (s *Spec) checkJSON(header http.Header, body []byte, schemaPtr string) error {
	mt, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("content type %q, want application/json; body: %s", header.Get("Content-Type"), truncate(body))
	}
	sch, err := s.Schema(schemaPtr)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body is not JSON (%v): %s", err, truncate(body))
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("body does not match %s: %v\nbody: %s", schemaPtr, err, truncate(body))
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}
