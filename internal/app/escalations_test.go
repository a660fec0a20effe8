package app_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
)

// staffActions lists the tenant's recorded staff actions, oldest first.
func staffActions(t *testing.T, h *harness, tenantID uuid.UUID) []escalation.StaffEvent {
	t.Helper()
	ctx := context.Background()
	var out []escalation.StaffEvent
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM inbox WHERE source = 'escalation'`)
		for i := int64(0); err == nil && i < n; i++ {
			var raw []byte
			if err = tx.QueryRowScan(ctx, `SELECT payload FROM inbox WHERE source = 'escalation' ORDER BY id OFFSET $1 LIMIT 1`, []any{i}, &raw); err == nil {
				var ev escalation.StaffEvent
				err = json.Unmarshal(raw, &ev)
				out = append(out, ev)
			}
		}
		return err
	}))
	return out
}

// An operator works the Escalations queue in the portal: the queue shows
// the waiting conversation with its SLA standing; its page shows the context
// pack and the transcript (and feeds it live); a reply and a resolve go to
// the conversation's workflow through the inbox, with the operator's name;
// an empty reply is explained and sends nothing; a forged form sends
// nothing; an escalation that has ended refuses both.
func TestOperatorWorksTheEscalationQueue(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.browser()
	home := admin.signUp("ada@help.test", "Ada", "Helpful Ltd")
	tenantID := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	sc := seedShowcase(t, h, tenantID, "helpful")
	setPassword(t, h, sc.Operator.ID, "Operator-Pass-Word-9")
	op := h.browser()
	op.signIn(sc.Operator.Email, "Operator-Pass-Word-9")
	escPath := home + "/escalations/" + sc.Escalation.ID.String()

	p := op.get(home + "/escalations")
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, `data-testid="nav-escalations"`)
	require.Contains(t, p.Body, "Katherine Johnson")
	require.Contains(t, p.Body, "waiting for a person")
	require.Contains(t, p.Body, `badge-sla-overdue`, "the first response is overdue")
	require.Contains(t, p.Body, "18 min", "the waiting time")
	p = op.get(home + "/escalations?state=resolved")
	require.NotContains(t, p.Body, "Katherine Johnson")

	p = op.get(escPath)
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, html.EscapeString("The user's message contains the keyword “refund”."))
	require.Contains(t, p.Body, "wants a refund if it is late", "the summary")
	require.Contains(t, p.Body, "current_time", "the tools tried")
	require.Contains(t, p.Body, "Where is my order #4521?", "the transcript")
	require.Contains(t, p.Body, `data-testid="reply-form"`)
	require.Contains(t, p.Body, "/workflows/", "a link to the workflow")

	var live struct {
		State    string `json:"state"`
		Open     bool   `json:"open"`
		Messages []struct{ ID, Role, Who, Content string }
	}
	p = op.get(escPath + "/live")
	require.Equal(t, http.StatusOK, p.Status)
	require.NoError(t, json.Unmarshal([]byte(p.Body), &live))
	require.Equal(t, "waiting_for_human", live.State)
	require.True(t, live.Open)
	require.NotEmpty(t, live.Messages)

	// An empty reply: explained, nothing sent.
	p = op.post(escPath+"/messages", url.Values{"text": {"   "}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "The message was not sent")
	// A forged form (no valid token): refused, nothing sent.
	p = op.post(escPath+"/messages", url.Values{"text": {"forged"}, "csrf_token": {"not-the-token"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Empty(t, staffActions(t, h, tenantID))

	p = op.post(escPath+"/messages", url.Values{"text": {"Hi Katherine, I'm on it."}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(t, escPath, p.Location)
	require.Contains(t, op.get(escPath).Body, "Sent. It reaches the user in a moment")
	p = op.post(escPath+"/resolve", nil)
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	acts := staffActions(t, h, tenantID)
	require.Len(t, acts, 2)
	require.Equal(t, sc.Escalation.WorkflowID, acts[0].WorkflowID)
	require.Equal(t, escalation.ActionReply, acts[0].Action.Kind)
	require.Equal(t, "Hi Katherine, I'm on it.", acts[0].Action.Text)
	require.Equal(t, "Grace Hopper", acts[0].Action.Author, "the user sees the operator's name")
	require.Equal(t, escalation.SourcePortal, acts[0].Action.Source)
	require.Equal(t, escalation.ActionResolve, acts[1].Action.Kind)

	// Once the workflow has ended it, the page says so and offers no reply.
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantID, func(tx *store.Tx) error {
		_, err := tx.EndHandoff(context.Background(), sc.Escalation.ID, store.EscalationResolved, "Grace Hopper")
		return err
	}))
	p = op.get(escPath)
	require.Contains(t, p.Body, "resolved")
	require.NotContains(t, p.Body, `data-testid="reply-form"`)
	p = op.post(escPath+"/messages", url.Values{"text": {"too late"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, op.get(escPath).Body, "Not sent: the escalation is already resolved")
	require.Len(t, staffActions(t, h, tenantID), 2)

	// Operators neither see nor change the support settings.
	require.Equal(t, http.StatusForbidden, op.get(home+"/settings").Status)
	p = op.post(home+"/settings/support", url.Values{"first_response_minutes": {"1"}, "hand_back_minutes": {"2"}})
	require.Equal(t, http.StatusForbidden, p.Status)
}

// Admins set where handoffs go and the SLA on the Settings page; a bad
// value is explained next to its field and nothing is saved.
func TestAdminSetsSupportSettings(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.browser()
	home := admin.signUp("ada@support.test", "Ada", "Support Ltd")
	tenantID := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	sc := seedShowcase(t, h, tenantID, "support")

	p := admin.get(home + "/settings")
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.Body, `data-testid="support-form"`)
	require.Contains(t, p.Body, `value="15"`, "the default first-response time, in minutes")
	require.Contains(t, p.Body, "Invite the bot to the channel")

	p = admin.post(home+"/settings/support", url.Values{"slack_team_id": {sc.Channel.ExternalID}, "slack_channel_id": {"#support"},
		"first_response_minutes": {"10"}, "hand_back_minutes": {"5"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "must be a Slack channel ID")
	require.Contains(t, p.Body, "must be longer than the first-response time")
	p = admin.post(home+"/settings/support", url.Values{"first_response_minutes": {"ten"}, "hand_back_minutes": {"60"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.Body, "must be a number of minutes")

	p = admin.post(home+"/settings/support", url.Values{"slack_team_id": {sc.Channel.ExternalID}, "slack_channel_id": {"C0SUPPORT"},
		"first_response_minutes": {"0.5"}, "hand_back_minutes": {"45"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	var s store.SupportSettings
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantID, func(tx *store.Tx) error {
		var err error
		s, err = tx.GetSupportSettings(context.Background())
		return err
	}))
	require.Equal(t, "C0SUPPORT", s.SlackChannelID)
	require.Equal(t, sc.Channel.ExternalID, s.SlackTeamID)
	require.Equal(t, 30.0, s.FirstResponse.Seconds())
	require.Equal(t, 45.0, s.HandBack.Minutes())
	p = admin.get(home + "/settings")
	require.Contains(t, p.Body, `value="0.5"`)
	require.Contains(t, p.Body, `value="C0SUPPORT"`)
}

// In a real browser: the queue leads to the escalation, whose transcript
// shows a message the user sends meanwhile without a reload; the reply box
// sends a reply (its form carries the CSRF token).
func TestBrowserEscalationLiveTranscriptAndReply(t *testing.T) {
	h := newHarness(t, nil)
	ctx := newChrome(t, 1366, 900)
	shot := newShots(t)
	visit(t, ctx, h.URL+"/sign-up")
	fill(t, ctx, map[string]string{"#name": "Esme Lane", "#email": "esme@acme.test", "#organisation": "Acme Robotics",
		"#password": "Hand-It-Over-1597"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]") // a new organisation lands in the setup stepper
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")
	tenantID := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	sc := seedShowcase(t, h, tenantID, "acme")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css(`[data-testid=nav-escalations]`))))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(css(`[data-testid=escalations-table]`))))
	require.Contains(t, text(t, ctx, "[data-testid=escalations-table]"), "Katherine Johnson")
	shot.take(ctx, "escalations-queue")
	submit(t, ctx, `[data-testid=escalations-table] tbody a`, `[data-testid=transcript]`)
	require.Contains(t, text(t, ctx, "[data-testid=context-pack]"), "wants a refund if it is late")

	// The user writes meanwhile (the workflow records it): it shows up.
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`)))
	require.NoError(t, h.app.Store.WithTenant(context.Background(), tenantID, func(tx *store.Tx) error {
		_, err := tx.AddMessage(context.Background(), store.Message{ConversationID: sc.Escalation.ConversationID, Turn: 9, Role: "user",
			Content: "Is anyone there? <b>hello</b>", Author: "Katherine Johnson", IdempotencyKey: "live-test"})
		return err
	}))
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("[data-testid=transcript]").textContent.includes("Is anyone there? <b>hello</b>")`,
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the new message appears, as text")
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`))
	require.NoError(t, err)
	require.True(t, same, "without reloading the page")
	shot.take(ctx, "escalation-detail")

	fill(t, ctx, map[string]string{"#reply-text": "Yes! I'm looking at your order now."})
	submit(t, ctx, `[data-testid=reply-submit]`, `.flash-wrap`)
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Sent.")
	acts := staffActions(t, h, tenantID)
	require.Len(t, acts, 1)
	require.Equal(t, "Yes! I'm looking at your order now.", acts[0].Action.Text)
	require.Equal(t, "Esme Lane", acts[0].Action.Author)
}
