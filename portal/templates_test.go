package portal

import (
	"bytes"
	"html/template"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/billing"
	"github.com/konstruct/konstruct/internal/config"
	"github.com/konstruct/konstruct/internal/designer"
	"github.com/konstruct/konstruct/internal/invitations"
	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/llmkeys"
	"github.com/konstruct/konstruct/internal/onboarding"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/tools"
)

const evil = `<script>alert(1)</script>'"&`

// samplePages gives every page template data shaped like its handler's, with
// hostile text in every string a person could have typed.
func samplePages(t *testing.T) map[string]any {
	t.Helper()
	now := time.Now()
	tid, aid := uuid.New(), uuid.New()
	agent := store.Agent{ID: aid, TenantID: tid, Name: "Ada " + evil, Role: "support " + evil, Persona: evil, SystemPrompt: evil,
		Models: []string{"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "ollama/llama3.2"}, Tools: []string{"current_time"},
		Escalation: store.Escalation{Keywords: []string{"refund", evil}, MaxFailedTurns: 3, HandoffMessage: evil, NotifyChannel: "C0123ABCD"},
		Status:     store.AgentActive, CreatedAt: now, UpdatedAt: now}
	conv := store.Conversation{ID: uuid.New(), TenantID: tid, AgentID: aid, Channel: store.ChannelSlack, ExternalKey: "T1:C1:" + evil,
		WorkflowID: "conv-" + evil, UserRef: "U123 " + evil, Status: store.ConversationEscalated, Turns: 3, CreatedAt: now, LastActivityAt: now}
	user := store.User{ID: uuid.New(), TenantID: &tid, Email: "ada@example.com", Name: evil, Role: store.RoleCustomerOperator, CreatedAt: now, LastLoginAt: &now}
	by := uuid.New()
	inv := store.Invitation{ID: uuid.New(), TenantID: tid, Email: "new@example.com", Role: store.RoleCustomerAdmin, InvitedBy: &by,
		InviterName: evil, CreatedAt: now, ExpiresAt: now.Add(72 * time.Hour), SentAt: &now}
	expired := inv
	expired.ExpiresAt, expired.SentAt = now.Add(-time.Hour), nil
	summary := store.TenantSummary{Tenant: store.Tenant{ID: tid, Name: "Acme " + evil, Status: store.TenantSuspended, CreatedAt: now},
		Users: 2, Agents: 1, Conversations: 5, LastActivity: &now}
	usage := store.UsageTotals{Calls: 12, InputTokens: 12345, OutputTokens: 678, CostMicroUSD: 1234567}
	ch := store.ChannelConnection{ID: uuid.New(), TenantID: tid, AgentID: aid, Kind: store.ChannelSlack, ExternalID: "T0123", DisplayName: evil, Status: "active", CreatedAt: now}
	wa := store.ChannelConnection{ID: uuid.New(), TenantID: tid, AgentID: aid, Kind: store.ChannelWhatsApp, ExternalID: "106540352242922", DisplayName: evil,
		Status: "active", TemplateName: "we_have_a_reply", TemplateLanguage: "en_US", CreatedAt: now}
	fn := agent
	fn.ID, fn.BusinessFunction = uuid.New(), evil
	missing := []missingSetting{{Name: "KONSTRUCT_WHATSAPP_APP_SECRET", What: evil}}
	due := now.Add(15 * time.Minute)
	handoff := store.Handoff{ID: uuid.New(), TenantID: tid, ConversationID: conv.ID, AgentID: aid, WorkflowID: evil, State: store.EscalationWaiting,
		Trigger: store.TriggerKeyword, Reason: evil, Summary: evil, SummarySource: "transcript", Channel: store.ChannelSlack, UserRef: evil,
		NotifyError: evil, Assignee: evil, Context: store.HandoffContext{Tools: []store.HandoffTool{{Name: evil, Calls: 2, Outcomes: evil}},
			Sources: []store.HandoffSource{{Citation: evil, DocumentID: &aid}, {Citation: evil}}}, CreatedAt: now, FirstResponseDueAt: &due, PageCount: 1}
	p := &Portal{d: Deps{Tools: tools.Builtin(), Config: config.Config{DefaultModels: []string{"openai/gpt-4o-mini"}}}}
	d := p.designer(&agent, agents.Input{Name: agent.Name, Role: agent.Role, Models: agent.Models, Tools: agent.Tools,
		Escalation: agent.Escalation}, store.ChannelWhatsApp)
	return map[string]any{
		"error":       errorPage{Status: 404, Heading: "Page not found", Message: evil, RequestID: "abc"},
		"sign_in":     signInData{Next: "/t/x", Expired: true},
		"sign_up":     nil,
		"sign_out":    nil,
		"accept":      &acceptData{Token: "tok", Pending: invitations.Pending{Invitation: inv, TenantName: evil}},
		"dashboard":   &dashboardData{Agents: 1, ActiveAgents: 1, Conversations: store.ConversationCounts{Active: 1, Escalated: 2}, Usage: usage, Recent: []store.Conversation{conv}, AgentNames: map[string]string{aid.String(): agent.Name}, Steps: []onboardingStep{{Title: evil, Done: true}, {Title: "b", Allowed: true, URL: "/x"}}, StepsDone: 1, SetupURL: "/t/x/onboarding?step=2"},
		"agents/list": agentListData{Agents: []agentRow{{Agent: agent, Channels: 1, Conversations: 2}}},
		"agents/form": d,
		"agents/show": agentShowData{Agent: agent, Chat: &chatView{Agent: agent, ChatID: "abcdefgh" + evil, SendURL: "/x", EventsURL: "/y"}, Channels: []store.ChannelConnection{ch}, Conversations: []store.Conversation{conv}, Prompts: map[string]string{"slack": agents.SystemPrompt(agent, "slack")}},
		"agents/tools": agentToolsData{Agent: agent, Tools: []toolView{
			{AgentTool: designer.AgentTool{Kind: designer.ToolBuiltin, Name: "current_time", Description: evil, Enabled: true}, Schema: `{"type": "object"}`},
			{AgentTool: designer.AgentTool{Kind: designer.ToolHTTP, Name: "get_order", Description: evil, SideEffects: true, Enabled: true,
				HTTP: &store.HTTPTool{ID: uuid.New(), Method: "GET", URLTemplate: "https://x/" + evil}}, Schema: evil, Headers: []string{"X-Api-Key"}}}},
		"conversations/list": &conversationListData{Conversations: []store.Conversation{conv}, AgentNames: map[string]string{aid.String(): agent.Name}, Agents: []store.Agent{agent}, Status: "escalated", AgentID: aid.String()},
		"conversations/show": &transcriptData{Conversation: conv, Agent: &agent, Messages: []store.Message{{Turn: 1, Role: "user", Content: evil, CreatedAt: now}, {Turn: 1, Role: "assistant", Content: evil, Provider: "openai", Model: "gpt", CreatedAt: now}, {Turn: 2, Role: "tool", Content: evil}}, Sources: map[int][]store.Source{1: {{Turn: 1, Rank: 1, ChunkID: &aid, DocumentID: &aid, DocumentTitle: evil, Score: 0.03}, {Turn: 1, Rank: 2, DocumentTitle: evil}}}},
		"knowledge/list":     &knowledgeListData{Documents: []docRow{{Document: store.Document{ID: aid, Title: evil, SourceType: "pdf", Status: store.DocFailed, Error: evil, ChunksTotal: 4, ChunksDone: 2, Version: 2, UpdatedAt: now}, Pct: 50}}, MaxBytes: 1 << 20, Pending: true},
		"knowledge/show":     &knowledgeShowData{Document: docRow{Document: store.Document{ID: aid, Title: evil, Status: store.DocIndexing, Error: evil, WorkflowID: evil}}, Chunks: []store.Chunk{{ID: aid, Heading: evil, Content: evil, Embedded: true}, {ID: aid, Ordinal: 1, Content: evil}}},
		"knowledge/search":   &knowledgeSearchData{Query: evil, TopK: 5, MaxTopK: 20, Result: &knowledge.SearchResult{Model: evil, Warning: evil, Hits: []knowledge.Hit{{ChunkID: aid, DocumentID: aid, DocumentTitle: evil, Heading: evil, Content: evil, Score: 0.03, VectorRank: 1, Similarity: 0.9, Citation: evil}, {ChunkID: aid, Content: evil, TextRank: 2}}}},
		"channels":           &channelListData{Channels: []store.ChannelConnection{ch, wa}, AgentNames: map[string]string{aid.String(): agent.Name}, Agents: []store.Agent{agent}, WhatsAppMissing: missing},
		"whatsapp/setup": &whatsAppSetupData{Onboarding: true, Steps: []stepView{{N: 1, Title: evil, Current: true}, {N: 2}, {N: 3}}, Agents: []store.Agent{agent, fn},
			Qualified: 1, Selected: aid.String(), Connected: []store.ChannelConnection{wa}, AgentNames: map[string]string{aid.String(): evil}, PublicURL: "https://x/" + evil},
		"whatsapp/webhook": &whatsAppWebhookData{Onboarding: true, Steps: []stepView{{N: 1, Title: evil, Current: true, Done: true}}, Channel: wa, AgentName: evil,
			WebhookURL: "https://x/" + evil, VerifyToken: evil, Missing: missing, Status: statusOf(designer.WhatsAppWebhook{Channel: wa, Verified: true,
				Verification: store.WhatsAppVerification{LastAt: now}, Activity: store.WhatsAppActivity{LastMessageAt: &now}, CheckedAt: now}),
			StatusURL: "/s?" + evil, CheckURL: "/c?" + evil, NextURL: "/n?" + evil},
		"team":             &teamData{Members: []store.User{user}, Invitations: []store.Invitation{inv, expired}, Roles: []string{"a"}, Admins: 1, TTLHours: 72},
		"usage":            sampleCosts(tid, aid, agent),
		"billing":          sampleBilling(agent),
		"admin/costs":      &adminCostsData{Query: costQuery{Range: "7d"}, Ranges: costRanges, Label: evil, Tenants: []store.TenantUsage{{TenantID: tid, TenantName: evil, PlanID: "pro", Status: "past_due", UsageTotals: usage}}, Top: usage.CostMicroUSD},
		"escalations/list": &escalationListData{Rows: []escRow{{Handoff: handoff, AgentName: evil, SLA: "overdue", Waiting: 3 * time.Minute}}, Counts: store.HandoffCounts{Waiting: 1}, Filter: "open"},
		"escalations/show": &escalationShowData{Row: escRow{Handoff: handoff, AgentName: evil, SLA: "waiting", Waiting: time.Minute}, Conversation: conv,
			Messages: []store.Message{{ID: uuid.New(), Turn: 1, Role: "user", Content: evil, Author: evil, CreatedAt: now}, {ID: uuid.New(), Turn: 2, Role: "staff", Content: evil, Author: evil, CreatedAt: now}, {Turn: 2, Role: "system", Content: evil}}},
		"settings": &settingsData{Support: &supportData{Settings: store.SupportSettings{SlackTeamID: "T0123", SlackChannelID: "C0SUPPORT", FirstResponse: 15 * time.Minute, HandBack: 2 * time.Hour, Saved: true}, Workspaces: []store.ChannelConnection{ch}}, Providers: []providerView{
			{Provider: "openai", Label: evil, About: evil, KeyField: true, URLField: "optional", URLHint: evil, KeyHint: evil, FormErrors: true,
				Key: &llmkeys.Key{Provider: "openai", Last4: "<b>1", BaseURL: "https://x/" + evil, Version: 3, ModelCount: 12, CheckedAt: now}},
			{Provider: "anthropic", Label: "Anthropic", KeyField: true, Platform: true},
			{Provider: "ollama", Label: "Ollama", URLField: "required"}}},
		"onboarding": &onboardingData{Step: 2, Steps: []stepView{{N: 1, Title: evil, Short: evil, Done: true}, {N: 2, Title: "b", Current: true}, {N: 3}},
			Progress: onboarding.Progress{Agent: &agent, Channels: []store.ChannelConnection{ch}, ChannelDone: true},
			Agent:    &agent, SlackOAuth: true, SlackChannels: []store.ChannelConnection{ch}, AgentNames: map[string]string{aid.String(): evil},
			WhatsAppChannels: []store.ChannelConnection{wa}, WhatsAppMissing: missing,
			Form:    onboarding.AgentForm{Name: evil, Role: evil, Persona: evil, Instructions: evil, Model: evil},
			Preview: evil, PreviewChannel: "slack", Models: []string{evil, "openai/gpt-4o-mini"}, DefaultModels: []string{evil}, OwnKeys: []string{evil}},
		"slack": &slackPageData{Status: 409, Kind: "conflict", Heading: evil, Message: evil, RetryURL: "/slack/install?x=" + evil,
			BackURL: "/t/x", BackLabel: evil, ChannelsURL: "/t/x/channels", Manifest: evil},
		"activity": &activityData{Events: []activityEvent{{AuditEvent: store.AuditEvent{Action: "agent.create", CreatedAt: now}, Who: evil, What: evil},
			{AuditEvent: store.AuditEvent{Action: store.AuditLLMCall, WorkflowID: evil, CreatedAt: now}, Who: evil, What: evil, Details: evil}},
			Agents: []store.Agent{agent}, Types: activityTypes, From: evil, To: evil, Type: evil, AgentID: evil, ConversationID: evil,
			Filtered: true, Paged: true, NextURL: "/next?" + evil, FirstURL: "/first", ExportURL: "/export?" + evil},
		"account":             nil,
		"admin/overview":      &adminOverviewData{Recent: []store.TenantSummary{summary}},
		"admin/tenants":       &adminTenantsData{Tenants: []store.TenantSummary{summary}},
		"admin/delete_tenant": &deleteTenantData{Tenant: summary, Confirm: evil},
		"admin/tenant":        &adminTenantData{Tenant: summary},
		"admin/agents":        &adminAgentsData{Agents: []store.AgentWithTenant{{Agent: agent, TenantName: evil}}},
		"admin/users":         &adminUsersData{Users: []store.UserWithTenant{{User: user, TenantName: evil}}},
	}
}

func sampleCosts(tid, aid uuid.UUID, agent store.Agent) *costsData {
	day := time.Now().UTC().Truncate(24 * time.Hour)
	days := []time.Time{day.AddDate(0, 0, -2), day.AddDate(0, 0, -1), day}
	r := billing.UsageReport{Query: billing.UsageQuery{GroupBy: billing.GroupDay}, Buckets: days, BudgetMicroUSD: 3_000_000,
		Totals: store.UsageTotals{Calls: 3, InputTokens: 3000, OutputTokens: 300, CostMicroUSD: 1_500_000}}
	for i, d := range days {
		r.Series = append(r.Series, store.UsagePoint{Bucket: d, Provider: "openai", Model: evil,
			UsageTotals: store.UsageTotals{Calls: 1, InputTokens: 1000, OutputTokens: 100, CostMicroUSD: int64(i+1) * 200_000}})
		r.Rows = append(r.Rows, store.UsageRow{Day: d, UsageTotals: store.UsageTotals{Calls: 1, InputTokens: 1000, OutputTokens: 100, CostMicroUSD: 500_000}})
	}
	d := &costsData{Query: costQuery{Range: "custom", From: evil, To: evil, AgentID: aid.String()}, Ranges: costRanges, Report: r,
		ByModel: []store.UsageRow{{Provider: "openai", Model: evil, UsageTotals: r.Totals}},
		ByAgent: []store.UsageRow{{AgentID: &aid, AgentName: evil, UsageTotals: r.Totals}, {AgentName: ""}},
		Agents:  []store.Agent{agent}, AgentName: evil, RangeLabel: evil,
		Budgets: budgetMeters([]store.Budget{{ID: tid, LimitMicroUSD: 1000, SpentMicroUSD: 900, HardStop: true}, {AgentID: &aid, AgentName: evil, LimitMicroUSD: 10, SpentMicroUSD: 20}})}
	d.Cost, _ = costChart(r, false)
	d.Tokens = tokenChart(r, false)
	return d
}

func sampleBilling(agent store.Agent) *billingData {
	one, many := 1, 500
	tokens := int64(200_000)
	free := store.Plan{ID: "free", Name: "Free " + evil, MaxAgents: &one, MaxChannels: &one, MessagesPerMonth: &many, PlatformTokensPerMonth: &tokens}
	pro := store.Plan{ID: "pro", Name: "Pro", Paid: true, MonthlyPriceCents: 19900, BYOKeys: true}
	end := time.Now().AddDate(0, 1, 0)
	o := billing.Overview{Account: store.BillingAccount{PlanID: "pro", Status: "past_due", StripeCustomerID: "cus_1", StripeSubscriptionID: "sub_1",
		CurrentPeriodEnd: &end, CancelAtPeriodEnd: true}, Plan: pro, Reason: billing.ReasonGrace, Plans: []store.Plan{free, pro},
		Counts: store.BillingCounts{Agents: 1, Channels: 2, Messages: 450, Tokens: 300_000}, Checkout: true, GraceEnds: &end,
		Banners: []billing.Banner{{Kind: "warning", Message: evil}}}
	d := &billingData{Overview: o, Agents: []store.Agent{agent}, Subscribed: true, StatusText: "Payment due", StatusKind: "warn",
		Budgets: budgetMeters([]store.Budget{{LimitMicroUSD: 5_000_000, SpentMicroUSD: 4_100_000}})}
	for _, p := range o.Plans {
		d.PlanCards = append(d.PlanCards, planCard{Plan: p, Current: p.ID == "pro", Available: true, Features: planFeatures(p)})
	}
	d.Meters = []limitMeter{meter("Agents", 1, i64(&one)), meter("Messages", 450, i64(&many)), meter("Tokens", 300_000, &tokens)}
	return d
}

// Every template parses, and every page renders for every kind of viewer
// with hostile text escaped.
func TestEveryTemplateRenders(t *testing.T) {
	p := &Portal{d: Deps{Tools: tools.Builtin(), Config: config.Config{TemporalUIURL: "http://ui", TemporalNamespace: "default"}}}
	v, err := parseViews(p.funcs())
	require.NoError(t, err)
	samples := samplePages(t)
	require.ElementsMatch(t, v.Names(), keys(samples), "every page template has sample data in this test, and vice versa")

	enf, err := authz.New()
	require.NoError(t, err)
	tid := uuid.New()
	tenant := &store.Tenant{ID: tid, Name: "Acme " + evil, Status: store.TenantActive}
	viewers := map[string]*viewer{"anonymous": nil}
	for _, role := range []string{store.RolePlatformAdmin, store.RoleCustomerAdmin, store.RoleCustomerOperator} {
		u := store.User{ID: uuid.New(), Email: "x@example.com", Name: "Viewer " + evil, Role: role}
		vw := &viewer{User: u}
		if role != store.RolePlatformAdmin {
			u.TenantID = &tid
			vw.User, vw.Tenant = u, tenant
		}
		vw.Principal = auth.PrincipalOf(vw.User)
		viewers[role] = vw
	}
	for name, data := range samples {
		for who, vw := range viewers {
			public := name == "sign_in" || name == "sign_up" || name == "accept" || name == "error"
			if vw == nil && !public {
				continue // the guard sends anonymous visitors to sign in first
			}
			t.Run(name+"/"+who, func(t *testing.T) {
				pg := &Page{Title: "T " + evil, Viewer: vw, Tenant: tenant, CSRF: "tok", Data: data, enforcer: enf, Now: time.Now(),
					Flash: &Flash{Kind: "error", Message: evil}, Crumbs: []Crumb{{evil, "/x"}, {evil, ""}},
					Form: &Form{Values: map[string]string{"name": evil, "email": evil}, Errors: apperr.Fields{apperr.Invalid("name", evil)}, Message: evil}}
				pg.Layout = layoutAuth
				if vw != nil {
					pg.Layout = layoutApp
				}
				var buf bytes.Buffer
				require.NoError(t, v.pages[name].ExecuteTemplate(&buf, pg.Layout, pg))
				html := buf.String()
				require.NotContains(t, html, "<script>alert(1)</script>", "typed text must be escaped")
				require.Contains(t, html, "</html>")
				if vw != nil {
					require.Contains(t, html, template.HTMLEscapeString(vw.User.Name), "the page shows who is signed in")
					require.Contains(t, html, pg.RoleLabel(), "the page shows the viewer's role")
				}
			})
		}
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestHelpers(t *testing.T) {
	require.Equal(t, "1,234,567", num(int64(1234567)))
	require.Equal(t, "$1.23", usd(1_234_567))
	require.Equal(t, "$1,234.50", usd(1_234_500_000))
	require.Equal(t, "$0.0012", usd(1234))
	require.Equal(t, "$0.00", usd(0))
	require.Equal(t, "AL", initials("ada lovelace", ""))
	require.Equal(t, "B", initials("", "bob@example.com"))
	require.Equal(t, "", localNext("//evil.com"))
	require.Equal(t, "", localNext("https://evil.com"))
	require.Equal(t, "", localNext("/\\evil.com"))
	require.Equal(t, "/t/x?y=1", localNext("/t/x?y=1"))
	require.True(t, strings.HasPrefix(until(time.Now().Add(71*time.Hour)), "in 3 days"))
	require.Equal(t, "expired", until(time.Now().Add(-time.Second)))
}
