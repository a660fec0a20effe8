package v1_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

type agentJSON struct {
	ID           uuid.UUID       `json:"id"`
	TenantID     uuid.UUID       `json:"tenant_id"`
	Name         string          `json:"name"`
	Role         string          `json:"role"`
	Persona      string          `json:"persona"`
	SystemPrompt string          `json:"system_prompt"`
	Models       []string        `json:"models"`
	Tools        []string        `json:"tools"`
	Escalation   json.RawMessage `json:"escalation"`
	Status       string          `json:"status"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

func agentsPath(tenantID uuid.UUID) string { return tenantPath(tenantID) + "/agents" }
func agentPath(tenantID, agentID uuid.UUID) string {
	return agentsPath(tenantID) + "/" + agentID.String()
}

func TestAgentCreateGetListDelete(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Agents")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)

	body := map[string]any{
		"name":          "  Ada  ",
		"role":          "customer support lead at Acme",
		"persona":       "Warm, precise, never guesses.",
		"system_prompt": "Answer billing questions.",
		"models":        []string{"anthropic/claude-sonnet-4-5", " openai/gpt-4o-mini ", ""},
		"tools":         []string{"current_time", "current_time"},
		"escalation": map[string]any{"keywords": []string{"human", "agent"}, "max_failed_turns": 2,
			"handoff_message": "A colleague will reply.", "notify_channel": "C0123SUPPORT"},
	}
	var ag agentJSON
	s.Do(t, http.MethodPost, agentsPath(ten.ID), u.Token, body).Expect(t, http.StatusCreated).JSON(t, &ag)
	require.NotEqual(t, uuid.Nil, ag.ID)
	require.Equal(t, ten.ID, ag.TenantID)
	require.Equal(t, "Ada", ag.Name)
	require.Equal(t, "customer support lead at Acme", ag.Role)
	require.Equal(t, "Warm, precise, never guesses.", ag.Persona)
	require.Equal(t, "Answer billing questions.", ag.SystemPrompt)
	require.Equal(t, []string{"anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"}, ag.Models, "order kept, blanks dropped, trimmed")
	require.Equal(t, []string{"current_time"}, ag.Tools)
	require.JSONEq(t, `{"keywords":["human","agent"],"max_failed_turns":2,"handoff_message":"A colleague will reply.","notify_channel":"C0123SUPPORT"}`,
		string(ag.Escalation))
	require.Equal(t, "active", ag.Status)

	var got agentJSON
	s.Do(t, http.MethodGet, agentPath(ten.ID, ag.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &got)
	require.Equal(t, ag, got)

	// The minimum is a name; the rest defaults.
	var bare agentJSON
	s.Do(t, http.MethodPost, agentsPath(ten.ID), u.Token, map[string]any{"name": "Bob", "escalation": nil, "status": "inactive"}).
		Expect(t, http.StatusCreated).JSON(t, &bare)
	require.Equal(t, []string{}, bare.Models, "empty chain: the platform default")
	require.Equal(t, []string{}, bare.Tools)
	require.JSONEq(t, `{}`, string(bare.Escalation))
	require.Equal(t, "", bare.Role)
	require.Equal(t, "inactive", bare.Status)
	// Lengths count characters, not bytes.
	s.Do(t, http.MethodPost, agentsPath(ten.ID), u.Token, map[string]any{"name": strings.Repeat("é", 100),
		"persona": strings.Repeat("ü", 4000)}).Expect(t, http.StatusCreated)

	var list struct{ Agents []agentJSON }
	s.Do(t, http.MethodGet, agentsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Agents, 3)
	require.Equal(t, ag.ID, list.Agents[0].ID, "oldest first")

	r := s.Do(t, http.MethodDelete, agentPath(ten.ID, bare.ID), u.Token, nil).Expect(t, http.StatusNoContent)
	require.Empty(t, r.Body)
	s.Do(t, http.MethodGet, agentPath(ten.ID, bare.ID), u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodDelete, agentPath(ten.ID, bare.ID), u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPatch, agentPath(ten.ID, bare.ID), u.Token, map[string]string{"name": "x"}).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodGet, agentsPath(ten.ID)+"/not-a-uuid", u.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")

	// An operator reads agents and changes none.
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	s.Do(t, http.MethodGet, agentPath(ten.ID, ag.ID), op.Token, nil).Expect(t, http.StatusOK)
	s.Do(t, http.MethodPost, agentsPath(ten.ID), op.Token, map[string]string{"name": "x"}).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodPatch, agentPath(ten.ID, ag.ID), op.Token, map[string]string{"name": "x"}).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodDelete, agentPath(ten.ID, ag.ID), op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")

	// A platform admin creating an agent in a tenant that does not exist: 404.
	s.Do(t, http.MethodPost, agentsPath(uuid.New()), s.AdminToken, map[string]string{"name": "Ghost"}).ExpectError(t, http.StatusNotFound, "not_found", "")
}

// Every validation failure is a 422 naming its field.
func TestAgentValidation(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Validation")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	existing := s.CreateAgent(t, u.Token, ten.ID, "Existing")

	valid := func(over map[string]any) map[string]any {
		b := map[string]any{"name": "Ada", "models": []string{"openai/gpt-4o-mini"}}
		for k, v := range over {
			if v == nil {
				delete(b, k)
				continue
			}
			b[k] = v
		}
		return b
	}
	cases := []struct {
		name  string
		body  map[string]any
		field string
		msg   string // part of the message
	}{
		{"no name", valid(map[string]any{"name": nil}), "name", "required"},
		{"empty name", valid(map[string]any{"name": ""}), "name", "required"},
		{"blank name", valid(map[string]any{"name": "   "}), "name", "required"},
		{"long name", valid(map[string]any{"name": strings.Repeat("n", 101)}), "name", "at most 100"},
		{"NUL in name", valid(map[string]any{"name": "A\x00da"}), "name", "invalid characters"},
		{"long role", valid(map[string]any{"role": strings.Repeat("r", 201)}), "role", "at most 200"},
		{"long persona", valid(map[string]any{"persona": strings.Repeat("p", 4001)}), "persona", "at most 4000"},
		{"long system prompt", valid(map[string]any{"system_prompt": strings.Repeat("s", 20001)}), "system_prompt", "at most 20000"},
		{"NUL in system prompt", valid(map[string]any{"system_prompt": "\x00"}), "system_prompt", "invalid characters"},
		{"model without provider", valid(map[string]any{"models": []string{"gpt-4o"}}), "models", "provider/model"},
		{"model without name", valid(map[string]any{"models": []string{"openai/"}}), "models", "provider/model"},
		{"unknown provider", valid(map[string]any{"models": []string{"mistral/large"}}), "models", `unknown provider "mistral"`},
		{"duplicate model", valid(map[string]any{"models": []string{"openai/gpt-4o-mini", "openai/gpt-4o-mini"}}), "models", "twice"},
		{"too many models", valid(map[string]any{"models": []string{"openai/a", "openai/b", "openai/c", "openai/d", "openai/e",
			"openai/f", "openai/g", "openai/h", "openai/i"}}), "models", "at most 8"},
		{"NUL in model", valid(map[string]any{"models": []string{"openai/gpt\x00"}}), "models", "invalid characters"},
		{"long model", valid(map[string]any{"models": []string{"openai/" + strings.Repeat("m", 300)}}), "models", "at most"},
		{"unknown tool", valid(map[string]any{"tools": []string{"rm_rf"}}), "tools", `unknown tool "rm_rf"`},
		{"escalation not an object", valid(map[string]any{"escalation": []int{1}}), "escalation", "object"},
		{"escalation keywords not a list", valid(map[string]any{"escalation": map[string]any{"keywords": "human"}}), "escalation", "keywords"},
		{"escalation unknown rule", valid(map[string]any{"escalation": map[string]any{"surprise": true}}), "escalation", "surprise"},
		{"escalation too many turns", valid(map[string]any{"escalation": map[string]any{"max_failed_turns": 500}}), "escalation", "max_failed_turns"},
		{"escalation negative turns", valid(map[string]any{"escalation": map[string]any{"max_failed_turns": -1}}), "escalation", "max_failed_turns"},
		{"escalation repeated keyword", valid(map[string]any{"escalation": map[string]any{"keywords": []string{"a", "a"}}}), "escalation", "keywords"},
		{"escalation bad channel", valid(map[string]any{"escalation": map[string]any{"notify_channel": "#general"}}), "escalation", "notify_channel"},
		{"escalation long handoff", valid(map[string]any{"escalation": map[string]any{"handoff_message": strings.Repeat("h", 1001)}}), "escalation", "handoff_message"},
		{"escalation NUL keyword", valid(map[string]any{"escalation": map[string]any{"keywords": []string{"hu\x00man"}}}), "escalation", "keywords"},
		{"escalation NUL handoff", valid(map[string]any{"escalation": map[string]any{"handoff_message": "\x00"}}), "escalation", "handoff_message"},
		{"bad status", valid(map[string]any{"status": "paused"}), "status", "active or inactive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := s.Do(t, http.MethodPost, agentsPath(ten.ID), u.Token, c.body).
				ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", c.field)
			require.Contains(t, msg, c.msg)
			// The same value in a PATCH is refused the same way (except a missing name, which PATCH allows).
			if c.name == "no name" {
				return
			}
			patch := map[string]any{}
			for k, v := range c.body {
				if k == c.field {
					patch[k] = v
				}
			}
			s.Do(t, http.MethodPatch, agentPath(ten.ID, existing.ID), u.Token, patch).
				ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", c.field)
		})
	}
	// Wrong JSON types are 400s naming the field.
	for field, raw := range map[string]string{
		"name":       `{"name":5}`,
		"models":     `{"name":"Ada","models":"openai/gpt-4o-mini"}`,
		"tools":      `{"name":"Ada","tools":[1]}`,
		"persona":    `{"name":"Ada","persona":{"a":1}}`,
		"nmae":       `{"nmae":"Ada"}`,
		"escalation": `{"name":"Ada","escalation":{"max_failed_turns":"2"}}`,
	} {
		r := s.Do(t, http.MethodPost, agentsPath(ten.ID), u.Token, raw)
		require.Contains(t, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}, r.Status, raw)
		require.Equal(t, field, r.Err(t).Field, raw)
	}
	var list struct{ Agents []agentJSON }
	s.Do(t, http.MethodGet, agentsPath(ten.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Agents, 1, "no refused request created anything")
	var still agentJSON
	s.Do(t, http.MethodGet, agentPath(ten.ID, existing.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &still)
	require.Equal(t, "Existing", still.Name, "no refused PATCH changed anything")
	require.Equal(t, []string{"openai/gpt-4o-mini"}, still.Models)
}

// PATCH changes only the fields sent.
func TestAgentPatch(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Patch")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	var orig agentJSON
	s.Do(t, http.MethodPost, agentsPath(ten.ID), u.Token, map[string]any{"name": "Ada", "role": "support", "persona": "warm",
		"system_prompt": "be brief", "models": []string{"openai/gpt-4o-mini"}, "tools": []string{"current_time"},
		"escalation": map[string]any{"keywords": []string{"human"}}}).Expect(t, http.StatusCreated).JSON(t, &orig)

	patch := func(body any) agentJSON {
		var out agentJSON
		s.Do(t, http.MethodPatch, agentPath(ten.ID, orig.ID), u.Token, body).Expect(t, http.StatusOK).JSON(t, &out)
		return out
	}
	p := patch(map[string]any{"persona": "cheerful"})
	require.Equal(t, "cheerful", p.Persona)
	require.Equal(t, "Ada", p.Name)
	require.Equal(t, "support", p.Role)
	require.Equal(t, "be brief", p.SystemPrompt)
	require.Equal(t, orig.Models, p.Models)
	require.Equal(t, orig.Tools, p.Tools)
	require.JSONEq(t, string(orig.Escalation), string(p.Escalation))
	require.Equal(t, orig.CreatedAt, p.CreatedAt)
	require.True(t, p.UpdatedAt.After(orig.UpdatedAt))

	p = patch(map[string]any{"models": []string{"anthropic/claude-sonnet-4-5", "ollama/llama3.2"}, "name": nil})
	require.Equal(t, []string{"anthropic/claude-sonnet-4-5", "ollama/llama3.2"}, p.Models)
	require.Equal(t, "Ada", p.Name, "null leaves a field alone")
	p = patch(map[string]any{"status": "inactive", "tools": []string{}})
	require.Equal(t, "inactive", p.Status)
	require.Equal(t, []string{}, p.Tools)
	require.Equal(t, "cheerful", p.Persona)
	p = patch(map[string]any{"escalation": nil})
	require.JSONEq(t, `{}`, string(p.Escalation), "escalation: null clears the rules")
	p = patch(map[string]any{})
	require.Equal(t, "inactive", p.Status, "an empty patch changes nothing")

	var got agentJSON
	s.Do(t, http.MethodGet, agentPath(ten.ID, orig.ID), u.Token, nil).Expect(t, http.StatusOK).JSON(t, &got)
	require.Equal(t, p.Models, got.Models)
}

// An agent a channel routes to cannot be deleted until the channel goes.
func TestAgentDeleteWhileRouted(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Routed")
	u := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, u.Token, ten.ID, "Ada")
	ch := s.ConnectSlack(t, u.Token, ten.ID, ag.ID)
	s.SeedConversation(t, ten.ID, ag.ID, 1)

	msg := s.Do(t, http.MethodDelete, agentPath(ten.ID, ag.ID), u.Token, nil).ExpectError(t, http.StatusConflict, "conflict", "")
	require.Contains(t, msg, "a channel still routes to this agent")
	s.Do(t, http.MethodGet, agentPath(ten.ID, ag.ID), u.Token, nil).Expect(t, http.StatusOK)

	s.Do(t, http.MethodDelete, channelsPath(ten.ID)+"/"+ch.ID.String(), u.Token, nil).Expect(t, http.StatusNoContent)
	s.Do(t, http.MethodDelete, agentPath(ten.ID, ag.ID), u.Token, nil).Expect(t, http.StatusNoContent)
	var convs struct{ Conversations []map[string]any }
	s.Do(t, http.MethodGet, tenantPath(ten.ID)+"/conversations", u.Token, nil).Expect(t, http.StatusOK).JSON(t, &convs)
	require.Empty(t, convs.Conversations, "an agent's conversations go with it")
}

// Another tenant's agent is not found, whichever path it is asked under.
func TestAgentsOfAnotherTenant(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := s.CreateTenant(t, "A")
	b := s.CreateTenant(t, "B")
	ua := s.NewUser(t, a.ID, store.RoleCustomerAdmin)
	ub := s.NewUser(t, b.ID, store.RoleCustomerAdmin)
	agentB := s.CreateAgent(t, ub.Token, b.ID, "Bea")

	for _, token := range []string{ua.Token, s.AdminToken} {
		// B's agent ID under A's path: A's scope has no such agent.
		s.Do(t, http.MethodGet, agentPath(a.ID, agentB.ID), token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodPatch, agentPath(a.ID, agentB.ID), token, map[string]string{"name": "Pwned"}).ExpectError(t, http.StatusNotFound, "not_found", "")
		s.Do(t, http.MethodDelete, agentPath(a.ID, agentB.ID), token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	}
	// Under B's own path, for A's user: 404 as well.
	s.Do(t, http.MethodGet, agentsPath(b.ID), ua.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodGet, agentPath(b.ID, agentB.ID), ua.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPatch, agentPath(b.ID, agentB.ID), ua.Token, map[string]string{"name": "Pwned"}).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodDelete, agentPath(b.ID, agentB.ID), ua.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	s.Do(t, http.MethodPost, agentsPath(b.ID), ua.Token, map[string]string{"name": "Plant"}).ExpectError(t, http.StatusNotFound, "not_found", "")

	var got agentJSON
	s.Do(t, http.MethodGet, agentPath(b.ID, agentB.ID), ub.Token, nil).Expect(t, http.StatusOK).JSON(t, &got)
	require.Equal(t, "Bea", got.Name)
	var list struct{ Agents []agentJSON }
	s.Do(t, http.MethodGet, agentsPath(b.ID), ub.Token, nil).Expect(t, http.StatusOK).JSON(t, &list)
	require.Len(t, list.Agents, 1)
}
