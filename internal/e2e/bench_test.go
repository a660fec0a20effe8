package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/sashabaranov/go-openai"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// BenchmarkPlatform is the load driver behind `make bench`: it runs the real
// binary (serve + worker) against Postgres, Redis and each Temporal back end
// named in KONSTRUCT_BENCH_TEMPORAL (`dev=127.0.0.1:7233,server=127.0.0.1:7243`:
// the CLI's dev server and the Temporal Server on PostgreSQL; `make bench`
// starts both), with Slack and the LLM as in-process fakes answering
// instantly, and prints one table of latencies, each next to a baseline
// measured in the same run, with every Temporal-bound scenario once per back
// end. Without KONSTRUCT_BENCH_TEMPORAL it measures the one Temporal of
// KONSTRUCT_TEMPORAL_ADDRESS. It runs once whatever b.N is: its scenarios are
// timed loads, not loops.
func BenchmarkPlatform(b *testing.B) {
	if b.N > 1 {
		b.Skip("a single run measures everything; use -benchtime=1x")
	}
	var rows []row
	for i, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			b.Setenv("KONSTRUCT_TEMPORAL_ADDRESS", be.addr)
			rows = append(rows, platformRows(b, be, i == 0)...)
		})
	}
	printRows(rows)
}

// backend is one Temporal the platform rows are measured against.
type backend struct{ name, addr, label string }

// benchBackends reads KONSTRUCT_BENCH_TEMPORAL (name=address, comma-separated).
func benchBackends(b *testing.B) []backend {
	spec := os.Getenv("KONSTRUCT_BENCH_TEMPORAL")
	if spec == "" {
		name := os.Getenv("KONSTRUCT_TEMPORAL_BACKEND")
		if name == "" {
			name = "dev"
		}
		spec = name + "=" + testkit.TemporalAddress()
	}
	var out []backend
	for _, kv := range strings.Split(spec, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || name == "" || addr == "" {
			b.Fatalf("KONSTRUCT_BENCH_TEMPORAL: %q is not name=host:port", kv)
		}
		be := backend{name: name, addr: addr, label: name}
		switch name {
		case "dev":
			// The dev server's SQLite file grows with every run (tests, bench,
			// make dev) and its size moves the figures: say how big it was.
			be.label = "dev server"
			if fi, err := os.Stat(filepath.Join("..", "..", ".konstruct", "temporal.db")); err == nil {
				be.label += fmt.Sprintf(" (SQLite file %d MB)", fi.Size()>>20)
			}
		case "server":
			be.label = "Temporal Server (PostgreSQL)"
		}
		out = append(out, be)
	}
	return out
}

// platformRows measures every scenario of the platform against one Temporal
// back end; withPool adds the rows that do not involve Temporal (the LLM
// pool's), measured once.
func platformRows(b *testing.B, be backend, withPool bool) []row {
	// The API reaches Temporal through a proxy the outage rows cut; the
	// worker and everyone else reach it directly.
	proxy := testkit.NewProxy(b, be.addr)
	p := platform.Start(b, platform.Options{Env: map[string]string{
		"KONSTRUCT_RATE_LIMIT_TENANT_PER_MINUTE":  "1000000",
		"KONSTRUCT_RATE_LIMIT_CHANNEL_PER_MINUTE": "1000000",
		"KONSTRUCT_LOG_LEVEL":                     "warn",
	}, ServeEnv: map[string]string{"KONSTRUCT_TEMPORAL_ADDRESS": proxy.Addr()}})
	p.LLM.SetHandler(func(r fakellm.Request) fakellm.Reply { return fakellm.Text("echo: " + r.LastUserText()) })
	d := newDriver(b, p)
	d.proxy, d.temporal = proxy, testkit.NewTemporal(b)
	var rows []row
	add := func(r row) {
		r.backend = be.label
		rows = append(rows, r)
	}

	// Baselines: the bare HTTP calls a turn makes, done directly.
	base := d.bareTurn(500)
	add(row{name: "bare HTTP calls of a turn (webhook-sized POST + LLM + chat.postMessage)", load: "sequential, 500×", s: base})
	ping := d.openLoop(func() (time.Duration, bool) { return d.timeGET(p.URL + "/healthz"), true }, 500, 5*time.Second)
	add(row{name: "baseline: GET /healthz (HTTP stack alone)", load: "500/s open loop, 5s", s: ping})

	// Webhook acknowledgement at 500 events/s over 500 running conversations.
	// The webhook records the event in the inbox (one INSERT, deduped by event
	// ID) and answers; the dispatcher hands it to Temporal afterwards, so the
	// ack never waits on Temporal. With the worker stopped (a worker outage:
	// the events wait in Temporal); with the worker answering every event at
	// 100/s, within what one 2-core machine answers, and at 500/s, beyond it
	// (every event is a turn); and with Temporal unreachable from the API,
	// the events waiting in the inbox.
	ack := d.ack("ack-ingest", 500, 10*time.Second, true)
	add(row{name: "webhook ack (verify, route, limit, INSERT into the inbox), worker stopped", load: "500/s open loop, 500 conv, 10s", s: ack, base: &ping, target: "p99 ≤ 5 ms"})
	add(row{name: "webhook ack, every event answered", load: "100/s open loop, 500 conv, 10s", s: d.ack("ack-answered", 100, 10*time.Second, false), base: &ping})
	add(row{name: "webhook ack, every event answered (overload)", load: "500/s open loop, 500 conv, 5s", s: d.ack("ack-overload", 500, 5*time.Second, false), base: &ping, target: "p99 ≤ 5 ms"})
	outAck, drained := d.outage("ack-outage", 500, 10*time.Second)
	add(row{name: "webhook ack, Temporal unreachable from the API (proxy cut)", load: "500/s open loop, 500 conv, 10s", s: outAck, base: &ping, target: "p99 ≤ 5 ms, 0 errors"})
	add(drained)

	// Turn overhead: webhook in → reply posted, closed loop.
	var closed50 platform.Tenant
	for _, c := range []int{1, 10, 50} {
		tn := d.tenant(fmt.Sprintf("closed%d", c))
		lat, thr := d.closedLoop(tn, c, 10*time.Second)
		add(row{name: fmt.Sprintf("turn, %d concurrent conversation(s)", c), load: fmt.Sprintf("closed loop, %.0f turns/s", thr), s: lat, base: &base,
			target: map[bool]string{true: "≥ 300 turns/s at 50"}[c == 50]})
		closed50 = tn
	}
	add(d.historyRow("Temporal history events per turn, 50 concurrent conversations", closed50))
	// Open loop at 50 turns/s over 500 conversations.
	tn := d.tenant("open50")
	open := d.openTurns(tn, 50, 500, 20*time.Second)
	add(row{name: "turn overhead target", load: "50 turns/s open loop, 500 conv, 20s", s: open, base: &base, target: "overhead p50 ≤ 40 ms, p99 ≤ 150 ms"})

	// Turn 100 against turn 1 of one conversation.
	tn = d.tenant("long")
	turns := d.sequentialTurns(tn, 100)
	first, last := stats(turns[1:11]), stats(turns[90:100])
	add(row{name: "turns 2–11 of one conversation", load: "sequential", s: first})
	add(row{name: "turns 91–100 of the same conversation", load: fmt.Sprintf("ratio p50 %.2f× (turn 1: %s)", float64(last.p50)/float64(first.p50), ms(turns[0])),
		s: last, base: &first, target: "≤ 1.2× turn 1"})
	add(d.historyRow("Temporal history events per turn, one conversation, sequential", tn))

	b.ReportMetric(float64(ack.p99.Microseconds())/1000, "ack-p99-ms")
	b.ReportMetric(float64(open.p50.Microseconds())/1000, "turn-p50-ms")
	b.ReportMetric(float64(open.p99.Microseconds())/1000, "turn-p99-ms")

	if withPool {
		// The LLM pool against a direct client call, and its fallbacks.
		for _, r := range d.poolRows() {
			r.backend = "—"
			rows = append(rows, r)
		}
	}
	return rows
}

// printRows prints one table, each scenario's rows of every back end
// together so they read side by side.
func printRows(rows []row) {
	sort.SliceStable(rows, func(i, j int) bool { return rowOrder(rows, rows[i]) < rowOrder(rows, rows[j]) })
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nscenario\tTemporal\tload\tp50\tp99\tmax\tn\terrors\tvs baseline (p50 / p99)\ttarget")
	for _, r := range rows {
		cmp := ""
		if r.base != nil {
			cmp = fmt.Sprintf("+%s / +%s  (×%.1f / ×%.1f)", ms(r.s.p50-r.base.p50), ms(r.s.p99-r.base.p99),
				float64(r.s.p50)/float64(max(r.base.p50, 1)), float64(r.s.p99)/float64(max(r.base.p99, 1)))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.name, r.backend, r.load, ms(r.s.p50), ms(r.s.p99), ms(r.s.max), r.s.n, r.s.errs, cmp, r.target)
	}
	w.Flush()
}

// rowOrder is the position of the first row of r's scenario.
func rowOrder(rows []row, r row) int {
	for i, x := range rows {
		if x.name == r.name {
			return i
		}
	}
	return len(rows)
}

type row struct {
	name, load string
	backend    string // which Temporal, for rows that involve it
	s          summary
	base       *summary
	target     string
}

type summary struct {
	p50, p99, max time.Duration
	n             int
	errs          int // requests refused (non-200) or failed
}

func stats(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return summary{p50: idx(0.50), p99: idx(0.99), max: s[len(s)-1], n: len(s)}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// driver sends events and times replies as the fake Slack receives them.
type driver struct {
	b        *testing.B
	p        *platform.Platform
	client   *http.Client
	proxy    *testkit.Proxy // between the API and Temporal
	temporal client.Client

	mu      sync.Mutex
	waiting map[string]chan time.Time // reply text → receiver
	posted  map[string]int            // replies per tenant team
	cond    *sync.Cond
}

func newDriver(b *testing.B, p *platform.Platform) *driver {
	d := &driver{b: b, p: p, waiting: map[string]chan time.Time{}, posted: map[string]int{},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}}
	d.cond = sync.NewCond(&d.mu)
	p.Slack.OnPost(func(m fakeslack.Posted) {
		at := time.Now()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.posted[m.TeamID]++
		if ch, ok := d.waiting[m.Text]; ok {
			ch <- at
			delete(d.waiting, m.Text)
		}
		d.cond.Broadcast()
	})
	return d
}

func (d *driver) tenant(name string) platform.Tenant {
	return d.p.NewTenant("bench "+name, platform.AgentSpec{Name: "Bench", Models: []string{"openai/gpt-4o-mini"}})
}

// expect registers interest in the reply to text before it is sent.
func (d *driver) expect(text string) chan time.Time {
	ch := make(chan time.Time, 1)
	d.mu.Lock()
	d.waiting["echo: "+text] = ch
	d.mu.Unlock()
	return ch
}

func (d *driver) postMention(tn platform.Tenant, channel, text, thread string) (time.Duration, time.Time, bool) {
	body, _ := tn.Mention(channel, "U0BENCH", text, platform.NewTS(), thread)
	req := d.eventRequest(body)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return time.Since(start), start, false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), start, resp.StatusCode == http.StatusOK
}

// eventRequest is a client request carrying body signed as Slack signs it.
func (d *driver) eventRequest(body []byte) *http.Request {
	req, err := http.NewRequest(http.MethodPost, d.p.URL+"/webhooks/slack/events", bytes.NewReader(body))
	if err != nil {
		d.b.Fatalf("event request: %v", err)
	}
	req.Header = fakeslack.SignedRequest(d.p.SigningSecret, body, time.Now())
	return req
}

func (d *driver) timeGET(url string) time.Duration {
	start := time.Now()
	resp, err := d.client.Get(url)
	if err != nil {
		d.b.Errorf("get: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start)
}

// openLoop calls fn rate times a second for dur, without waiting for calls
// to finish (a late call does not delay the next: the load stays put).
func (d *driver) openLoop(fn func() (time.Duration, bool), rate int, dur time.Duration) summary {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, ok := fn()
			mu.Lock()
			lat = append(lat, l)
			if !ok {
				errs++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	s := stats(lat)
	s.errs = errs
	return s
}

// ack measures webhook acknowledgements at rate events/s for dur, spread
// over 500 conversations opened beforehand (so it sees signals to running
// conversations, not workflow starts), with the worker stopped during the
// load when stopWorker is set. It returns once every event is answered.
func (d *driver) ack(name string, rate int, dur time.Duration, stopWorker bool) summary {
	tn := d.tenant(name)
	threads := make([]string, 500)
	for i := range threads {
		threads[i] = fmt.Sprintf("%d.%06d", time.Now().Unix(), i)
		if _, _, ok := d.postMention(tn, fmt.Sprintf("C0ACK%03d", i), fmt.Sprintf("%s warm %d", tn.TeamID, i), threads[i]); !ok {
			d.b.Fatalf("%s: warm-up event %d was not acknowledged", name, i)
		}
	}
	d.drain(tn, len(threads), 10*time.Minute)
	if stopWorker {
		d.p.KillWorker()
	}
	var seq, accepted atomic.Int64
	s := d.openLoop(func() (time.Duration, bool) {
		n := seq.Add(1)
		c := int(n) % len(threads)
		lat, _, ok := d.postMention(tn, fmt.Sprintf("C0ACK%03d", c), fmt.Sprintf("%s ack %d", tn.TeamID, n), threads[c])
		if ok {
			accepted.Add(1)
		}
		return lat, ok
	}, rate, dur)
	if stopWorker {
		d.p.StartWorker()
	}
	d.drain(tn, len(threads)+int(accepted.Load()), 10*time.Minute)
	return s
}

// outage cuts Temporal off from the API, sends rate events/s for dur over
// 500 running conversations, restores it and times the backlog's drain: the
// acks during the outage, and a row with the rate at which the backlog was
// answered once Temporal was back.
func (d *driver) outage(name string, rate int, dur time.Duration) (summary, row) {
	tn := d.tenant(name)
	threads := make([]string, 500)
	for i := range threads {
		threads[i] = fmt.Sprintf("%d.%06d", time.Now().Unix(), i)
		if _, _, ok := d.postMention(tn, fmt.Sprintf("C0OUT%03d", i), fmt.Sprintf("%s warm %d", tn.TeamID, i), threads[i]); !ok {
			d.b.Fatalf("%s: warm-up event %d was not acknowledged", name, i)
		}
	}
	d.drain(tn, len(threads), 10*time.Minute)
	d.proxy.Cut()
	var seq, accepted atomic.Int64
	s := d.openLoop(func() (time.Duration, bool) {
		n := seq.Add(1)
		c := int(n) % len(threads)
		lat, _, ok := d.postMention(tn, fmt.Sprintf("C0OUT%03d", c), fmt.Sprintf("%s out %d", tn.TeamID, n), threads[c])
		if ok {
			accepted.Add(1)
		}
		return lat, ok
	}, rate, dur)
	_, ready := d.p.Ready(0)
	restored := time.Now()
	d.proxy.Restore()
	d.drain(tn, len(threads)+int(accepted.Load()), 10*time.Minute)
	took := time.Since(restored)
	return s, row{name: "backlog drain after the outage (restore → last reply)",
		load: fmt.Sprintf("%d events in %.1fs: %.0f answered/s (inbox held %d)", accepted.Load(), took.Seconds(),
			float64(accepted.Load())/took.Seconds(), ready.Details.Inbox.Pending), s: summary{n: int(accepted.Load())}}
}

// historyRow counts the events in the Temporal histories of a tenant's
// conversations (every run, continue-as-new included) per reply posted: the
// persisted writes a turn costs the server.
func (d *driver) historyRow(name string, tn platform.Tenant) row {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var events, runs int64
	var token []byte
	for {
		page, err := d.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TenantId = '%s'", tn.ID), NextPageToken: token})
		if err != nil {
			d.b.Errorf("history: list: %v", err)
			return row{name: name}
		}
		for _, ex := range page.Executions {
			// Visibility does not carry the length of a running history.
			desc, err := d.temporal.DescribeWorkflowExecution(ctx, ex.Execution.WorkflowId, ex.Execution.RunId)
			if err != nil {
				d.b.Errorf("history: describe: %v", err)
				return row{name: name}
			}
			events += desc.WorkflowExecutionInfo.HistoryLength
			runs++
		}
		if token = page.NextPageToken; len(token) == 0 {
			break
		}
	}
	d.mu.Lock()
	turns := d.posted[tn.TeamID]
	d.mu.Unlock()
	return row{name: name, load: fmt.Sprintf("%.1f events/turn (%d events, %d runs, %d turns)", float64(events)/float64(max(turns, 1)), events, runs, turns),
		s: summary{n: turns}}
}

// drain waits until a tenant's workspace has received n replies, so one
// scenario's backlog does not leak into the next.
func (d *driver) drain(tn platform.Tenant, n int, timeout time.Duration) {
	if d.b.Failed() {
		d.b.FailNow()
	}
	deadline := time.Now().Add(timeout)
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.posted[tn.TeamID] < n {
		if time.Now().After(deadline) {
			d.b.Errorf("drain: %d of %d replies after %s", d.posted[tn.TeamID], n, timeout)
			return
		}
		go func() { time.Sleep(100 * time.Millisecond); d.cond.Broadcast() }()
		d.cond.Wait()
	}
}

// turn sends one message and waits for its reply; it returns the latency
// from sending the webhook to the reply reaching Slack.
func (d *driver) turn(tn platform.Tenant, channel, thread, text string) (time.Duration, bool) {
	ch := d.expect(text)
	for {
		_, start, ok := d.postMention(tn, channel, text, thread)
		if !ok { // as Slack would: retry what was not acknowledged
			time.Sleep(100 * time.Millisecond)
			continue
		}
		select {
		case at := <-ch:
			return at.Sub(start), true
		case <-time.After(60 * time.Second):
			d.b.Errorf("no reply to %q within 60s", text)
			return 60 * time.Second, false
		}
	}
}

func (d *driver) closedLoop(tn platform.Tenant, conc int, dur time.Duration) (summary, float64) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	// Open each conversation first, so the measured turns exclude starts.
	threads := make([]string, conc)
	for i := range threads {
		threads[i] = platform.NewTS()
		d.turnAt(tn, fmt.Sprintf("C0CL%03d", i), threads[i], "", fmt.Sprintf("%s warm %d", tn.TeamID, i))
	}
	start := time.Now()
	end := start.Add(dur)
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; time.Now().Before(end); n++ {
				l, _ := d.turn(tn, fmt.Sprintf("C0CL%03d", i), threads[i], fmt.Sprintf("%s c%d n%d", tn.TeamID, i, n))
				mu.Lock()
				lat = append(lat, l)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return stats(lat), float64(len(lat)) / time.Since(start).Seconds()
}

// turnAt starts a thread with a message whose ts is the thread root.
func (d *driver) turnAt(tn platform.Tenant, channel, ts, thread, text string) time.Duration {
	ch := d.expect(text)
	body, _ := tn.Mention(channel, "U0BENCH", text, ts, thread)
	req := d.eventRequest(body)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		d.b.Fatalf("post event: %v", err)
	}
	resp.Body.Close()
	select {
	case at := <-ch:
		return at.Sub(start)
	case <-time.After(60 * time.Second):
		d.b.Fatalf("no reply to %q", text)
	}
	return 0
}

func (d *driver) openTurns(tn platform.Tenant, rate, convs int, dur time.Duration) summary {
	threads := make([]string, convs)
	for i := range threads {
		threads[i] = platform.NewTS()
		d.turnAt(tn, fmt.Sprintf("C0OP%03d", i), threads[i], "", fmt.Sprintf("%s warm %d", tn.TeamID, i))
	}
	var seq atomic.Int64
	return d.openLoop(func() (time.Duration, bool) {
		n := int(seq.Add(1))
		i := n % convs
		return d.turn(tn, fmt.Sprintf("C0OP%03d", i), threads[i], fmt.Sprintf("%s o%d", tn.TeamID, n))
	}, rate, dur)
}

func (d *driver) sequentialTurns(tn platform.Tenant, n int) []time.Duration {
	root := platform.NewTS()
	out := []time.Duration{d.turnAt(tn, "C0LONG", root, "", tn.TeamID+" turn 1")}
	for i := 2; i <= n; i++ {
		l, _ := d.turn(tn, "C0LONG", root, fmt.Sprintf("%s turn %d", tn.TeamID, i))
		out = append(out, l)
	}
	return out
}

// bareTurn times, sequentially, the HTTP calls a turn makes — a POST of a
// webhook-sized body to the API's HTTP stack, an LLM completion at the fake,
// a chat.postMessage at the fake — without the platform in between.
func (d *driver) bareTurn(n int) summary {
	body, _ := platform.Tenant{TeamID: "T0BASE", BotUserID: "U0BOT"}.Mention("C0BASE", "U0BENCH", "baseline", platform.NewTS(), "")
	cfg := openai.DefaultConfig(d.p.LLM.APIKey())
	cfg.BaseURL = d.p.LLM.OpenAIBaseURL()
	cfg.HTTPClient = d.client
	oa := openai.NewClientWithConfig(cfg)
	bot := "xoxb-" + fmt.Sprint(time.Now().UnixNano())
	d.p.Slack.AddWorkspace("T0BASE", bot, "U0BOT")
	var lat []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		// 404 from the API's router: the HTTP stack without a handler's work.
		resp, err := d.client.Post(d.p.URL+"/webhooks/baseline", "application/json", bytes.NewReader(body))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		_, err = oa.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessage{{Role: "system", Content: "You are Bench."}, {Role: "user", Content: "baseline"}}})
		if err != nil {
			d.b.Fatalf("baseline llm: %v", err)
		}
		req, _ := http.NewRequest(http.MethodPost, d.p.Slack.URL()+"chat.postMessage",
			strings.NewReader(`{"channel":"C0BASE","text":"echo: baseline","thread_ts":"1.0"}`))
		req.Header.Set("Authorization", "Bearer "+bot)
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		resp, err = d.client.Do(req)
		if err != nil {
			d.b.Fatalf("baseline slack: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
	}
	return stats(lat)
}

// poolRows measures the LLM pool against go-openai called directly, and the
// pool's fallback from a refused connection and past an open circuit.
func (d *driver) poolRows() []row {
	ctx := context.Background()
	const n = 2000
	quiet := slog.New(slog.DiscardHandler) // fallbacks are the point here, not news
	cfg := openai.DefaultConfig(d.p.LLM.APIKey())
	cfg.BaseURL = d.p.LLM.OpenAIBaseURL()
	direct := openai.NewClientWithConfig(cfg)
	pool := llm.NewPool([]llm.Provider{llm.NewOpenAI(llm.OpenAIConfig{APIKey: d.p.LLM.APIKey(), BaseURL: d.p.LLM.OpenAIBaseURL()})}, llm.PoolConfig{Logger: quiet})
	req := llm.Request{System: "You are Bench.", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
	var dl, pl []time.Duration
	for i := 0; i < n; i++ { // interleaved, so drift hits both alike
		start := time.Now()
		if _, err := direct.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessage{{Role: "system", Content: "You are Bench."}, {Role: "user", Content: "hi"}}}); err != nil {
			d.b.Fatalf("direct: %v", err)
		}
		dl = append(dl, time.Since(start))
		start = time.Now()
		if _, err := pool.Complete(ctx, []string{"openai/gpt-4o-mini"}, req); err != nil {
			d.b.Fatalf("pool: %v", err)
		}
		pl = append(pl, time.Since(start))
	}
	ds, ps := stats(dl), stats(pl)

	refused := llm.NewPool([]llm.Provider{
		llm.NewOllama(llm.OllamaConfig{BaseURL: fakellm.RefusedURL(d.b)}),
		llm.NewOpenAI(llm.OpenAIConfig{APIKey: d.p.LLM.APIKey(), BaseURL: d.p.LLM.OpenAIBaseURL()}),
	}, llm.PoolConfig{BreakerFailures: 1_000_000, Logger: quiet})
	var fb []time.Duration
	for i := 0; i < 200; i++ {
		resp, err := refused.Complete(ctx, []string{"ollama/llama3.2", "openai/gpt-4o-mini"}, req)
		if err != nil {
			d.b.Fatalf("fallback: %v", err)
		}
		fb = append(fb, resp.Attempts[0].Duration)
	}
	open := llm.NewPool([]llm.Provider{
		llm.NewOllama(llm.OllamaConfig{BaseURL: fakellm.RefusedURL(d.b)}),
		llm.NewOpenAI(llm.OpenAIConfig{APIKey: d.p.LLM.APIKey(), BaseURL: d.p.LLM.OpenAIBaseURL()}),
	}, llm.PoolConfig{BreakerFailures: 1, BreakerCooldown: time.Hour, Logger: quiet})
	_, _ = open.Complete(ctx, []string{"ollama/llama3.2", "openai/gpt-4o-mini"}, req) // opens ollama's circuit
	var sk []time.Duration
	for i := 0; i < 200; i++ {
		resp, err := open.Complete(ctx, []string{"ollama/llama3.2", "openai/gpt-4o-mini"}, req)
		if err != nil || !resp.Attempts[0].Skipped {
			d.b.Fatalf("open circuit: %v %+v", err, resp.Attempts)
		}
		sk = append(sk, resp.Attempts[0].Duration)
	}
	return []row{
		{name: "LLM call, go-openai directly", load: fmt.Sprintf("sequential, %d×", n), s: ds},
		{name: "LLM call through the pool", load: fmt.Sprintf("sequential, %d×, interleaved", n), s: ps, base: &ds, target: "overhead ≤ 50 µs"},
		{name: "fallback: refused connection (first attempt's time)", load: "200×", s: stats(fb), target: "≤ 5 ms"},
		{name: "fallback: open circuit skip", load: "200×", s: stats(sk), target: "≤ 1 ms"},
	}
}
