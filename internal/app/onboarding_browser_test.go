package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

// conversingHarness is the platform with a worker and the inbox dispatcher
// running, so messages are answered: the model is fake, Slack is fake (with
// "Add to Slack" set up), Temporal and Postgres are real.
func conversingHarness(t *testing.T, fake *fakellm.Server, sl *fakeslack.Server, env map[string]string) *harness {
	t.Helper()
	testkit.NewTemporal(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	vars := map[string]string{
		"KONSTRUCT_TEMPORAL_TASK_QUEUE": "onboarding-" + hex.EncodeToString(b),
		"KONSTRUCT_OPENAI_API_KEY":      fake.APIKey(),
		"KONSTRUCT_OPENAI_BASE_URL":     fake.OpenAIBaseURL(),
		"KONSTRUCT_DEFAULT_MODELS":      "openai/gpt-4o-mini",
		"KONSTRUCT_SLACK_API_URL":       sl.URL(),
		"KONSTRUCT_SLACK_CLIENT_ID":     oauthClientID,
		"KONSTRUCT_SLACK_CLIENT_SECRET": oauthClientSecret,
	}
	for k, v := range env {
		vars[k] = v
	}
	h := newHarness(t, vars)
	w := h.app.Worker()
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.app.RunInbox(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// The journey, in a browser, on a stopwatch: sign up; the setup
// stepper; "Add to Slack" through Slack's consent page (a fake speaking
// OAuth v2) and back; the agent form with its live preview; a test message
// in the portal chat, answered through the inbox, the conversation workflow
// and the model, the reply arriving in the page without a reload; finish.
func TestBrowserOnboardingSignUpToFirstReply(t *testing.T) {
	sl := fakeslack.New(t)
	sl.SetOAuthClient(oauthClientID, oauthClientSecret)
	const team, botUser = "T0ACMEHQ", "U0ACMEHQBOT"
	sl.AddWorkspace(team, "xoxb-acme-hq-bot-token", botUser)
	sl.SetTeamName(team, "Acme HQ")
	sl.SetInstallWorkspace(team)
	fake := fakellm.New(t, fakellm.WithHandler(func(r fakellm.Request) fakellm.Reply {
		if !strings.Contains(r.System, "You are Nova, the support assistant at Acme Robotics.") {
			return fakellm.Text("(the system prompt did not describe Nova)")
		}
		return fakellm.Text("Hi! I'm Nova. I can help with orders, shipping and returns at Acme Robotics.")
	}))
	h := conversingHarness(t, fake, sl, nil)
	ctx := newChrome(t, 1440, 900)
	shot := newShots(t)

	// The stopwatch starts when the sign-up page opens.
	start := time.Now()
	visit(t, ctx, h.URL+"/sign-up")
	fill(t, ctx, map[string]string{"#name": "Ada Lovelace", "#email": "ada@acme.test", "#organisation": "Acme Robotics",
		"#password": "Analytical-Engine-1843"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]")
	signedUp := time.Since(start)
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	require.Contains(t, text(t, ctx, "h1"), "Set up Acme Robotics")
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Welcome to Konstruct!")
	require.Contains(t, text(t, ctx, "[data-testid=stepper] li.current"), "Connect a channel")
	require.Contains(t, text(t, ctx, "[data-testid=step-channel]"), "Permission to add apps to your Slack workspace")
	shot.take(ctx, "onboarding-1-channel")

	// Add to Slack: Slack's consent page lists what the manifest asks for.
	submit(t, ctx, `[data-testid=add-to-slack]`, "#slack-allow")
	consent := text(t, ctx, "body")
	require.Contains(t, consent, "Konstruct is requesting permission to access the Acme HQ Slack workspace")
	require.Contains(t, consent, "Send messages as @Konstruct")
	shot.take(ctx, "onboarding-1-slack-consent")
	submit(t, ctx, "#slack-allow", "[data-testid=step-agent]")
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Connected the Slack workspace Acme HQ to Acme Robotics Assistant.")
	require.Contains(t, text(t, ctx, "[data-testid=stepper] li.done"), "Connect a channel")

	// The agent form starts from sensible defaults; the preview follows the typing.
	name, err := chromedp.Run(ctx, chromedp.Value(css("#name")))
	require.NoError(t, err)
	require.Equal(t, "Acme Robotics Assistant", name)
	require.Contains(t, text(t, ctx, "#prompt-preview"), "You are Acme Robotics Assistant, the assistant at Acme Robotics.")
	require.Contains(t, text(t, ctx, "#prompt-preview"), "You are chatting in Slack", "the preview is written for the channel just connected")
	fill(t, ctx, map[string]string{"#name": "Nova", "#role": "the support assistant at Acme Robotics",
		"#system_prompt": "Help customers with orders, shipping and returns. Ask for the order number first."})
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#prompt-preview').textContent.includes('You are Nova, the support assistant at Acme Robotics.')`,
		chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the preview follows the typing")
	shot.take(ctx, "onboarding-2-agent")
	submit(t, ctx, `[data-testid=save-agent-step]`, "[data-testid=step-test]")
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Nova is saved")
	disabled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid=finish-setup]').disabled`))
	require.NoError(t, err)
	require.True(t, disabled, "finishing waits for a reply")
	shot.take(ctx, "onboarding-3-test")

	// A test message: the reply arrives in the page, timed, with no reload.
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.__samePage = true`),
		chromedp.SendKeys(css("[data-testid=chat-input]"), "Hi! What can you help me with?"),
		chromedp.Click(css("[data-testid=chat-send]"))))
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(wctx, chromedp.WaitVisible(css("[data-testid=chat-reply]"))), "the reply arrives")
	firstReply := time.Since(start)
	reply := text(t, ctx, "[data-testid=chat-reply]")
	require.Contains(t, reply, "Hi! I'm Nova. I can help with orders, shipping and returns")
	require.Regexp(t, `Nova · replied in \d+(\.\d)? s · openai/gpt-4o-mini`, reply)
	tookMS, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid=chat-reply]').dataset.tookMs`))
	require.NoError(t, err)
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__samePage === true`))
	require.NoError(t, err)
	require.True(t, same, "the reply arrived without a page load")
	require.Contains(t, text(t, ctx, "[data-testid=chat] .chat-msg.me"), "Sent")
	require.Contains(t, text(t, ctx, "[data-testid=stepper] li:last-child"), "Done")
	t.Logf("stopwatch: sign-up to first reply %s (sign-up %s; the test message's reply took %s ms in the page)",
		firstReply.Round(time.Millisecond), signedUp.Round(time.Millisecond), tookMS)
	shot.take(ctx, "onboarding-3-replied")

	// Finish: the dashboard no longer shows setup progress.
	submit(t, ctx, `[data-testid=finish-setup]`, ".stats")
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Acme Robotics is set up")
	require.Zero(t, count(t, ctx, "[data-testid=setup-progress]"))
	shot.take(ctx, "onboarding-done-dashboard")

	// What happened underneath: the workspace routes to Nova; the message
	// went through the inbox as a portal event and a portal conversation.
	bg := context.Background()
	require.NoError(t, h.app.Store.WithTenant(bg, tenant, func(tx *store.Tx) error {
		chans, err := tx.ListChannels(bg)
		require.NoError(t, err)
		require.Len(t, chans, 1)
		agent, err := tx.GetAgent(bg, chans[0].AgentID)
		require.NoError(t, err)
		require.Equal(t, "Nova", agent.Name, "the workspace routes to the agent set up in the stepper")
		convs, err := tx.ListConversations(bg, 10)
		require.NoError(t, err)
		require.Len(t, convs, 1)
		require.Equal(t, store.ChannelPortal, convs[0].Channel)
		require.Equal(t, "ada@acme.test", convs[0].UserRef)
		msgs, err := tx.ListMessages(bg, convs[0].ID)
		require.NoError(t, err)
		require.Len(t, msgs, 2)
		require.Equal(t, "Hi! What can you help me with?", msgs[0].Content)
		n, err := tx.QueryInt(bg, `SELECT count(*) FROM inbox WHERE source = 'portal' AND outcome = 'delivered'`)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		n, err = tx.QueryInt(bg, `SELECT count(*) FROM llm_usage WHERE key_source = 'platform'`)
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "the platform's key paid")
		ob, err := tx.GetOnboarding(bg, tenant)
		require.NoError(t, err)
		require.Equal(t, store.ChannelSlack, ob.Channel)
		require.NotNil(t, ob.CompletedAt)
		return nil
	}))
	require.Equal(t, 1, sl.Calls("oauth.v2.access"))
}
