package slack_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

const (
	team     = "T0TEAM"
	botToken = "xoxb-test-token"
	botUser  = "U0BOT"
	channel  = "C0GENERAL"
)

func newClient(t *testing.T) (*slack.Client, *fakeslack.Server) {
	t.Helper()
	fake := fakeslack.New(t)
	fake.AddWorkspace(team, botToken, botUser)
	return slack.NewClient(fake.URL(), &http.Client{Timeout: 5 * time.Second}), fake
}

func TestPostMessageInThreadWithMetadata(t *testing.T) {
	c, fake := newClient(t)
	ctx := context.Background()
	root := fake.AddUserMessage(channel, "U1", "<@U0BOT> hi", "", "")

	ts, err := c.PostMessage(ctx, botToken, slack.Outbound{Channel: channel, ThreadTS: root, Text: "Hello *there*", Key: "wf-1/turn-1/0"})
	require.NoError(t, err)
	require.NotEmpty(t, ts)

	msgs := fake.Messages(channel)
	require.Len(t, msgs, 2)
	got := msgs[1]
	require.Equal(t, ts, got.TS)
	require.Equal(t, root, got.ThreadTS)
	require.Equal(t, "Hello *there*", got.Text)
	require.Equal(t, botUser, got.User)
	require.NotNil(t, got.Metadata)
	require.Equal(t, slack.ReplyEventType, got.Metadata.EventType)
	require.Equal(t, "wf-1/turn-1/0", got.Metadata.Key())

	found, ok, err := c.FindByKey(ctx, botToken, channel, root, "wf-1/turn-1/0")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, ts, found)

	_, ok, err = c.FindByKey(ctx, botToken, channel, root, "wf-1/turn-1/1")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestPostMessageTopLevelWithoutKey(t *testing.T) {
	c, fake := newClient(t)
	ts, err := c.PostMessage(context.Background(), botToken, slack.Outbound{Channel: "D1", Text: "hi"})
	require.NoError(t, err)
	msgs := fake.Messages("D1")
	require.Len(t, msgs, 1)
	require.Equal(t, ts, msgs[0].TS)
	require.Empty(t, msgs[0].ThreadTS)
	require.Nil(t, msgs[0].Metadata)
}

func TestFindByKeyAfterLostResponse(t *testing.T) {
	c, fake := newClient(t)
	ctx := context.Background()
	root := fake.AddUserMessage(channel, "U1", "question", "", "")
	msg := slack.Outbound{Channel: channel, ThreadTS: root, Text: "answer", Key: "wf-9/turn-3/0"}

	fake.LoseNextResponse("chat.postMessage", 1)
	_, err := c.PostMessage(ctx, botToken, msg)
	require.Error(t, err)
	require.False(t, slack.IsPermanent(err), "a lost response is retryable: %v", err)
	require.True(t, strings.HasPrefix(err.Error(), "slack: chat.postMessage: "), err.Error())

	// The retry looks first, and finds what Slack stored.
	ts, ok, err := c.FindByKey(ctx, botToken, channel, root, msg.Key)
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, fake.Thread(channel, root), 2)
	require.Equal(t, fake.Thread(channel, root)[1].TS, ts)
	require.Equal(t, 1, fake.Calls("chat.postMessage"))
}

func TestFindByKeyPaginates(t *testing.T) {
	c, fake := newClient(t)
	ctx := context.Background()
	root := fake.AddUserMessage(channel, "U1", "question", "", "")
	for range 450 {
		fake.AddUserMessage(channel, "U1", "chatter", "", root)
	}
	ts, err := c.PostMessage(ctx, botToken, slack.Outbound{Channel: channel, ThreadTS: root, Text: "late", Key: "k"})
	require.NoError(t, err)

	found, ok, err := c.FindByKey(ctx, botToken, channel, root, "k")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, ts, found)
	require.Equal(t, 3, fake.Calls("conversations.replies"), "452 messages at 200 a page")
}

func TestFindByKeyMissingThread(t *testing.T) {
	c, _ := newClient(t)
	_, ok, err := c.FindByKey(context.Background(), botToken, channel, "1700000000.000001", "k")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestPermanentErrors(t *testing.T) {
	c, fake := newClient(t)
	ctx := context.Background()
	msg := slack.Outbound{Channel: channel, Text: "x", Key: "k"}

	_, err := c.PostMessage(ctx, "xoxb-unknown", msg)
	require.True(t, slack.IsPermanent(err))
	require.Equal(t, "invalid_auth", slack.ErrorCode(err))
	require.EqualError(t, err, "slack: chat.postMessage: invalid_auth")

	for _, code := range []string{"not_authed", "account_inactive", "token_revoked", "channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "missing_scope"} {
		fake.FailNextWithError("chat.postMessage", 1, code)
		_, err := c.PostMessage(ctx, botToken, msg)
		require.True(t, slack.IsPermanent(err), code)
		require.Equal(t, code, slack.ErrorCode(err))
		_, retry := slack.RetryAfter(err)
		require.False(t, retry)
	}

	_, err = c.PostMessage(ctx, botToken, slack.Outbound{Channel: channel, Text: strings.Repeat("x", 40001)})
	require.True(t, slack.IsPermanent(err))
	require.Equal(t, "msg_too_long", slack.ErrorCode(err))

	fake.RevokeToken(botToken)
	_, _, err = c.FindByKey(ctx, botToken, channel, "1.2", "k")
	require.True(t, slack.IsPermanent(err))
	require.EqualError(t, err, "slack: conversations.replies: invalid_auth")
}

func TestRetryableErrors(t *testing.T) {
	c, fake := newClient(t)
	ctx := context.Background()
	msg := slack.Outbound{Channel: channel, Text: "x"}

	for _, status := range []int{500, 502, 503, 504} {
		fake.FailNextWithStatus("chat.postMessage", 1, status)
		_, err := c.PostMessage(ctx, botToken, msg)
		require.Error(t, err)
		require.False(t, slack.IsPermanent(err), status)
		var se *slack.Error
		require.ErrorAs(t, err, &se)
		require.Equal(t, status, se.StatusCode)
		require.Equal(t, "chat.postMessage", se.Method)
	}
	for _, code := range []string{"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"} {
		fake.FailNextWithError("chat.postMessage", 1, code)
		_, err := c.PostMessage(ctx, botToken, msg)
		require.False(t, slack.IsPermanent(err), code)
		require.Equal(t, code, slack.ErrorCode(err))
	}
	require.Len(t, fake.Messages(channel), 0, "no failed call stored anything")

	// A 4xx that is not a rate limit will answer the same way again.
	fake.FailNextWithStatus("chat.postMessage", 1, http.StatusNotFound)
	_, err := c.PostMessage(ctx, botToken, msg)
	require.True(t, slack.IsPermanent(err))

	// Network errors: nothing is listening.
	dead := slack.NewClient("http://127.0.0.1:1/api/", nil)
	_, err = dead.PostMessage(ctx, botToken, msg)
	require.Error(t, err)
	require.False(t, slack.IsPermanent(err))
	require.True(t, strings.HasPrefix(err.Error(), "slack: chat.postMessage: "), err.Error())

	// A cancelled context is not the request's fault.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.PostMessage(cctx, botToken, msg)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, slack.IsPermanent(err))
}

func TestRateLimitRetryAfter(t *testing.T) {
	c, fake := newClient(t)
	fake.RateLimitNext("chat.postMessage", 1, 7*time.Second)
	_, err := c.PostMessage(context.Background(), botToken, slack.Outbound{Channel: channel, Text: "x"})
	require.Error(t, err)
	require.False(t, slack.IsPermanent(err))
	d, ok := slack.RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 7*time.Second, d)
	require.EqualError(t, err, "slack: chat.postMessage: rate limited, retry after 7s")

	// Without Retry-After it is still a retryable 429.
	fake.FailNextWithStatus("chat.postMessage", 1, http.StatusTooManyRequests)
	_, err = c.PostMessage(context.Background(), botToken, slack.Outbound{Channel: channel, Text: "x"})
	require.False(t, slack.IsPermanent(err))
	_, ok = slack.RetryAfter(err)
	require.False(t, ok)

	// And the next call goes through.
	_, err = c.PostMessage(context.Background(), botToken, slack.Outbound{Channel: channel, Text: "x"})
	require.NoError(t, err)
}

func TestAuthTest(t *testing.T) {
	c, _ := newClient(t)
	info, err := c.AuthTest(context.Background(), botToken)
	require.NoError(t, err)
	require.Equal(t, team, info.TeamID)
	require.Equal(t, botUser, info.BotUserID)
	require.NotEmpty(t, info.BotID)

	_, err = c.AuthTest(context.Background(), "xoxb-nope")
	require.True(t, slack.IsPermanent(err))
	require.EqualError(t, err, "slack: auth.test: invalid_auth")
}

func TestOAuthExchange(t *testing.T) {
	c, fake := newClient(t)
	fake.SetOAuthClient("client-id", "client-secret")
	fake.AddOAuthCode("code-1", team, "https://konstruct.example/slack/oauth/callback")
	ctx := context.Background()

	res, err := c.OAuthExchange(ctx, "client-id", "client-secret", "code-1", "https://konstruct.example/slack/oauth/callback")
	require.NoError(t, err)
	require.Equal(t, team, res.TeamID)
	require.Equal(t, fake.Workspace(team).TeamName, res.TeamName)
	require.Equal(t, botToken, res.BotToken)
	require.Equal(t, botUser, res.BotUserID)

	_, err = c.OAuthExchange(ctx, "client-id", "client-secret", "code-1", "https://konstruct.example/slack/oauth/callback")
	require.True(t, slack.IsPermanent(err), "codes are single-use")
	require.EqualError(t, err, "slack: oauth.v2.access: invalid_code")

	fake.AddOAuthCode("code-2", team, "")
	_, err = c.OAuthExchange(ctx, "client-id", "wrong", "code-2", "")
	require.Equal(t, "bad_client_secret", slack.ErrorCode(err))

	fake.FailNextWithStatus("oauth.v2.access", 1, 503)
	_, err = c.OAuthExchange(ctx, "client-id", "client-secret", "code-2", "")
	require.False(t, slack.IsPermanent(err))
	_, err = c.OAuthExchange(ctx, "client-id", "client-secret", "code-2", "")
	require.NoError(t, err)
}

func TestErrorUnwraps(t *testing.T) {
	c, fake := newClient(t)
	fake.FailNextWithError("chat.postMessage", 1, "is_archived")
	_, err := c.PostMessage(context.Background(), botToken, slack.Outbound{Channel: channel, Text: "x"})
	var se *slack.Error
	require.True(t, errors.As(err, &se))
	require.NotNil(t, errors.Unwrap(err))
	require.True(t, se.Permanent)
}
