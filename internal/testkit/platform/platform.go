// Package platform runs Konstruct itself for end-to-end tests and benchmarks:
// the real `konstruct` binary as separate `serve` and `worker` processes, on
// a fresh database, the shared Redis and Temporal dev server, with Slack and
// the LLM providers pointed at in-process fakes that speak their wire formats.
package platform

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/konstruct once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			buildErr = fmt.Errorf("find module root: %w", err)
			return
		}
		root := strings.TrimSpace(string(out))
		dir, err := os.MkdirTemp("", "konstruct-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "konstruct")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/konstruct")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/konstruct: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("platform: %v", buildErr)
	}
	return binPath
}

// RemoveBinary deletes the binary Binary built; call it from TestMain after
// the tests ran.
func RemoveBinary() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
}

// Options adjust a platform.
type Options struct {
	// Env overrides KONSTRUCT_* variables (set a value to "" to unset it).
	Env map[string]string
	// NoLLM leaves every LLM provider unconfigured.
	NoLLM bool
	// NoWorker does not start the worker process.
	NoWorker bool
	// BeforeStart runs after the fakes exist and before the processes start
	// (to register tokens the processes use at start-up).
	BeforeStart func(p *Platform)
	// Serves and Workers are how many `serve` and `worker` processes to run
	// (default 1 each; NoWorker means 0 workers). Each serve listens on its
	// own address (ServeURL), each worker serves metrics on its own.
	Serves, Workers int
	// ServeEnv overrides variables for the serve processes only (say,
	// KONSTRUCT_TEMPORAL_ADDRESS pointing at a testkit.Proxy).
	ServeEnv map[string]string
}

// Platform is a running Konstruct with its fakes.
type Platform struct {
	t             testing.TB
	DB            testkit.Database
	Slack         *fakeslack.Server
	WhatsApp      *fakewhatsapp.Server // the Graph API; its status webhooks go to this platform (whatsapp.go)
	LLM           *fakellm.Server
	URL           string
	WorkerURL     string // the worker's /metrics and /healthz
	SigningSecret string
	// WhatsAppSecret signs WhatsApp webhooks (the Meta app secret) and
	// WhatsAppVerifyToken answers Meta's handshake.
	WhatsAppSecret      string
	WhatsAppVerifyToken string
	TaskQueue           string
	AdminEmail          string
	AdminPassword       string
	AdminToken          string
	env                 []string

	mu          sync.Mutex
	serves      []*Proc
	serveAddrs  []string
	serveEnv    []string
	workers     []*Proc
	workerAddrs []string
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("platform: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start runs serve (and worker) against fresh fakes and a fresh database.
func Start(t testing.TB, opts Options) *Platform {
	t.Helper()
	testkit.NewRedis(t) // fail or skip early, with the right message
	tc := testkit.NewTemporal(t)
	Binary(t)
	p := &Platform{
		t:                   t,
		DB:                  testkit.NewDatabase(t),
		Slack:               fakeslack.New(t),
		WhatsApp:            fakewhatsapp.New(t),
		LLM:                 fakellm.New(t),
		SigningSecret:       randHex(16),
		WhatsAppSecret:      randHex(16),
		WhatsAppVerifyToken: randHex(8),
		TaskQueue:           "e2e-" + randHex(6),
		AdminEmail:          "admin-" + randHex(4) + "@konstruct.test",
		AdminPassword:       "Adm1n-" + randHex(8),
	}
	// Registered before the processes start, so it runs after they stop.
	t.Cleanup(func() { terminateConversations(t, tc, p.TaskQueue) })
	addr := freeAddr(t)
	p.URL = "http://" + addr
	workerAddr := freeAddr(t)
	p.WorkerURL = "http://" + workerAddr
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := map[string]string{
		"KONSTRUCT_DATABASE_URL":                p.DB.AppURL,
		"KONSTRUCT_MIGRATE_DATABASE_URL":        p.DB.OwnerURL,
		"KONSTRUCT_REDIS_URL":                   testkit.RedisURL(),
		"KONSTRUCT_TEMPORAL_ADDRESS":            testkit.TemporalAddress(),
		"KONSTRUCT_TEMPORAL_TASK_QUEUE":         p.TaskQueue,
		"KONSTRUCT_HTTP_ADDR":                   addr,
		"KONSTRUCT_WORKER_ADDR":                 workerAddr,
		"KONSTRUCT_PUBLIC_URL":                  p.URL,
		"KONSTRUCT_ENCRYPTION_KEY":              base64.StdEncoding.EncodeToString(key),
		"KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL":       p.AdminEmail,
		"KONSTRUCT_BOOTSTRAP_ADMIN_PASSWORD":    p.AdminPassword,
		"KONSTRUCT_SLACK_SIGNING_SECRET":        p.SigningSecret,
		"KONSTRUCT_SLACK_API_URL":               p.Slack.URL(),
		"KONSTRUCT_WHATSAPP_APP_SECRET":         p.WhatsAppSecret,
		"KONSTRUCT_WHATSAPP_VERIFY_TOKEN":       p.WhatsAppVerifyToken,
		"KONSTRUCT_WHATSAPP_API_URL":            p.WhatsApp.URL(),
		"KONSTRUCT_OPENAI_API_KEY":              p.LLM.APIKey(),
		"KONSTRUCT_OPENAI_BASE_URL":             p.LLM.OpenAIBaseURL(),
		"KONSTRUCT_ANTHROPIC_API_KEY":           p.LLM.APIKey(),
		"KONSTRUCT_ANTHROPIC_BASE_URL":          p.LLM.AnthropicBaseURL(),
		"KONSTRUCT_OLLAMA_URL":                  p.LLM.OllamaURL(),
		"KONSTRUCT_DEFAULT_MODELS":              "openai/gpt-4o-mini",
		"KONSTRUCT_LLM_ATTEMPT_TIMEOUT":         "10s",
		"KONSTRUCT_LOG_LEVEL":                   "info",
		"KONSTRUCT_RATE_LIMIT_LOGIN_PER_MINUTE": "1000",
	}
	if opts.NoLLM {
		for _, k := range []string{"KONSTRUCT_OPENAI_API_KEY", "KONSTRUCT_OPENAI_BASE_URL", "KONSTRUCT_ANTHROPIC_API_KEY",
			"KONSTRUCT_ANTHROPIC_BASE_URL", "KONSTRUCT_OLLAMA_URL"} {
			delete(env, k)
		}
	}
	for k, v := range opts.Env {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KONSTRUCT_") {
			p.env = append(p.env, kv)
		}
	}
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}

	for k, v := range opts.ServeEnv {
		p.serveEnv = append(p.serveEnv, k+"="+v)
	}
	serves, workers := max(opts.Serves, 1), max(opts.Workers, 1)
	if opts.NoWorker {
		workers = 0
	}
	p.serveAddrs, p.workerAddrs = []string{addr}, []string{workerAddr}
	for len(p.serveAddrs) < serves {
		p.serveAddrs = append(p.serveAddrs, freeAddr(t))
	}
	for len(p.workerAddrs) < workers {
		p.workerAddrs = append(p.workerAddrs, freeAddr(t))
	}

	// Like Meta, the fake reports each message it accepts as sent, then
	// delivered, in signed status webhooks.
	p.WhatsApp.DeliverStatuses(p.URL+"/webhooks/whatsapp", p.WhatsAppSecret, "sent", "delivered")
	if opts.BeforeStart != nil {
		opts.BeforeStart(p)
	}
	p.serves = make([]*Proc, serves)
	for i := range p.serves {
		p.serves[i] = p.runServe(i)
	}
	p.workers = make([]*Proc, workers)
	for i := range p.workers {
		p.workers[i] = p.runWorker(i)
	}
	for i := range p.serves {
		p.waitReady(i)
	}
	p.AdminToken = p.Token(p.AdminEmail, p.AdminPassword)
	return p
}

// Proc is a running konstruct subcommand.
type Proc struct {
	name string
	cmd  *exec.Cmd
	out  *testkit.SyncBuffer
	done chan struct{}
}

func (p *Platform) runServe(i int) *Proc {
	return p.run("serve", append([]string{"KONSTRUCT_HTTP_ADDR=" + p.serveAddrs[i]}, p.serveEnv...)...)
}

func (p *Platform) runWorker(i int) *Proc {
	return p.run("worker", "KONSTRUCT_WORKER_ADDR="+p.workerAddrs[i])
}

// run starts a subcommand; env entries override the platform's (last wins).
func (p *Platform) run(sub string, env ...string) *Proc {
	p.t.Helper()
	cmd := exec.Command(Binary(p.t), sub)
	cmd.Env = append(append([]string(nil), p.env...), env...)
	out := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("platform: start %s: %v", sub, err)
	}
	proc := &Proc{name: sub, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(proc.done) }()
	p.t.Cleanup(func() {
		proc.stop(syscall.SIGTERM, 10*time.Second)
		if p.t.Failed() {
			p.t.Logf("--- konstruct %s output ---\n%s", sub, tail(out.String(), 8000))
		}
	})
	return proc
}

// terminateConversations ends the workflows still running on a test's task
// queue. Nothing polls that queue once the test is over, so they would stay
// running in the dev server for good, each with a pending idle timer, and
// pile up in its SQLite file run after run (a benchmark leaves thousands),
// slowing every later run.
func terminateConversations(t testing.TB, c client.Client, taskQueue string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	query := fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running'", taskQueue)
	var (
		wg     sync.WaitGroup
		slots  = make(chan struct{}, 16)
		failed atomic.Int64
		token  []byte
	)
	for {
		page, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			t.Logf("platform: cleanup: list workflows on %s: %v", taskQueue, err)
			break
		}
		for _, ex := range page.Executions {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				if err := c.TerminateWorkflow(ctx, ex.Execution.WorkflowId, ex.Execution.RunId, "test finished"); err != nil {
					failed.Add(1)
				}
			})
		}
		if token = page.NextPageToken; len(token) == 0 {
			break
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Logf("platform: cleanup: %d workflows on %s could not be terminated", n, taskQueue)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (pr *Proc) stop(sig syscall.Signal, wait time.Duration) {
	select {
	case <-pr.done:
		return
	default:
	}
	_ = pr.cmd.Process.Signal(sig)
	select {
	case <-pr.done:
	case <-time.After(wait):
		_ = pr.cmd.Process.Kill()
		<-pr.done
	}
}

// Output returns what the process has logged so far.
func (pr *Proc) Output() string { return pr.out.String() }

// KillWorker kills every worker with SIGKILL: no cleanup, no graceful stop.
func (p *Platform) KillWorker() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.workers {
		if w != nil {
			w.stop(syscall.SIGKILL, 5*time.Second)
		}
	}
}

// StartWorker starts a (new) first worker process.
func (p *Platform) StartWorker() { p.StartWorkerAt(0) }

// KillWorkerAt kills worker i with SIGKILL.
func (p *Platform) KillWorkerAt(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.workers[i].stop(syscall.SIGKILL, 5*time.Second)
}

// StartWorkerAt starts worker i again (after KillWorkerAt).
func (p *Platform) StartWorkerAt(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.workers) == 0 {
		p.workers, p.workerAddrs = []*Proc{nil}, []string{freeAddr(p.t)}
	}
	p.workers[i] = p.runWorker(i)
}

// RestartServe kills (SIGKILL) or stops (SIGTERM) the first API process and
// starts a new one.
func (p *Platform) RestartServe(kill bool) {
	p.mu.Lock()
	if kill {
		p.serves[0].stop(syscall.SIGKILL, 5*time.Second)
	} else {
		p.serves[0].stop(syscall.SIGTERM, 10*time.Second)
	}
	p.serves[0] = p.runServe(0)
	p.mu.Unlock()
	p.waitReady(0)
}

// KillServeAt kills API process i with SIGKILL and leaves it dead.
func (p *Platform) KillServeAt(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serves[i].stop(syscall.SIGKILL, 5*time.Second)
}

// ServeURL is API process i's base URL (ServeURL(0) == URL).
func (p *Platform) ServeURL(i int) string { return "http://" + p.serveAddrs[i] }

// Serve and Worker expose the first processes (for their logs).
func (p *Platform) Serve() *Proc  { p.mu.Lock(); defer p.mu.Unlock(); return p.serves[0] }
func (p *Platform) Worker() *Proc { p.mu.Lock(); defer p.mu.Unlock(); return p.workers[0] }

// Ready reports GET /readyz of API process i: status code and decoded body.
func (p *Platform) Ready(i int) (int, Readiness) {
	var r Readiness
	resp, err := http.Get(p.ServeURL(i) + "/readyz")
	if err != nil {
		return 0, r
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r
}

// Readiness is /readyz's answer.
type Readiness struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Degraded []string          `json:"degraded"`
	Details  struct {
		Inbox struct {
			Pending          int64   `json:"pending"`
			OldestAgeSeconds float64 `json:"oldest_age_seconds"`
		} `json:"inbox"`
	} `json:"details"`
}

// waitReady waits until API process i answers /readyz with 200 (ok, or
// degraded: a serve process whose Temporal is cut still takes webhooks).
func (p *Platform) waitReady(i int) {
	p.t.Helper()
	p.mu.Lock()
	proc := p.serves[i]
	p.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if status, _ := p.Ready(i); status == http.StatusOK {
			return
		}
		select {
		case <-proc.done:
			p.t.Fatalf("platform: konstruct serve exited:\n%s", tail(proc.Output(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("platform: konstruct serve not ready after 30s:\n%s", tail(proc.Output(), 4000))
}

// Do sends a JSON request to the API and returns the status and body.
func (p *Platform) Do(method, path, token string, body any) (int, []byte) {
	p.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatalf("platform: marshal: %v", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.URL+path, r)
	if err != nil {
		p.t.Fatalf("platform: request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("platform: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// MustDo is Do that fails the test unless the status is want, decoding the
// body into v (when non-nil).
func (p *Platform) MustDo(method, path, token string, body any, want int, v any) {
	p.t.Helper()
	status, out := p.Do(method, path, token, body)
	if status != want {
		p.t.Fatalf("platform: %s %s: status %d, want %d: %s", method, path, status, want, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			p.t.Fatalf("platform: %s %s: decode %s: %v", method, path, out, err)
		}
	}
}

// Token exchanges email and password for a bearer token.
func (p *Platform) Token(email, password string) string {
	p.t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	p.MustDo(http.MethodPost, "/api/v1/auth/token", "", map[string]string{"email": email, "password": password}, http.StatusCreated, &out)
	return out.Token
}

// Tenant is a tenant with an agent connected to a fake Slack workspace.
type Tenant struct {
	ID        string
	AgentID   string
	TeamID    string
	BotToken  string
	BotUserID string
}

// AgentSpec is what NewTenant creates the agent with.
type AgentSpec struct {
	Name         string   `json:"name"`
	Role         string   `json:"role,omitempty"`
	Persona      string   `json:"persona,omitempty"`
	SystemPrompt string   `json:"system_prompt,omitempty"`
	Models       []string `json:"models,omitempty"`
	Tools        []string `json:"tools,omitempty"`
	// BusinessFunction is required for an agent answering on WhatsApp.
	BusinessFunction string `json:"business_function,omitempty"`
	// Escalation is the agent's escalation rules document.
	Escalation map[string]any `json:"escalation,omitempty"`
}

// NewTenant creates a tenant and an agent over the REST API and connects a
// new fake Slack workspace to it.
func (p *Platform) NewTenant(name string, agent AgentSpec) Tenant {
	p.t.Helper()
	var tn, ag struct {
		ID string `json:"id"`
	}
	p.MustDo(http.MethodPost, "/api/v1/tenants", p.AdminToken, map[string]string{"name": name}, http.StatusCreated, &tn)
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/agents", p.AdminToken, agent, http.StatusCreated, &ag)
	team := "T" + strings.ToUpper(randHex(5))
	bot := "xoxb-" + randHex(12)
	botUser := "U" + strings.ToUpper(randHex(4))
	p.Slack.AddWorkspace(team, bot, botUser)
	p.MustDo(http.MethodPost, "/api/v1/tenants/"+tn.ID+"/channels/slack", p.AdminToken,
		map[string]string{"team_id": team, "bot_token": bot, "agent_id": ag.ID}, http.StatusCreated, nil)
	return Tenant{ID: tn.ID, AgentID: ag.ID, TeamID: team, BotToken: bot, BotUserID: botUser}
}

// PostEvent signs body as Slack would and posts it to the events webhook.
func (p *Platform) PostEvent(body []byte, retry int) (int, string) {
	p.t.Helper()
	req := fakeslack.NewEventsRequest(p.SigningSecret, body, time.Now())
	if retry > 0 {
		req = fakeslack.WithRetry(req, retry, "http_timeout")
	}
	return p.send(req)
}

// TryPostEvent is PostEvent that reports a failed connection (the API being
// down) instead of failing the test, as Slack would see it.
func (p *Platform) TryPostEvent(body []byte, retry int) (int, error) {
	req := fakeslack.NewEventsRequest(p.SigningSecret, body, time.Now())
	if retry > 0 {
		req = fakeslack.WithRetry(req, retry, "http_error")
	}
	status, _, err := p.trySend(req)
	return status, err
}

func (p *Platform) send(req *http.Request) (int, string) {
	p.t.Helper()
	status, body, err := p.trySend(req)
	if err != nil {
		p.t.Fatalf("platform: post event: %v", err)
	}
	return status, body
}

func (p *Platform) trySend(req *http.Request) (int, string, error) { return p.trySendTo(0, req) }

// TryPostEventTo is TryPostEvent to API process i.
func (p *Platform) TryPostEventTo(i int, body []byte, retry int) (int, error) {
	req := fakeslack.NewEventsRequest(p.SigningSecret, body, time.Now())
	if retry > 0 {
		req = fakeslack.WithRetry(req, retry, "http_error")
	}
	status, _, err := p.trySendTo(i, req)
	return status, err
}

func (p *Platform) trySendTo(i int, req *http.Request) (int, string, error) {
	base, err := http.NewRequest(req.Method, p.ServeURL(i)+req.URL.Path, nil)
	if err != nil {
		return 0, "", err
	}
	req.URL = base.URL
	req.Host = base.Host
	req.RequestURI = ""
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req.WithContext(context.Background()))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// PostInteraction signs body (fakeslack.ButtonClick) as Slack would and
// posts it to the interactivity webhook.
func (p *Platform) PostInteraction(body []byte) (int, string) {
	p.t.Helper()
	return p.send(fakeslack.NewInteractionRequest(p.SigningSecret, body, time.Now()))
}

// PostRequest posts a prepared (possibly badly signed) events request.
func (p *Platform) PostRequest(req *http.Request) (int, string) { return p.send(req) }

// Mention builds an app_mention event from user in channel for tenant tn.
func (tn Tenant) Mention(channel, user, text, ts, threadTS string) (body []byte, eventID string) {
	eventID = "Ev" + strings.ToUpper(randHex(6))
	return fakeslack.AppMention(tn.TeamID, channel, user, "<@"+tn.BotUserID+"> "+text, ts, threadTS, eventID,
		fakeslack.WithBotUserID(tn.BotUserID)), eventID
}

// ThreadReply builds the message.channels event of user replying in thread
// threadTS of channel without mentioning the bot (a staff reply in a
// handoff thread, say).
func (tn Tenant) ThreadReply(channel, user, text, ts, threadTS string) (body []byte, eventID string) {
	eventID = "Ev" + strings.ToUpper(randHex(6))
	return fakeslack.ChannelMessage(tn.TeamID, channel, user, text, ts, threadTS, eventID, fakeslack.WithBotUserID(tn.BotUserID)), eventID
}

// NewTS returns a fresh, increasing Slack message timestamp.
func NewTS() string {
	now := time.Now()
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
}
