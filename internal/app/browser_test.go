package app_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath is Debian's Chromium, which `make test` installs
// (scripts/chromium.sh); KONSTRUCT_CHROMIUM overrides it.
func chromiumPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("KONSTRUCT_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		msg := fmt.Sprintf("Chromium is not installed at %s (%v); install with scripts/chromium.sh (make test does)", path, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// newChrome starts a headless Chromium with a fresh profile, its window the
// given size, and returns a tab's context.
func newChrome(t testing.TB, width, height int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start Chromium")

	// Every script error and every content-security-policy refusal fails the
	// test: the pages must run clean under their own CSP.
	var mu sync.Mutex
	var problems []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			text := m.String()
			if m.IsException() || strings.Contains(text, "Refused to") || strings.Contains(text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, text)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		<-done
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, problems, "the browser reported script errors or CSP refusals")
	})
	return ctx
}

// shots saves screenshots into $KONSTRUCT_SCREENSHOTS, or a temporary
// directory that goes away with the test.
type shots struct {
	t   testing.TB
	dir string
	n   int
}

func newShots(t testing.TB) *shots {
	dir := os.Getenv("KONSTRUCT_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return &shots{t: t, dir: dir}
}

// take captures the whole page: the viewport is stretched to the document's
// height first, so sticky bars stay where a person sees them.
func (s *shots) take(ctx context.Context, name string) {
	s.t.Helper()
	size, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[window.innerWidth, Math.max(document.documentElement.scrollHeight, window.innerHeight)]`))
	require.NoError(s.t, err)
	require.NoError(s.t, chromedp.Do(ctx, chromedp.EmulateViewport(int64(size[0]), int64(size[1]))))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(s.t, err)
	require.NoError(s.t, chromedp.Do(ctx, chromedp.EmulateViewport(int64(size[0]), 900)))
	s.n++
	require.NoError(s.t, os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name)), png, 0o644))
}

// Chromedp shorthands.
func css(s string) chromedp.CSS { return chromedp.CSS(s) }

func visit(t testing.TB, ctx context.Context, u string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitReady(css("body"))), u)
}

func fill(t testing.TB, ctx context.Context, fields map[string]string) {
	t.Helper()
	for sel, v := range fields {
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(css(sel)),
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel)),
			chromedp.SendKeys(css(sel), v)), sel)
	}
}

// submit clicks a button and waits for the next page to show sel.
func submit(t testing.TB, ctx context.Context, button, waitFor string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css(button))), button)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(css(waitFor))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(css("body")))
		u, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s → %s: %v\nat %s:\n%s", button, waitFor, err, u, body)
	}
}

func text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
	require.NoError(t, err, sel)
	return s
}

func location(t testing.TB, ctx context.Context) string {
	t.Helper()
	u, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	return u
}

func count(t testing.TB, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	require.NoError(t, err)
	return n
}

var inviteLinkRE = regexp.MustCompile(`https?://[^\s"<>]+/invitations/accept\?token=[A-Za-z0-9_\-%]+`)

// The browser journey: sign up, design an agent in the Agent Designer
// and see it listed; invite an operator, read the email from the SMTP server,
// follow the link, set a password; the operator sees no edit controls and
// gets 403 when posting the edit form directly.
func TestBrowserSignUpDesignAgentInviteOperator(t *testing.T) {
	h := newHarness(t, nil)
	ctx := newChrome(t, 1366, 900)
	shot := newShots(t)
	start := time.Now()

	// Sign up.
	visit(t, ctx, h.URL+"/")
	require.Contains(t, location(t, ctx), "/sign-in")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css(`a[href="/sign-up"]`)), chromedp.WaitVisible(css("#organisation"))))
	fill(t, ctx, map[string]string{"#name": "Ada Lovelace", "#email": "ada@acme.test", "#organisation": "Acme Robotics",
		"#password": "Analytical-Engine-1843"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]") // a new organisation lands in the setup stepper
	require.Contains(t, text(t, ctx, ".who"), "Ada Lovelace")
	require.Contains(t, text(t, ctx, ".who"), "Admin")
	require.Contains(t, text(t, ctx, ".who"), "Acme Robotics")
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")
	require.Regexp(t, `^/t/[0-9a-f-]{36}$`, home)

	// Design an agent: every section of the designer, live preview included.
	visit(t, ctx, h.URL+home+"/agents")
	require.Contains(t, text(t, ctx, ".empty"), "No agents yet")
	submit(t, ctx, `[data-testid=new-agent]`, "#agent-form")
	fill(t, ctx, map[string]string{"#name": "Sam", "#role": "the support lead at Acme Robotics",
		"#persona": "Calm, precise, friendly.", "#system_prompt": "Help customers with orders and returns."})
	// The preview follows the typing (the server builds it with agents.SystemPrompt).
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#prompt-preview').textContent.includes('You are Sam, the support lead at Acme Robotics.')`,
		chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the preview follows the typing")
	require.Contains(t, text(t, ctx, "#prompt-preview"), "Help customers with orders and returns.")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(css(`#models .model-row:nth-child(1) input`), "openai/gpt-4o-mini"),
		chromedp.Click(css(`[data-add-model]`)),
		chromedp.SendKeys(css(`#models .model-row:nth-child(2) input`), "anthropic/claude-sonnet-4-5"),
		chromedp.Click(css(`input[name=tools][value=current_time]`)),
		chromedp.SendKeys(css(`#esc_keywords`), "refund, human"),
		chromedp.SendKeys(css(`#esc_max_failed_turns`), "3"),
	))
	// Reorder: move the fallback to the top and back again.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css(`#models .model-row:nth-child(2) [data-up]`))))
	first, err := chromedp.Run(ctx, chromedp.Value(css(`#models .model-row:nth-child(1) input`)))
	require.NoError(t, err)
	require.Equal(t, "anthropic/claude-sonnet-4-5", first)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css(`#models .model-row:nth-child(2) [data-up]`))))
	shot.take(ctx, "designer-filled")
	submit(t, ctx, `[data-testid=save-agent]`, `[data-testid=edit-agent]`)
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Sam is ready")
	require.Contains(t, text(t, ctx, ".dl"), "openai/gpt-4o-mini")
	require.Contains(t, text(t, ctx, ".dl"), "Current date and time")
	agentURL := strings.TrimPrefix(location(t, ctx), h.URL)
	visit(t, ctx, h.URL+home+"/agents")
	require.Contains(t, text(t, ctx, "[data-testid=agents-table]"), "Sam")
	require.Contains(t, text(t, ctx, "[data-testid=agents-table]"), "the support lead at Acme Robotics")

	// Invite an operator; the email arrives over SMTP.
	visit(t, ctx, h.URL+home+"/users")
	fill(t, ctx, map[string]string{"#invite-email": "otto@acme.test"})
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(css("#invite-role"), "customer_operator")))
	submit(t, ctx, `[data-testid=invite-form] button[type=submit]`, "[data-testid=invitations-table]")
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Invitation sent to otto@acme.test")
	mail := h.smtp.Wait(t, "otto@acme.test", 10*time.Second)
	require.Equal(t, "Ada Lovelace invited you to join Acme Robotics on Konstruct", mail.Subject)
	link := inviteLinkRE.FindString(mail.Text)
	require.NotEmpty(t, link, mail.Text)
	require.True(t, strings.HasPrefix(link, h.URL), "the link points at KONSTRUCT_PUBLIC_URL")

	// The operator opens the link in a fresh browser, sets a password, is in.
	octx := newChrome(t, 1366, 900)
	visit(t, octx, link)
	require.Contains(t, text(t, octx, "h1"), "Join Acme Robotics")
	require.Contains(t, text(t, octx, ".invite-card"), "Operator")
	shot.take(octx, "accept-invitation")
	fill(t, octx, map[string]string{"#name": "Otto Operator", "#password": "weak", "#confirm_password": "weak"})
	submit(t, octx, `button[type=submit]`, ".field-error")
	require.Contains(t, text(t, octx, ".field-error"), "at least 12 characters")
	fill(t, octx, map[string]string{"#password": "Quiet-Observer-2024!", "#confirm_password": "Quiet-Observer-2024!"})
	submit(t, octx, `button[type=submit]`, ".stats")
	require.Contains(t, text(t, octx, ".who"), "Otto Operator")
	require.Contains(t, text(t, octx, ".who"), "Operator")
	require.Contains(t, text(t, octx, ".flash-wrap"), "You joined as Operator")

	// The operator sees agents but no edit controls anywhere.
	visit(t, octx, h.URL+home+"/agents")
	require.Contains(t, text(t, octx, "[data-testid=agents-table]"), "Sam")
	require.Zero(t, count(t, octx, `[data-testid=new-agent]`))
	require.Zero(t, count(t, octx, `a[href$="/edit"]`))
	require.Zero(t, count(t, octx, `form[method=post][action*="/agents"]`))
	visit(t, octx, h.URL+agentURL)
	require.Zero(t, count(t, octx, `[data-testid=edit-agent]`))
	require.Zero(t, count(t, octx, `form[action$="/delete"]`))
	require.Zero(t, count(t, octx, `form[action$="/status"]`))
	require.Zero(t, count(t, octx, `a[href$="/users"]`), "no Team link for operators")
	shot.take(octx, "operator-agent")

	// Posting the edit form directly, with a valid session and CSRF token: 403.
	status, err := chromedp.Run(octx, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q, {method: "POST", credentials: "same-origin",
		body: new URLSearchParams({csrf_token: document.querySelector('meta[name=csrf-token]').content, name: "Hijacked", status: "active"})
	}).then(r => r.status)`, agentURL), chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, 403, status)
	// The designer page itself is forbidden too, with the 403 page.
	visit(t, octx, h.URL+agentURL+"/edit")
	require.Contains(t, text(t, octx, ".error-page"), "You don't have access to this")
	shot.take(octx, "operator-403")
	// And nothing changed.
	visit(t, ctx, h.URL+agentURL)
	require.Contains(t, text(t, ctx, "h1"), "Sam")

	// Signing out ends the session; the back button shows no private page.
	require.NoError(t, chromedp.Do(octx, chromedp.Click(css("summary.avatar")), chromedp.Click(css(`[data-testid=sign-out]`)),
		chromedp.WaitVisible(css(`#password`))))
	require.Contains(t, text(t, octx, ".alert"), "You have signed out")
	visit(t, octx, h.URL+home)
	require.Contains(t, location(t, octx), "/sign-in")
	t.Logf("browser journey took %s", time.Since(start).Round(time.Millisecond))
}

var _ = url.Values{}
