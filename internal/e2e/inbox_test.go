package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// While the API process cannot reach Temporal (its connection runs through a
// proxy the test cuts; the shared dev server keeps running for everyone
// else), every verified event is acknowledged 200 from the inbox, /readyz
// stays 200 but says degraded with the backlog, and nothing is answered.
// When Temporal is back each event is answered once, in order per thread.
func TestTemporalOutageLosesNothingAndAnswersInOrder(t *testing.T) {
	proxy := testkit.NewProxy(t, testkit.TemporalAddress())
	p := platform.Start(t, platform.Options{ServeEnv: map[string]string{"KONSTRUCT_TEMPORAL_ADDRESS": proxy.Addr()}})
	echo(p)
	tn := p.NewTenant("Outage", platform.AgentSpec{Name: "Ollie"})
	warm := platform.NewTS()
	body, _ := tn.Mention("C0OUT0", "U0ALICE", "before the outage", warm, "")
	status, _ := p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	p.Slack.WaitForMessages(t, "C0OUT0", 1, replyTimeout)

	proxy.Cut()
	const threads, perThread = 3, 4
	roots := make([]string, threads)
	for i := 0; i < perThread; i++ {
		for c := 0; c < threads; c++ {
			channel := fmt.Sprintf("C0OUT%d", c)
			ts := platform.NewTS()
			if i == 0 {
				roots[c] = ts
			}
			thread := roots[c]
			if i == 0 {
				thread = ""
			}
			if c == 0 {
				thread = warm // C0OUT0 continues the running conversation
			}
			body, _ := tn.Mention(channel, "U0ALICE", fmt.Sprintf("c%d m%d", c, i), ts, thread)
			status, _ := p.PostEvent(body, 0)
			require.Equal(t, http.StatusOK, status, "event %d of thread %d acknowledged during the outage", i, c)
		}
	}
	// A retry of an event already recorded is acknowledged as a duplicate.
	status, _ = p.PostEvent(body, 1)
	require.Equal(t, http.StatusOK, status)

	var ready platform.Readiness
	require.Eventually(t, func() bool {
		var code int
		code, ready = p.Ready(0)
		return code == http.StatusOK && ready.Details.Inbox.Pending == threads*perThread
	}, 15*time.Second, 100*time.Millisecond, "readyz reports the backlog: %+v", ready)
	require.Equal(t, "degraded", ready.Status)
	require.Contains(t, ready.Degraded, "temporal")
	require.Equal(t, "ok", ready.Checks["postgres"])
	require.Contains(t, metricsText(t, p), fmt.Sprintf("konstruct_inbox_pending %d", threads*perThread))
	require.Len(t, p.Slack.Messages(""), 1, "nothing answered while Temporal is unreachable")
	// KONSTRUCT_E2E_OUTAGE (say 10m) holds the outage that long before
	// Temporal comes back: the backlog waits in Postgres, whatever the time.
	if hold := os.Getenv("KONSTRUCT_E2E_OUTAGE"); hold != "" {
		d, err := time.ParseDuration(hold)
		require.NoError(t, err, "KONSTRUCT_E2E_OUTAGE")
		t.Logf("holding the outage for %s", d)
		time.Sleep(d)
		code, r := p.Ready(0)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, threads*perThread, int(r.Details.Inbox.Pending), "the backlog is intact after %s", d)
		require.Len(t, p.Slack.Messages(""), 1, "nothing answered during the outage")
		t.Logf("after %s: readyz %s, %d events waiting", d, r.Status, r.Details.Inbox.Pending)
	}

	proxy.Restore()
	for c := 0; c < threads; c++ {
		channel := fmt.Sprintf("C0OUT%d", c)
		want := perThread
		var texts []string
		if c == 0 {
			want++
			texts = append(texts, "echo: before the outage")
		}
		for i := 0; i < perThread; i++ {
			texts = append(texts, fmt.Sprintf("echo: c%d m%d", c, i))
		}
		msgs := p.Slack.WaitForMessages(t, channel, want, 60*time.Second)
		var got []string
		for _, m := range msgs {
			got = append(got, m.Text)
		}
		require.Equal(t, texts, got, "thread %d answered once each, in order", c)
	}
	barrier(t, p, tn, "C0OUT1", roots[1], perThread+1)
	require.Len(t, p.Slack.Messages(""), 1+threads*perThread+1, "no event answered twice")
	require.Eventually(t, func() bool {
		code, r := p.Ready(0)
		return code == http.StatusOK && r.Status == "ok" && r.Details.Inbox.Pending == 0
	}, 15*time.Second, 100*time.Millisecond, "readyz ok again with an empty inbox")
}

// Two API and two worker processes share a load; one of each is killed with
// SIGKILL in the middle of it. Every event acknowledged 200 is answered
// exactly once: the killed API's inbox claims run out and the other serve
// process hands them over, the killed worker's tasks move to the other.
func TestTwoOfEachWithOneOfEachKilledAnswersEveryAcceptedEventOnce(t *testing.T) {
	p := platform.Start(t, platform.Options{Serves: 2, Workers: 2, Env: map[string]string{
		"KONSTRUCT_INBOX_LEASE":                   "3s",
		"KONSTRUCT_RATE_LIMIT_TENANT_PER_MINUTE":  "100000",
		"KONSTRUCT_RATE_LIMIT_CHANNEL_PER_MINUTE": "100000",
	}})
	echo(p)
	tn := p.NewTenant("Many", platform.AgentSpec{Name: "Manny"})
	const convs, perConv = 20, 8
	var (
		wg       sync.WaitGroup
		accepted atomic.Int64
		byServe1 atomic.Int64 // accepted by the process about to be killed
		afterAll atomic.Int64 // accepted after both kills
		killed   atomic.Bool
		mu       sync.Mutex
		texts    = map[string][]string{} // channel → accepted texts in order
	)
	for c := 0; c < convs; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			channel := fmt.Sprintf("C0MANY%02d", c)
			root := platform.NewTS()
			for i := 0; i < perConv; i++ {
				ts, thread := platform.NewTS(), root
				if i == 0 {
					ts, thread = root, ""
				}
				text := fmt.Sprintf("c%d m%d", c, i)
				body, _ := tn.Mention(channel, "U0ALICE", text, ts, thread)
				// Like Slack behind a load balancer: retry on the other
				// process what was not acknowledged.
				for retry := 0; ; retry++ {
					target := (c + retry) % 2
					if killed.Load() {
						target = 0
					}
					status, err := p.TryPostEventTo(target, body, retry)
					if err == nil && status == http.StatusOK {
						accepted.Add(1)
						if target == 1 {
							byServe1.Add(1)
						}
						if killed.Load() {
							afterAll.Add(1)
						}
						mu.Lock()
						texts[channel] = append(texts[channel], "echo: "+text)
						mu.Unlock()
						break
					}
					require.Less(t, retry, 100, "event never acknowledged")
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(150 * time.Millisecond)
			}
		}(c)
	}
	time.Sleep(400 * time.Millisecond)
	p.KillServeAt(1)
	p.KillWorkerAt(1)
	killed.Store(true)
	wg.Wait()
	require.EqualValues(t, convs*perConv, accepted.Load())
	require.Positive(t, byServe1.Load(), "the killed API process took part of the load")
	require.Positive(t, afterAll.Load(), "the load went on after the kills")

	for c := 0; c < convs; c++ {
		channel := fmt.Sprintf("C0MANY%02d", c)
		msgs := p.Slack.WaitForMessages(t, channel, perConv, 90*time.Second)
		var got []string
		for _, m := range msgs {
			got = append(got, m.Text)
		}
		mu.Lock()
		want := texts[channel]
		mu.Unlock()
		require.Equal(t, want, got, "%s: every accepted event answered, in order", channel)
	}
	barrier(t, p, tn, "C0MANY00", "", perConv+1)
	var replies int
	for _, m := range p.Slack.Messages("") {
		if strings.HasPrefix(m.Text, "echo: c") {
			replies++
		}
	}
	require.Equal(t, convs*perConv, replies, "each accepted event answered exactly once")
}
