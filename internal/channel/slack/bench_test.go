package slack_test

import (
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

// benchBody is a realistic app_mention payload (about 1 KB, blocks included).
var benchBody = fakeslack.AppMention("T0TEAM", "C0GENERAL", "U0ALICE",
	"<@U0BOT> can you summarise yesterday's incident report and list the follow-up actions with owners?",
	"1700000000.000100", "1699999990.000050", "Ev0BENCH")

func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	h := fakeslack.SignedRequest(secret, benchBody, now)
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := slack.Verify(h, benchBody, secret, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySlackGo is the baseline: slack-go's SecretsVerifier.
func BenchmarkVerifySlackGo(b *testing.B) {
	h := fakeslack.SignedRequest(secret, benchBody, time.Now())
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		sv, err := slackapi.NewSecretsVerifier(h, secret)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = sv.Write(benchBody)
		if err := sv.Ensure(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEvent(b *testing.B) {
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := slack.ParseEvent(benchBody)
		if err != nil || env.Event == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEventSlackevents is the baseline: slackevents.ParseEvent,
// which yields a typed event but no normalised Message.
func BenchmarkParseEventSlackevents(b *testing.B) {
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := slackevents.ParseEvent(benchBody, slackevents.OptionNoVerifyToken()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplitText(b *testing.B) {
	text := string(make([]byte, 0))
	for range 300 {
		text += "All work and no play makes Jack a dull boy.\n"
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		slack.SplitText(text, slack.MaxPartChars)
	}
}
