package v1_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

// FuzzDecodeAgentRequest sends arbitrary bodies to POST .../agents through the
// real handler, database included: decoding and validation must answer 201 or
// a 4xx in the documented shape, never a 5xx (a value validation lets through
// but Postgres refuses would show up here), and a created agent must read back
// as the spec describes. `make fuzz` runs it for FUZZTIME.
func FuzzDecodeAgentRequest(f *testing.F) {
	seeds := []string{
		`{"name":"Ada"}`,
		`{"name":"Ada","role":"r","persona":"p","system_prompt":"s","models":["openai/gpt-4o-mini","anthropic/claude-sonnet-4-5"],"tools":["current_time"],"escalation":{"keywords":["human"],"max_failed_turns":2,"handoff_message":"hi","notify_channel":"C0123"},"status":"active"}`,
		`{"name":"Ada","escalation":null,"models":null,"tools":null,"status":null}`,
		`{"name":"A\u0000"}`,
		`{"name":"Ada","role":"\u0000"}`,
		`{"name":"Ada","models":["openai/\u0000"]}`,
		`{"name":"Ada","models":["ollama/` + strings.Repeat("x", 500) + `"]}`,
		`{"name":"Ada","tools":["\u0000"]}`,
		`{"name":"Ada","escalation":{"keywords":["\u0000"]}}`,
		`{"name":"Ada","escalation":{"handoff_message":"\u0000"}}`,
		`{"name":"Ada","escalation":{"max_failed_turns":1.0}}`,
		`{"name":"Ada","escalation":{"max_failed_turns":1e1}}`,
		`{"name":"Ada","escalation":{"max_failed_turns":99999999999999999999}}`,
		`{"name":"Ada","escalation":"x"}`,
		`{"name":"Ada","escalation":{"keywords":[]}}`,
		`{"name":"\ud800"}`,
		`{"name":"Ada","persona":"\udfff\ud800"}`,
		`{"name":"` + "\xff\xfe" + `"}`,
		`{"name":"Ada","status":""}`,
		`{"name":"Ada","models":["openai/a","openai/a "]}`,
		`{"name":"Ada","models":[" "," "]}`,
		`{"name":1}`,
		`{"name":"Ada","extra":1}`,
		`[]`, `null`, `""`, `{}`, `{`, ``, `{"name":"Ada"}{}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "Ada", "openai/gpt-4o-mini", "current_time", "human", "A colleague will reply.", 2)
	}
	// Structured seeds: the strings go into a well-formed body, where the
	// fuzzer reaches validation and the database much faster.
	for _, s := range []string{"", " ", "\x00", "a\x00b", "\xff", "\u2028", strings.Repeat("é", 101), "openai/", "/x", "ollama/llama3.2"} {
		f.Add([]byte(`{}`), s, s, s, s, s, -1)
	}
	s := apitest.Start(f, apitest.Options{})
	// The handler logs every refusal through the default logger; fuzzing
	// makes millions.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	f.Cleanup(func() { slog.SetDefault(prev) })
	ten := s.CreateTenant(f, "Fuzz")
	u := s.NewUser(f, ten.ID, store.RoleCustomerAdmin)
	path := agentsPath(ten.ID)
	check := checkFuzzAnswer(s, ten.ID, u.Token)

	f.Fuzz(func(t *testing.T, body []byte, name, model, tool, keyword, handoff string, turns int) {
		check(t, s.Serve(t, http.MethodPost, path, u.Token, body)) // Serve fails on any 5xx or an answer off the spec
		check(t, s.Serve(t, http.MethodPost, path, u.Token, map[string]any{
			"name": name, "role": keyword, "persona": handoff, "system_prompt": name + handoff,
			"models": []string{model, "anthropic/" + model}, "tools": []string{tool},
			"escalation": map[string]any{"keywords": []string{keyword}, "max_failed_turns": turns, "handoff_message": handoff},
		}))
	})
}

func checkFuzzAnswer(s *apitest.Server, tenantID uuid.UUID, token string) func(t *testing.T, r *apitest.Response) {
	return func(t *testing.T, r *apitest.Response) {
		switch {
		case r.Status == http.StatusCreated:
			var ag agentJSON
			if err := json.Unmarshal(r.Body, &ag); err != nil {
				t.Fatalf("201 with a body that is not an agent: %v", err)
			}
			got := s.Serve(t, http.MethodGet, agentPath(tenantID, ag.ID), token, nil)
			if got.Status != http.StatusOK {
				t.Fatalf("created agent %s reads back as %d", ag.ID, got.Status)
			}
			s.Serve(t, http.MethodDelete, agentPath(tenantID, ag.ID), token, nil)
		case r.Status >= 400 && r.Status < 500:
			r.Err(t)
		default:
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
}
