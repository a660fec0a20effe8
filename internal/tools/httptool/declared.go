package httptool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
)

// Limits of a declaration.
const (
	MaxDescription     = 1000
	MaxHeaders         = 20
	MaxSchemaBytes     = 16 << 10
	MinTimeout         = 100 * time.Millisecond
	MaxTimeout         = 2 * time.Minute
	DefaultToolTimeout = 10 * time.Second
)

// Declaration is what an operator submits for an HTTP tool.
type Declaration struct {
	Name        string
	Description string
	Method      string
	URLTemplate string
	Headers     map[string]string // values are secrets (API keys); nil keeps the stored ones on update
	Parameters  json.RawMessage
	SideEffects bool
	Timeout     time.Duration
	Enabled     bool
}

var (
	nameRe        = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`)
	placeholderRe = regexp.MustCompile(`\{([a-zA-Z_][a-zA-Z0-9_]*)\}`)
	headerNameRe  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
	methods       = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	// Headers the client sets itself, or that would change how the request
	// is framed or routed.
	reservedHeaders = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Te", "Trailer",
		"Proxy-Authorization", "Proxy-Connection", "Keep-Alive", "Idempotency-Key", "Content-Type"}
)

// Validate normalises d and reports every invalid field (apperr.Fields).
// reserved lists names the model already knows (the built-in tools).
func Validate(d *Declaration, reserved []string) error {
	var errs apperr.Fields
	d.Name = strings.TrimSpace(d.Name)
	d.Description = strings.TrimSpace(d.Description)
	d.Method = strings.ToUpper(strings.TrimSpace(d.Method))
	d.URLTemplate = strings.TrimSpace(d.URLTemplate)
	switch {
	case !nameRe.MatchString(d.Name):
		errs.Add("name", "must start with a letter and hold only letters, digits, _ and - (at most 64): the model calls the tool by this name")
	case slices.Contains(reserved, d.Name):
		errs.Add("name", fmt.Sprintf("%q is a built-in tool's name", d.Name))
	}
	if n := utf8.RuneCountInString(d.Description); n == 0 || n > MaxDescription || strings.ContainsRune(d.Description, 0) {
		errs.Add("description", fmt.Sprintf("is required: 1 to %d characters telling the model when to use the tool", MaxDescription))
	}
	if d.Method == "" {
		d.Method = http.MethodGet
	}
	if !slices.Contains(methods, d.Method) {
		errs.Add("method", "must be one of "+strings.Join(methods, ", "))
	}

	var schema map[string]any
	switch {
	case len(bytes.TrimSpace(d.Parameters)) == 0 || string(bytes.TrimSpace(d.Parameters)) == "null":
		d.Parameters = json.RawMessage(`{"type":"object","properties":{}}`)
		schema = map[string]any{"type": "object"}
	case len(d.Parameters) > MaxSchemaBytes:
		errs.Add("parameters", fmt.Sprintf("the schema must be at most %d bytes", MaxSchemaBytes))
	default:
		if _, err := tools.CompileSchema("parameters.json", d.Parameters); err != nil {
			errs.Add("parameters", err.Error())
		} else if err := json.Unmarshal(d.Parameters, &schema); err != nil || schema["type"] != "object" {
			errs.Add("parameters", `must be a JSON Schema with "type": "object" (the model's arguments are an object)`)
			schema = nil
		}
	}

	if msg := checkTemplate(d.URLTemplate, schema); msg != "" {
		errs.Add("url_template", msg)
	}

	if len(d.Headers) > MaxHeaders {
		errs.Add("headers", fmt.Sprintf("at most %d headers", MaxHeaders))
	}
	for k, v := range d.Headers {
		switch {
		case !headerNameRe.MatchString(k):
			errs.Add("headers", fmt.Sprintf("%q is not a valid header name", k))
		case slices.Contains(reservedHeaders, http.CanonicalHeaderKey(k)):
			errs.Add("headers", fmt.Sprintf("%s is set by Konstruct and cannot be declared", http.CanonicalHeaderKey(k)))
		case strings.ContainsAny(v, "\r\n\x00") || len(v) > 4096:
			errs.Add("headers", fmt.Sprintf("the value of %s must be one line of at most 4096 bytes", k))
		}
	}

	if d.Timeout == 0 {
		d.Timeout = DefaultToolTimeout
	}
	if d.Timeout < MinTimeout || d.Timeout > MaxTimeout {
		errs.Add("timeout_ms", fmt.Sprintf("must be between %d and %d", MinTimeout.Milliseconds(), MaxTimeout.Milliseconds()))
	}
	return errs.Err()
}

// checkTemplate says what is wrong with a URL template, or "". Placeholders
// may only stand in the path and query — never the scheme or host, which the
// operator fixes — and each must be a property of the schema.
func checkTemplate(tmpl string, schema map[string]any) string {
	if len(tmpl) < 8 || len(tmpl) > 2000 {
		return "must be an http(s) URL of at most 2000 characters"
	}
	u, err := url.Parse(placeholderRe.ReplaceAllString(tmpl, "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http:// or https:// URL, e.g. https://api.example.com/orders/{order_id}"
	}
	if u.User != nil {
		return "must not carry credentials; declare a header instead"
	}
	if u.Fragment != "" {
		return "must not have a #fragment"
	}
	rest := tmpl[strings.Index(tmpl, "://")+3:]
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	if strings.ContainsAny(host, "{}") {
		return "placeholders may only be used in the path and query, not the host"
	}
	props, _ := schema["properties"].(map[string]any)
	for _, m := range placeholderRe.FindAllStringSubmatch(tmpl, -1) {
		if schema != nil {
			if _, ok := props[m[1]]; !ok {
				return fmt.Sprintf("placeholder {%s} is not a property of the parameters schema", m[1])
			}
		}
	}
	return ""
}

// Tool builds the function the model sees for a declared tool. headers are
// the opened header values.
func Tool(h store.HTTPTool, headers map[string]string, c *Client) (*tools.Tool, error) {
	t := &tools.Tool{
		Name: h.Name, Title: h.Name, Description: h.Description, Parameters: h.Parameters,
		Timeout: h.Timeout, SideEffects: h.SideEffects,
		Run: func(ctx context.Context, inv tools.Invocation, args json.RawMessage) (tools.Result, error) {
			return run(ctx, c, h, headers, inv, args)
		},
	}
	if err := t.Compile(); err != nil {
		return nil, err
	}
	return t, nil
}

func run(ctx context.Context, c *Client, h store.HTTPTool, headers map[string]string, inv tools.Invocation, raw json.RawMessage) (tools.Result, error) {
	var args map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&args); err != nil {
		return tools.Result{}, &tools.ArgumentError{Tool: h.Name, Reason: "must be a JSON object"}
	}
	target, rest, err := expand(h.URLTemplate, args)
	if err != nil {
		return tools.Result{}, &tools.ArgumentError{Tool: h.Name, Reason: err.Error()}
	}
	var body []byte
	if len(rest) > 0 {
		if h.Method == http.MethodGet || h.Method == http.MethodDelete {
			u, _ := url.Parse(target)
			q := u.Query()
			for _, k := range sortedKeys(rest) {
				q.Set(k, scalar(rest[k]))
			}
			u.RawQuery = q.Encode()
			target = u.String()
		} else if body, err = json.Marshal(rest); err != nil {
			return tools.Result{}, fmt.Errorf("httptool: %s: encode body: %w", h.Name, err)
		}
	} else if h.Method != http.MethodGet && h.Method != http.MethodDelete {
		body = []byte(`{}`)
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultToolTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.Method, target, bytes.NewReader(body))
	if err != nil {
		return tools.Result{}, fmt.Errorf("httptool: %s: %w", h.Name, err)
	}
	if body == nil {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.5")
	req.Header.Set("User-Agent", "Konstruct-Tool/1")
	if inv.IdempotencyKey != "" {
		// The remote can dedupe a call that was in flight when a worker died.
		req.Header.Set("Idempotency-Key", inv.IdempotencyKey)
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return tools.Result{}, fmt.Errorf("httptool: %s: %w", h.Name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d\n", resp.Status)
	b.Write(resp.Body)
	if resp.Truncated {
		fmt.Fprintf(&b, "\n[response cut at %d bytes]", len(resp.Body))
	}
	return tools.Result{Content: b.String(), Data: map[string]any{"status": resp.Status, "bytes": len(resp.Body), "truncated": resp.Truncated}}, nil
}

// expand fills the template's placeholders from args (path-escaped in the
// path, query-escaped in the query) and returns the arguments it did not use.
func expand(tmpl string, args map[string]any) (string, map[string]any, error) {
	used := map[string]bool{}
	q := strings.IndexByte(tmpl, '?')
	var missing string
	var b strings.Builder
	last := 0
	for _, loc := range placeholderRe.FindAllStringSubmatchIndex(tmpl, -1) {
		b.WriteString(tmpl[last:loc[0]])
		name := tmpl[loc[2]:loc[3]]
		v, ok := args[name]
		if !ok || v == nil {
			missing = name
			break
		}
		used[name] = true
		s := scalar(v)
		if q >= 0 && loc[0] > q {
			b.WriteString(url.QueryEscape(s))
		} else {
			b.WriteString(url.PathEscape(s))
		}
		last = loc[1]
	}
	if missing != "" {
		return "", nil, fmt.Errorf("need %q (it is part of the URL)", missing)
	}
	b.WriteString(tmpl[last:])
	out := b.String()
	rest := map[string]any{}
	for k, v := range args {
		if !used[k] {
			rest[k] = v
		}
	}
	return out, rest, nil
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
