package portal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/audit"
	"github.com/konstruct/konstruct/internal/store"
)

type activityEvent struct {
	store.AuditEvent
	Who     string
	What    string
	Details string // Data as indented JSON, for the expandable row; "" when empty
}

// activityTypeOption is one entry of the type filter.
type activityTypeOption struct {
	Value, Label string
}

// activityTypes are the families of events an operator filters by. A value
// is what the audit API's type parameter takes.
var activityTypes = []activityTypeOption{
	{"llm.", "Model calls"},
	{"embedding.", "Embedding calls"},
	{"tool.call", "Tool calls"},
	{"knowledge.", "Knowledge base"},
	{"memory.", "Memory"},
	{"escalation.", "Escalations"},
	{"agent.", "Agent changes"},
	{"channel.", "Channels"},
	{"user.,invitation.", "Team"},
	{"auth.", "Sign-ins and tokens"},
	{"tenant.", "Organisation"},
}

type activityData struct {
	Events []activityEvent
	Agents []store.Agent
	Types  []activityTypeOption
	// The filters as the form shows them.
	From, To, Type, AgentID, ConversationID string
	Filtered                                bool
	Paged                                   bool   // showing a page after the first
	NextURL                                 string // the next (older) page, "" on the last
	FirstURL                                string // the newest page with the same filters
	ExportURL                               string // the same filters as a CSV download
}

// activityDate turns a date from the form's date input into the audit API's
// RFC 3339; "to" covers its whole day. Anything else passes through for
// audit.ParseQuery to judge.
func activityDate(s string, endOfDay bool) string {
	d, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return s
	}
	if endOfDay {
		d = d.AddDate(0, 0, 1)
	}
	return d.Format(time.RFC3339)
}

// activity shows the tenant's audit trail, newest first, filtered and paged
// like GET /api/v1/tenants/{id}/audit; ?format=csv downloads the selection.
func (p *Portal) activity(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	raw := c.Request.URL.Query()
	d := activityData{Types: activityTypes, From: raw.Get("from"), To: raw.Get("to"), Type: raw.Get("type"),
		AgentID: raw.Get("agent_id"), ConversationID: raw.Get("conversation_id"), Paged: raw.Get("cursor") != ""}
	d.Filtered = d.From != "" || d.To != "" || d.Type != "" || d.AgentID != "" || d.ConversationID != ""

	// The links keep the filters as the form sent them.
	base := url.Values{}
	for _, k := range []string{"from", "to", "type", "agent_id", "conversation_id"} {
		if v := raw.Get(k); v != "" {
			base.Set(k, v)
		}
	}
	link := func(extra ...string) string {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		if len(v) == 0 {
			return "/t/" + tenant.ID.String() + "/activity"
		}
		return "/t/" + tenant.ID.String() + "/activity?" + v.Encode()
	}
	d.FirstURL, d.ExportURL = link(), link("format", audit.FormatCSV)

	params := url.Values{}
	for k, vs := range raw {
		params[k] = vs
	}
	if v := raw.Get("from"); v != "" {
		params.Set("from", activityDate(v, false))
	}
	if v := raw.Get("to"); v != "" {
		params.Set("to", activityDate(v, true))
	}
	q, err := audit.ParseQuery(params)
	if err != nil {
		// A hand-edited address: show the form with the problem, and nothing else.
		p.loadActivityAgents(c, tenant.ID, &d)
		msg := apperr.From(err).Message
		p.render(c, http.StatusBadRequest, "activity", &Page{Title: "Activity", Section: "activity", Tenant: tenant, Data: &d,
			Form: &Form{Message: "That filter did not work: " + msg}})
		return
	}

	if q.Format == audit.FormatCSV {
		begun := false
		err := audit.ExportCSV(ctx, p.d.Store, tenant.ID, q.Filter, c.Writer, func() {
			begun = true
			c.Header("Content-Type", "text/csv; charset=utf-8")
			c.Header("Content-Disposition", `attachment; filename="activity-`+tenant.ID.String()+`.csv"`)
			c.Header("Cache-Control", "no-store")
			c.Status(http.StatusOK)
		})
		if err != nil && begun {
			p.d.Logger.ErrorContext(ctx, "activity export cut short", "tenant_id", tenant.ID, "err", err)
			panic(http.ErrAbortHandler) // the browser reports a failed download, not a short file
		}
		if err != nil {
			p.fail(c, err)
		}
		return
	}

	events, next, err := audit.List(ctx, p.d.Store, tenant.ID, q.Filter)
	if err != nil {
		p.fail(c, err)
		return
	}
	if next != "" {
		d.NextURL = link("cursor", next)
	}
	var users []store.User
	err = p.d.Store.WithTenant(ctx, tenant.ID, func(tx *store.Tx) error {
		var err error
		if users, err = tx.ListUsers(ctx); err != nil {
			return err
		}
		d.Agents, err = tx.ListAgents(ctx)
		return err
	})
	if err != nil {
		p.fail(c, err)
		return
	}
	names := map[string]string{}
	for _, u := range users {
		names["user:"+u.ID.String()] = displayName(u)
	}
	for _, a := range d.Agents {
		names["agent:"+a.ID.String()] = a.Name
	}
	for _, e := range events {
		d.Events = append(d.Events, activityEvent{AuditEvent: e, Who: p.who(c, names, e.Actor), What: activityWhat(e),
			Details: details(e.Data)})
	}
	p.render(c, http.StatusOK, "activity", &Page{Title: "Activity", Section: "activity", Tenant: tenant, Data: &d})
}

func (p *Portal) loadActivityAgents(c *gin.Context, tenantID uuid.UUID, d *activityData) {
	ctx := c.Request.Context()
	err := p.d.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		d.Agents, err = tx.ListAgents(ctx)
		return err
	})
	if err != nil {
		p.d.Logger.WarnContext(ctx, "activity: list agents for the filter", "err", err)
	}
}

// who names an event's actor for people.
func (p *Portal) who(c *gin.Context, names map[string]string, actor string) string {
	if n, ok := names[actor]; ok {
		return n
	}
	switch {
	case strings.HasPrefix(actor, "user:"):
		if id, err := uuid.Parse(strings.TrimPrefix(actor, "user:")); err == nil && id == viewerOf(c).Principal.UserID {
			return displayName(viewerOf(c).User)
		}
		return "Konstruct staff or a removed user"
	case strings.HasPrefix(actor, "agent:"):
		return "A deleted agent"
	case actor == "system":
		return "Konstruct"
	}
	return actor
}

func details(data map[string]any) string {
	if len(data) == 0 {
		return ""
	}
	// The template escapes for HTML; JSON's own \u003c escapes would only
	// make the payload harder to read.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(data); err != nil {
		return fmt.Sprint(data)
	}
	return strings.TrimSpace(b.String())
}

func number(m map[string]any, k string) int64 {
	switch v := m[k].(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}

// activityWhat puts an event into words: the agents' own work here, the
// rest as the Activity page always did.
func activityWhat(e store.AuditEvent) string {
	d := e.Data
	// "provider" and "model", or a "model" already named "provider/model".
	model := firstOf(str(d, "model"), e.TargetID)
	if p := str(d, "provider"); p != "" && !strings.HasPrefix(model, p+"/") {
		model = p + "/" + model
	}
	switch e.Action {
	case store.AuditLLMCall:
		attempts, _ := d["attempts"].([]any)
		if str(d, "outcome") == "failed" {
			return "could not get an answer from its models (" + plural(len(attempts), "attempt", "attempts") + ")"
		}
		s := fmt.Sprintf("called %s: %s in, %s out, %s, %s ms", model, num(number(d, "input_tokens")),
			num(number(d, "output_tokens")), usd(number(d, "cost_micro_usd")), num(number(d, "latency_ms")))
		if n := number(d, "fallbacks"); n > 0 {
			s += " after " + plural(int(n), "fallback", "fallbacks")
		}
		return s
	case store.AuditEmbeddingCall:
		if str(d, "outcome") == "failed" {
			return "could not embed text (" + firstOf(str(d, "error_kind"), "failed") + ")"
		}
		return "embedded " + plural(int(number(d, "inputs")), "text", "texts") + " with " + model
	case store.AuditToolCall:
		s := "used the tool " + firstOf(str(d, "tool"), e.TargetID)
		if o := str(d, "outcome"); o != "" {
			s += " (" + o + ", " + num(number(d, "duration_ms")) + " ms)"
		}
		return s
	case store.AuditMemoryForget:
		return "forgot what it remembered about " + firstOf(str(d, "user_ref"), e.TargetID, "a user")
	case store.AuditKnowledgeCreate, store.AuditKnowledgeReplace, store.AuditKnowledgeDelete, store.AuditKnowledgeRetry:
		verb := map[string]string{store.AuditKnowledgeCreate: "added", store.AuditKnowledgeReplace: "replaced",
			store.AuditKnowledgeDelete: "deleted", store.AuditKnowledgeRetry: "retried"}[e.Action]
		return verb + " the knowledge document " + firstOf(str(d, "title"), str(d, "name"), str(d, "filename"), e.TargetID)
	}
	if strings.HasPrefix(e.Action, store.AuditEscalationPrefix) {
		return describeEscalation(e)
	}
	return describe(e)
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// describeEscalation puts a handoff step into words.
func describeEscalation(e store.AuditEvent) string {
	d := e.Data
	switch e.Action {
	case store.AuditEscalationStarted:
		return "handed the conversation to a person (" + strings.ReplaceAll(str(d, "trigger"), "_", " ") + "): " + str(d, "reason")
	case store.AuditEscalationNotified:
		return "posted the handoff in Slack channel " + str(d, "slack_channel_id")
	case store.AuditEscalationNotifyFailed:
		return "could not post the handoff in Slack: " + str(d, "problem")
	case store.AuditEscalationPaged:
		return "paged the support team again: nobody had answered for " + num(number(d, "waited_seconds")) + " s"
	case store.AuditEscalationUserMessage:
		return "relayed the user's message to the support team"
	case store.AuditEscalationStaffMessage:
		return firstOf(str(d, "author"), "a staff member") + " replied to the user (" + str(d, "source") + ")"
	case store.AuditEscalationClaimed:
		return firstOf(str(d, "author"), "a staff member") + " took the conversation"
	case store.AuditEscalationResolved:
		return firstOf(str(d, "by"), "a staff member") + " resolved the escalation"
	case store.AuditEscalationHandedBack:
		if str(d, "reason") == "sla" {
			return "handed the conversation back to the agent: nobody answered in time"
		}
		return "handed the conversation back to the agent"
	}
	return e.Action
}
