package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

var ginParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// openAPIPath turns gin's /tenants/:tenant_id into /tenants/{tenant_id}.
func openAPIPath(ginPath string) string { return ginParam.ReplaceAllString(ginPath, "{$1}") }

// Every route the full server registers under /api/v1 is in openapi.yaml,
// and every operation in openapi.yaml is a registered route; its security
// matches the route's permission (public or bearer).
func TestOpenAPIRoutesMatchServer(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})

	registered := map[string]authz.Perm{}
	for _, r := range s.HTTP.Registry.Routes() {
		method, path, _ := strings.Cut(r, " ")
		perm, ok := s.HTTP.Registry.Perm(method, path)
		require.True(t, ok, r)
		registered[method+" "+openAPIPath(path)] = perm
	}
	documented := map[string]*apitest.Operation{}
	for _, op := range s.Spec.Operations() {
		documented[op.Method+" "+op.Path] = op
	}

	var missing, stale []string
	for route := range registered {
		_, path, _ := strings.Cut(route, " ")
		if strings.HasPrefix(path, "/api/") && documented[route] == nil {
			missing = append(missing, route)
		}
	}
	for route := range documented {
		if _, ok := registered[route]; !ok {
			stale = append(stale, route)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	require.Empty(t, missing, "routes the server registers that api/openapi.yaml does not describe")
	require.Empty(t, stale, "operations in api/openapi.yaml that the server does not register")

	for _, route := range []string{"GET /healthz", "GET /readyz", "GET /metrics", "POST /webhooks/slack/events"} {
		require.Contains(t, documented, route, "api/openapi.yaml must describe %s", route)
	}
	for route, op := range documented {
		require.Equal(t, registered[route] == authz.Public, op.Public,
			"%s: public in the spec (security: []) exactly when the route needs no sign-in", route)
	}
}

// Each operation is complete: a unique operationId, every path parameter
// declared, and the error answers its kind of route can give documented.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	spec, err := apitest.LoadedSpec()
	require.NoError(t, err)
	ids := map[string]string{}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for _, op := range spec.Operations() {
		name := op.Method + " " + op.Path
		require.NotEmpty(t, op.ID, "%s: operationId", name)
		require.NotContains(t, ids, op.ID, "%s: operationId %q also used by %s", name, op.ID, ids[op.ID])
		ids[op.ID] = name

		declared := declaredPathParams(t, spec, op)
		for _, m := range param.FindAllStringSubmatch(op.Path, -1) {
			require.Contains(t, declared, m[1], "%s: path parameter %s is not declared", name, m[1])
		}
		if !strings.HasPrefix(op.Path, "/api/v1/") {
			continue
		}
		want := []int{500}
		if !op.Public {
			want = append(want, 401, 403)
		}
		if strings.Contains(op.Path, "{") {
			want = append(want, 404)
		}
		if hasBody(spec, op) {
			want = append(want, 400, 413, 415)
		}
		for _, status := range want {
			_, ok := spec.Response(op, status)
			require.True(t, ok, "%s does not document %d", name, status)
		}
	}
}

func declaredPathParams(t *testing.T, spec *apitest.Spec, op *apitest.Operation) []string {
	t.Helper()
	var out []string
	item := spec.Doc["paths"].(map[string]any)[op.Path].(map[string]any)
	opObj := item[strings.ToLower(op.Method)].(map[string]any)
	for _, list := range []any{item["parameters"], opObj["parameters"]} {
		ps, _ := list.([]any)
		for _, p := range ps {
			m := p.(map[string]any)
			if ref, ok := m["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/components/parameters/")
				m = spec.Doc["components"].(map[string]any)["parameters"].(map[string]any)[name].(map[string]any)
			}
			if m["in"] == "path" {
				require.Equal(t, true, m["required"], "%s %s: path parameter %v must be required", op.Method, op.Path, m["name"])
				out = append(out, m["name"].(string))
			}
		}
	}
	return out
}

func hasBody(spec *apitest.Spec, op *apitest.Operation) bool {
	item := spec.Doc["paths"].(map[string]any)[op.Path].(map[string]any)
	_, ok := item[strings.ToLower(op.Method)].(map[string]any)["requestBody"]
	return ok && strings.HasPrefix(op.Path, "/api/")
}

// Every schema compiles, and every example in the spec matches its schema:
// a reader copying an example gets a valid request or a real answer's shape.
func TestOpenAPIExamplesMatchSchemas(t *testing.T) {
	spec, err := apitest.LoadedSpec()
	require.NoError(t, err)
	for name := range spec.Doc["components"].(map[string]any)["schemas"].(map[string]any) {
		_, err := spec.Component(name)
		require.NoError(t, err, "components/schemas/%s", name)
	}
	n := 0
	walkMedia(spec.Doc, "", func(ptr string, media map[string]any) {
		if _, ok := media["schema"]; !ok {
			return
		}
		sch, err := spec.Schema(ptr + "/schema")
		require.NoError(t, err, ptr)
		check := func(where string, v any) {
			n++
			require.NoError(t, sch.Validate(v), "%s: the example does not match its schema", where)
		}
		if ex, ok := media["example"]; ok {
			check(ptr+"/example", ex)
		}
		if exs, ok := media["examples"].(map[string]any); ok {
			for k, ex := range exs {
				check(ptr+"/examples/"+k, ex.(map[string]any)["value"])
			}
		}
	})
	require.Greater(t, n, 20, "the spec should carry examples")
}

// walkMedia calls fn for every media type object (…/content/<type>).
func walkMedia(v any, ptr string, fn func(ptr string, media map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		if content, ok := x["content"].(map[string]any); ok {
			for mt, m := range content {
				if media, ok := m.(map[string]any); ok {
					fn(ptr+"/content/"+strings.ReplaceAll(mt, "/", "~1"), media)
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "content" || k == "example" || k == "examples" {
				continue
			}
			walkMedia(x[k], ptr+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"), fn)
		}
	case []any:
		for i, e := range x {
			walkMedia(e, fmt.Sprintf("%s/%d", ptr, i), fn)
		}
	}
}

// The endpoints outside /api/v1 answer as the spec says: health, readiness,
// metrics, and the Slack webhook's refusals and acknowledgements.
func TestOperationalEndpointsMatchSpec(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"MAX_BODY_BYTES": "4096"}})

	s.Do(t, http.MethodGet, "/healthz", "", nil).Expect(t, http.StatusOK)
	r := s.Do(t, http.MethodGet, "/readyz", "", nil) // 200 or 503 (Temporal may be down here): both documented
	require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, r.Status)
	r = s.Do(t, http.MethodGet, "/metrics", "", nil).Expect(t, http.StatusOK)
	require.Contains(t, string(r.Body), "go_goroutines")

	secret := s.App.Config.SlackSigningSecret
	post := func(body []byte, header http.Header) *apitest.Response {
		req := s.NewRequest(t, http.MethodPost, "/webhooks/slack/events", "", body)
		for k, v := range header {
			req.Header[k] = v
		}
		return s.Send(t, req)
	}
	// Unsigned, wrongly signed and stale requests: 401, nothing parsed.
	body := fakeslack.URLVerification("challenge-123")
	post(body, nil).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	post(body, fakeslack.SignedRequest("wrong-secret", body, time.Now())).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	post(body, fakeslack.SignedRequest(secret, body, time.Now().Add(-10*time.Minute))).ExpectError(t, http.StatusUnauthorized, "unauthorized", "")
	// Signed: the challenge comes back.
	r = post(body, fakeslack.SignedRequest(secret, body, time.Now())).Expect(t, http.StatusOK)
	require.Equal(t, "challenge-123", r.Object(t)["challenge"])
	// Signed but not an Events API payload: 400.
	junk := []byte(`{"type":`)
	post(junk, fakeslack.SignedRequest(secret, junk, time.Now())).ExpectError(t, http.StatusBadRequest, "malformed_event", "")
	// A team nobody connected: acknowledged so Slack stops retrying.
	ev := fakeslack.AppMention("T0NOBODY", "C0X", "U0ALICE", "hello", "1767225600.000100", "", "Ev0NOBODY"+time.Now().Format("150405"))
	r = post(ev, fakeslack.SignedRequest(secret, ev, time.Now())).Expect(t, http.StatusOK)
	require.Equal(t, "1", r.Header.Get("X-Slack-No-Retry"))
	require.Empty(t, r.Body)
	// Oversized: 413.
	big := []byte(`{"type":"event_callback","pad":"` + strings.Repeat("x", 5000) + `"}`)
	post(big, fakeslack.SignedRequest(secret, big, time.Now())).ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large", "")
}

// The contract checker itself: it refuses answers the spec does not allow,
// so a passing REST test means something.
func TestSpecCheckerRefusesDrift(t *testing.T) {
	spec, err := apitest.LoadedSpec()
	require.NoError(t, err)
	js := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	agent := `{"id":"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d","tenant_id":"3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9","name":"Ada",
		"role":"","persona":"","system_prompt":"","models":[],"tools":[],"escalation":{},"status":"active",
		"created_at":"2026-11-01T09:31:00Z","updated_at":"2026-11-01T09:31:00Z"}`
	path := "/api/v1/tenants/3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9/agents/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	require.NoError(t, spec.CheckResponse("GET", path, 200, js, []byte(agent)))

	for name, c := range map[string]struct {
		method, path string
		status       int
		body         string
	}{
		"extra field":           {"GET", path, 200, strings.Replace(agent, `"name":"Ada",`, `"name":"Ada","secret":"x",`, 1)},
		"missing field":         {"GET", path, 200, strings.Replace(agent, `"status":"active",`, ``, 1)},
		"id not a uuid":         {"GET", path, 200, strings.Replace(agent, `"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"`, `"42"`, 1)},
		"bad timestamp":         {"GET", path, 200, strings.Replace(agent, `"2026-11-01T09:31:00Z"`, `"yesterday"`, 1)},
		"undocumented status":   {"GET", path, 418, `{"error":{"code":"teapot","message":"no"}}`},
		"error without code":    {"GET", path, 404, `{"error":{"message":"no"}}`},
		"unknown route not 404": {"GET", "/api/v1/nope", 200, `{}`},
		"body on a 204":         {"DELETE", path, 204, `{}`},
	} {
		require.Error(t, spec.CheckResponse(c.method, c.path, c.status, js, []byte(c.body)), name)
	}
	require.Error(t, spec.CheckResponse("GET", path, 200, http.Header{"Content-Type": {"text/html"}}, []byte(agent)), "content type")
	require.Error(t, spec.CheckResponse("POST", "/api/v1/auth/token", 429, js, []byte(`{"error":{"code":"rate_limited","message":"slow"}}`)),
		"429 without Retry-After")
	require.NoError(t, spec.CheckResponse("PUT", "/api/v1/tenants", 405, js, []byte(`{"error":{"code":"method_not_allowed","message":"no"}}`)))
}
