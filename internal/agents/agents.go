// Package agents holds the rules for designing an agent, shared by the REST
// API and the portal's Agent Designer: field validation, escalation rules
// checked against a JSON schema, and the system prompt the model receives.
package agents

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

// Field limits; the database checks the same bounds.
const (
	MaxName         = 100
	MaxRole         = 200
	MaxPersona      = 4000
	MaxSystemPrompt = 20000
	MaxModels       = 8
	MaxModelName    = 200 // one provider/model name
	// MaxBusinessFunction bounds the business function an agent declares.
	MaxBusinessFunction = 2000
)

//go:embed escalation.schema.json
var escalationSchemaJSON []byte

var escalationSchema = func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(escalationSchemaJSON))
	if err != nil {
		panic(fmt.Sprintf("agents: escalation schema: %v", err))
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("escalation.schema.json", doc); err != nil {
		panic(fmt.Sprintf("agents: escalation schema: %v", err))
	}
	return c.MustCompile("escalation.schema.json")
}()

// EscalationSchema returns the JSON schema escalation rules must satisfy.
func EscalationSchema() json.RawMessage { return escalationSchemaJSON }

// ParseEscalation validates raw escalation rules against the schema and
// decodes them. An empty input means no rules.
func ParseEscalation(raw []byte) (store.Escalation, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return store.Escalation{}, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return store.Escalation{}, apperr.Invalid("escalation", "must be a JSON object")
	}
	if err := escalationSchema.Validate(doc); err != nil {
		return store.Escalation{}, apperr.Invalid("escalation", schemaMessage(err))
	}
	var e store.Escalation
	if err := json.Unmarshal(raw, &e); err != nil {
		// The schema passed, so this is an integer written as 2.0 or 2e0.
		field := "max_failed_turns"
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			field = typeErr.Field
		}
		return store.Escalation{}, apperr.Invalid("escalation", field+": must be written as a whole number, such as 2").Wrap(err)
	}
	// Postgres jsonb cannot hold \u0000; refuse it here rather than fail there.
	for _, k := range e.Keywords {
		if strings.ContainsRune(k, 0) {
			return store.Escalation{}, apperr.Invalid("escalation", "keywords: contains invalid characters")
		}
	}
	if strings.ContainsRune(e.HandoffMessage, 0) {
		return store.Escalation{}, apperr.Invalid("escalation", "handoff_message: contains invalid characters")
	}
	return e, nil
}

var englishPrinter = message.NewPrinter(language.English)

// schemaMessage turns a validation error into readable sentences naming the
// property, e.g. "max_failed_turns: maximum: got 500, want 100", one per
// violation, sorted by property (the validator's order follows a map, so it
// varies from run to run) and joined with "; ".
func schemaMessage(err error) string {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return err.Error()
	}
	var msgs []string
	var walk func(*jsonschema.ValidationError)
	walk = func(ve *jsonschema.ValidationError) {
		if len(ve.Causes) == 0 {
			msg := ve.ErrorKind.LocalizedString(englishPrinter)
			if loc := strings.Join(ve.InstanceLocation, "."); loc != "" {
				msg = loc + ": " + msg
			}
			msgs = append(msgs, msg)
		}
		for _, c := range ve.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.Sort(msgs)
	return strings.Join(slices.Compact(msgs), "; ")
}

// Input is what a designer submits for an agent.
type Input struct {
	Name         string
	Role         string
	Persona      string
	SystemPrompt string
	Models       []string
	Tools        []string
	Escalation   store.Escalation
	Status       string
	KBTopK       int // chunks kb_search returns; 0: store.DefaultKBTopK
	// BusinessFunction is the one business function the agent serves (e.g.
	// "Order tracking, returns and delivery questions for Acme's web shop"):
	// required to answer on WhatsApp, whose policy forbids general-purpose
	// assistants; there it becomes a second tier of the system prompt.
	BusinessFunction string
}

// MaxKBTopK bounds an agent's kb_top_k (the database checks the same).
const MaxKBTopK = 20

// Validate normalises in and reports every invalid field. knownTools lists
// the tools an agent may select.
func Validate(in *Input, knownTools []string) error {
	var errs apperr.Fields
	in.Name = strings.TrimSpace(in.Name)
	in.Role = strings.TrimSpace(in.Role)
	in.Persona = strings.TrimSpace(in.Persona)
	in.SystemPrompt = strings.TrimSpace(in.SystemPrompt)
	in.BusinessFunction = strings.TrimSpace(in.BusinessFunction)
	text := func(field, value string, max int, required bool) {
		switch n := utf8.RuneCountInString(value); {
		case required && n == 0:
			errs.Add(field, "is required")
		case n > max:
			errs.Add(field, fmt.Sprintf("must be at most %d characters (got %d)", max, n))
		case !utf8.ValidString(value) || strings.ContainsRune(value, 0):
			errs.Add(field, "contains invalid characters")
		}
	}
	text("name", in.Name, MaxName, true)
	text("role", in.Role, MaxRole, false)
	text("persona", in.Persona, MaxPersona, false)
	text("system_prompt", in.SystemPrompt, MaxSystemPrompt, false)
	text("business_function", in.BusinessFunction, MaxBusinessFunction, false)

	models := make([]string, 0, len(in.Models))
	for _, m := range in.Models {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if utf8.RuneCountInString(m) > MaxModelName {
			errs.Add("models", fmt.Sprintf("a model name must be at most %d characters", MaxModelName))
			break
		}
		if strings.ContainsRune(m, 0) {
			errs.Add("models", "a model name contains invalid characters")
			break
		}
		if _, _, err := llm.ParseModel(m); err != nil {
			errs.Add("models", strings.TrimPrefix(err.Error(), "llm: "))
			break
		}
		if slices.Contains(models, m) {
			errs.Add("models", fmt.Sprintf("%q appears twice in the chain", m))
			break
		}
		models = append(models, m)
	}
	if len(models) > MaxModels {
		errs.Add("models", fmt.Sprintf("at most %d models in a chain", MaxModels))
	}
	in.Models = models

	tools := make([]string, 0, len(in.Tools))
	for _, t := range in.Tools {
		t = strings.TrimSpace(t)
		if t == "" || slices.Contains(tools, t) {
			continue
		}
		if !slices.Contains(knownTools, t) {
			errs.Add("tools", fmt.Sprintf("unknown tool %q (available: %s)", t, strings.Join(knownTools, ", ")))
			break
		}
		tools = append(tools, t)
	}
	in.Tools = tools

	raw, _ := json.Marshal(in.Escalation)
	if _, err := ParseEscalation(raw); err != nil {
		errs = append(errs, apperr.From(err))
	}
	// 0 means "not given": the store creates with store.DefaultKBTopK and an
	// update keeps the agent's value, so a form that lacks the field resets nothing.
	if in.KBTopK != 0 && (in.KBTopK < 1 || in.KBTopK > MaxKBTopK) {
		errs.Add("kb_top_k", fmt.Sprintf("must be a whole number from 1 to %d", MaxKBTopK))
	}
	switch in.Status {
	case "":
		in.Status = store.AgentActive
	case store.AgentActive, store.AgentInactive:
	default:
		errs.Add("status", "must be active or inactive")
	}
	return errs.Err()
}

// KBSearchTool is the knowledge-base search tool's name.
const KBSearchTool = "kb_search"

// citeInstruction asks an agent with the knowledge base to search it and cite
// what it used, in the form the transcript and users can trace to a chunk.
const citeInstruction = "You can search this organisation's knowledge base with the kb_search tool. " +
	"Before answering a question about its products, policies or documents, search it, and answer from what it returns. " +
	"Cite each source you used right after the sentence it supports, as [Title §n] exactly as kb_search labels it. " +
	"If the knowledge base has no answer, say so rather than guess."

// Channel hints tell the model how its words will be shown.
var channelHints = map[string]string{
	store.ChannelSlack:    "You are chatting in Slack. Keep replies concise; Slack mrkdwn (*bold*, _italic_, `code`, bullet lists) renders, Markdown headings and tables do not.",
	store.ChannelWhatsApp: "You are chatting on WhatsApp. Keep replies short and plain; *bold* and _italic_ render, links and lists should be simple.",
}

// SystemPrompt is the system prompt the model receives for a on channel.
// The portal's preview and the conversation engine both call it, so what the
// designer sees is what the model gets.
func SystemPrompt(a store.Agent, channel string) string {
	var b strings.Builder
	name := strings.TrimSpace(a.Name)
	if name == "" {
		name = "an assistant"
	}
	b.WriteString("You are ")
	b.WriteString(name)
	if a.Role != "" {
		b.WriteString(", ")
		b.WriteString(a.Role)
	}
	b.WriteString(".")
	if a.Persona != "" {
		b.WriteString("\n\nPersona: ")
		b.WriteString(a.Persona)
	}
	if a.SystemPrompt != "" {
		b.WriteString("\n\n")
		b.WriteString(a.SystemPrompt)
	}
	if slices.Contains(a.Tools, KBSearchTool) {
		b.WriteString("\n\n")
		b.WriteString(citeInstruction)
	}
	if hint := channelHints[channel]; hint != "" {
		b.WriteString("\n\n")
		b.WriteString(hint)
	}
	if channel == store.ChannelWhatsApp {
		b.WriteString("\n\n")
		b.WriteString(whatsAppScope(a))
	}
	return b.String()
}

// whatsAppScope is the second tier of the system prompt on WhatsApp: Meta's
// Business Messaging policy (since 2026-01-15) allows AI on WhatsApp only for
// a business's own function, not as a general-purpose assistant, so the
// agent declines anything outside the function it declared.
func whatsAppScope(a store.Agent) string {
	scope := strings.TrimSpace(a.BusinessFunction)
	if scope == "" {
		scope = "questions about this business's own products and services"
	}
	return "Scope on WhatsApp: you act only for this business function: " + scope + "\n" +
		"WhatsApp's policy allows you to help only with requests that belong to it. If the user asks for anything else " +
		"(general knowledge, writing or coding help, advice unrelated to this business, or chatting for its own sake), " +
		"politely decline in one or two sentences, say what you can help with here, and do not answer the unrelated request, not even in part."
}
