package agents

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

func TestValidateNormalisesAndAccepts(t *testing.T) {
	in := Input{Name: "  Ada  ", Role: "Support lead", Models: []string{" openai/gpt-4o-mini ", "", "anthropic/claude-sonnet-4-5"},
		Tools: []string{"current_time", "current_time"}, Escalation: store.Escalation{Keywords: []string{"human"}, MaxFailedTurns: 2}}
	require.NoError(t, Validate(&in, []string{"current_time"}))
	require.Equal(t, "Ada", in.Name)
	require.Equal(t, []string{"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"}, in.Models)
	require.Equal(t, []string{"current_time"}, in.Tools)
	require.Equal(t, store.AgentActive, in.Status)
}

func TestValidateReportsEveryField(t *testing.T) {
	in := Input{
		Name:       "",
		Role:       strings.Repeat("r", MaxRole+1),
		Models:     []string{"gpt-4o"},
		Tools:      []string{"rm_rf"},
		Escalation: store.Escalation{MaxFailedTurns: 500, NotifyChannel: "#general"},
		Status:     "paused",
	}
	err := Validate(&in, []string{"current_time"})
	var f apperr.Fields
	require.True(t, errors.As(err, &f))
	require.Equal(t, "is required", f.Message("name"))
	require.Contains(t, f.Message("role"), "at most 200 characters")
	require.Contains(t, f.Message("models"), "want provider/model")
	require.Contains(t, f.Message("tools"), `unknown tool "rm_rf"`)
	require.Contains(t, f.Message("escalation"), "max_failed_turns")
	require.Contains(t, f.Message("escalation"), "notify_channel", "every schema violation is reported, not the first the validator met")
	require.Equal(t, "must be active or inactive", f.Message("status"))
	require.Equal(t, "name", apperr.From(err).Field, "the API reports the first field")
}

func TestParseEscalation(t *testing.T) {
	e, err := ParseEscalation([]byte(`{"keywords":["agent","human"],"handoff_message":"A colleague will reply.","notify_channel":"C0123"}`))
	require.NoError(t, err)
	require.Equal(t, []string{"agent", "human"}, e.Keywords)

	for raw, want := range map[string]string{
		`{"keywords":"human"}`:     "keywords",
		`{"surprise":true}`:        "additional properties",
		`[1]`:                      "object",
		`{"max_failed_turns":-1}`:  "max_failed_turns",
		`{"keywords":["a","a"]}`:   "keywords",
		`{"notify_channel":"bad"}`: "notify_channel",
		`{`:                        "JSON object",
	} {
		_, err := ParseEscalation([]byte(raw))
		require.Error(t, err, raw)
		require.Contains(t, strings.ToLower(apperr.From(err).Message), strings.ToLower(want), raw)
	}
	e, err = ParseEscalation(nil)
	require.NoError(t, err)
	require.Empty(t, e.Keywords)

	// The switches added with escalation itself; documents without them stay valid.
	e, err = ParseEscalation([]byte(`{"enabled":true,"user_request":false,"on_error":true,"cooldown_minutes":30}`))
	require.NoError(t, err)
	require.True(t, *e.Enabled)
	require.False(t, *e.UserRequest)
	require.Equal(t, 30, *e.CooldownMinutes)
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"enabled":true,"user_request":false,"on_error":true,"cooldown_minutes":30}`, string(raw))
	for doc, want := range map[string]string{
		`{"cooldown_minutes":2000}`: "cooldown_minutes",
		`{"cooldown_minutes":2.0}`:  "cooldown_minutes: must be written as a whole number",
		`{"enabled":"yes"}`:         "enabled",
	} {
		_, err := ParseEscalation([]byte(doc))
		require.Error(t, err, doc)
		require.Contains(t, apperr.From(err).Message, want, doc)
	}
}

func TestSystemPrompt(t *testing.T) {
	a := store.Agent{Name: "Ada", Role: "customer support lead at Acme", Persona: "Warm and precise.", SystemPrompt: "Answer billing questions."}
	p := SystemPrompt(a, store.ChannelSlack)
	require.True(t, strings.HasPrefix(p, "You are Ada, customer support lead at Acme."))
	require.Contains(t, p, "Persona: Warm and precise.")
	require.Contains(t, p, "Answer billing questions.")
	require.Contains(t, p, "Slack mrkdwn")
	require.NotContains(t, SystemPrompt(a, ""), "Slack")
}

// On WhatsApp the agent is scoped to its declared business function (Meta's
// policy): the prompt's second tier says so and tells it to decline the rest.
// Elsewhere the function adds nothing.
func TestSystemPromptWhatsAppScope(t *testing.T) {
	a := store.Agent{Name: "Ada", Role: "support at Acme", SystemPrompt: "Answer billing questions.",
		BusinessFunction: "Order tracking and returns for Acme's web shop"}
	p := SystemPrompt(a, store.ChannelWhatsApp)
	require.Contains(t, p, "You are chatting on WhatsApp")
	require.Contains(t, p, "Scope on WhatsApp: you act only for this business function: Order tracking and returns for Acme's web shop")
	require.Contains(t, p, "politely decline")
	require.Less(t, strings.Index(p, "Answer billing questions."), strings.Index(p, "Scope on WhatsApp"), "the scope comes after the operator's prompt")
	require.NotContains(t, SystemPrompt(a, store.ChannelSlack), "Order tracking and returns")

	a.BusinessFunction = ""
	require.Contains(t, SystemPrompt(a, store.ChannelWhatsApp), "questions about this business's own products and services")
}

func TestValidateBusinessFunction(t *testing.T) {
	in := Input{Name: "Ada", BusinessFunction: "  Returns desk  "}
	require.NoError(t, Validate(&in, nil))
	require.Equal(t, "Returns desk", in.BusinessFunction)
	in.BusinessFunction = strings.Repeat("x", MaxBusinessFunction+1)
	err := Validate(&in, nil)
	require.Error(t, err)
	require.Equal(t, "business_function", apperr.From(err).Field)
}
