package fakeslack_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

func call(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(body, &m), string(body))
	}
	return resp.StatusCode, resp.Header, m
}

func form(t *testing.T, fake *fakeslack.Server, method string, v url.Values) *http.Request {
	req, err := http.NewRequest(http.MethodPost, fake.URL()+method, strings.NewReader(v.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func jsonReq(t *testing.T, fake *fakeslack.Server, method, token, body string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, fake.URL()+method, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

func TestURLEndsInAPI(t *testing.T) {
	fake := fakeslack.New(t)
	require.True(t, strings.HasSuffix(fake.URL(), "/api/"))
}

func TestPostMessageFormAndJSON(t *testing.T) {
	fake := fakeslack.New(t)
	fake.AddWorkspace("T1", "xoxb-1", "UBOT")

	_, _, m := call(t, form(t, fake, "chat.postMessage", url.Values{
		"token": {"xoxb-1"}, "channel": {"C1"}, "text": {"hi"}, "thread_ts": {"1.000001"},
		"metadata": {`{"event_type":"konstruct_reply","event_payload":{"key":"k1"}}`},
	}))
	require.Equal(t, true, m["ok"], m)
	ts := m["ts"].(string)
	require.Equal(t, "C1", m["channel"])
	msg := m["message"].(map[string]any)
	require.Equal(t, "UBOT", msg["user"])
	require.Equal(t, "1.000001", msg["thread_ts"])

	_, _, m = call(t, jsonReq(t, fake, "chat.postMessage", "xoxb-1",
		`{"channel":"C1","text":"json","metadata":{"event_type":"konstruct_reply","event_payload":{"key":"k2"}}}`))
	require.Equal(t, true, m["ok"], m)

	msgs := fake.Messages("C1")
	require.Len(t, msgs, 2)
	require.Equal(t, ts, msgs[0].TS)
	require.Equal(t, "k1", msgs[0].Metadata.Key())
	require.Equal(t, "k2", msgs[1].Metadata.Key())
	require.Equal(t, "json", msgs[1].Text)
	require.Less(t, msgs[0].TS, msgs[1].TS)
	require.Len(t, fake.Messages(""), 2)
	require.Empty(t, fake.Messages("C2"))
}

func TestPostMessageValidation(t *testing.T) {
	fake := fakeslack.New(t)
	fake.AddWorkspace("T1", "xoxb-1", "UBOT")
	for _, tc := range []struct {
		v    url.Values
		want string
	}{
		{url.Values{"channel": {"C1"}, "text": {"x"}}, "not_authed"},
		{url.Values{"token": {"xoxb-2"}, "channel": {"C1"}, "text": {"x"}}, "invalid_auth"},
		{url.Values{"token": {"xoxb-1"}, "text": {"x"}}, "channel_not_found"},
		{url.Values{"token": {"xoxb-1"}, "channel": {"C1"}}, "no_text"},
		{url.Values{"token": {"xoxb-1"}, "channel": {"C1"}, "text": {strings.Repeat("é", 40001)}}, "msg_too_long"},
		{url.Values{"token": {"xoxb-1"}, "channel": {"C1"}, "text": {"x"}, "metadata": {"{"}}, "invalid_metadata_format"},
	} {
		status, _, m := call(t, form(t, fake, "chat.postMessage", tc.v))
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, false, m["ok"])
		require.Equal(t, tc.want, m["error"])
	}
	require.Empty(t, fake.Messages(""))
	require.Equal(t, 6, fake.Calls("chat.postMessage"))

	_, _, m := call(t, form(t, fake, "chat.nope", url.Values{"token": {"xoxb-1"}}))
	require.Equal(t, "unknown_method", m["error"])
}

func TestConversationsRepliesPagesAndMetadata(t *testing.T) {
	fake := fakeslack.New(t)
	fake.AddWorkspace("T1", "xoxb-1", "UBOT")
	root := fake.AddUserMessage("C1", "U1", "root", "", "")
	for range 4 {
		fake.AddUserMessage("C1", "U1", "reply", "", root)
	}
	fake.AddUserMessage("C1", "U1", "other thread", "", "")
	_, _, m := call(t, form(t, fake, "chat.postMessage", url.Values{
		"token": {"xoxb-1"}, "channel": {"C1"}, "text": {"bot"}, "thread_ts": {root},
		"metadata": {`{"event_type":"konstruct_reply","event_payload":{"key":"k"}}`},
	}))
	require.Equal(t, true, m["ok"])

	var all []any
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		v := url.Values{"token": {"xoxb-1"}, "channel": {"C1"}, "ts": {root}, "limit": {"4"}, "include_all_metadata": {"1"}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		_, _, m := call(t, form(t, fake, "conversations.replies", v))
		require.Equal(t, true, m["ok"], m)
		all = append(all, m["messages"].([]any)...)
		cursor = m["response_metadata"].(map[string]any)["next_cursor"].(string)
		require.Equal(t, cursor != "", m["has_more"])
		if cursor == "" {
			break
		}
	}
	require.Len(t, all, 6, "root, 4 replies and the bot's reply; not the other thread")
	last := all[5].(map[string]any)
	require.Equal(t, "bot", last["text"])
	require.Equal(t, "konstruct_reply", last["metadata"].(map[string]any)["event_type"])

	_, _, m = call(t, form(t, fake, "conversations.replies", url.Values{"token": {"xoxb-1"}, "channel": {"C1"}, "ts": {root}}))
	msgs := m["messages"].([]any)
	require.Len(t, msgs, 6)
	require.NotContains(t, msgs[5].(map[string]any), "metadata", "metadata only with include_all_metadata")

	_, _, m = call(t, form(t, fake, "conversations.replies", url.Values{"token": {"xoxb-1"}, "channel": {"C1"}, "ts": {"9.9"}}))
	require.Equal(t, "thread_not_found", m["error"])
}

func TestFailureInjection(t *testing.T) {
	fake := fakeslack.New(t)
	fake.AddWorkspace("T1", "xoxb-1", "UBOT")
	post := func() *http.Request {
		return form(t, fake, "chat.postMessage", url.Values{"token": {"xoxb-1"}, "channel": {"C1"}, "text": {"x"}})
	}

	fake.RateLimitNext("chat.postMessage", 1, 1500*time.Millisecond)
	fake.FailNextWithStatus("chat.postMessage", 1, 503)
	fake.FailNextWithError("chat.postMessage", 1, "is_archived")

	status, h, m := call(t, post())
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "2", h.Get("Retry-After"), "rounded up to whole seconds")
	require.Equal(t, "ratelimited", m["error"])

	status, _, _ = call(t, post())
	require.Equal(t, http.StatusServiceUnavailable, status)

	status, _, m = call(t, post())
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "is_archived", m["error"])

	status, _, m = call(t, post())
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, m["ok"])
	require.Len(t, fake.Messages("C1"), 1, "only the call that succeeded stored a message")

	fake.LoseNextResponse("chat.postMessage", 1)
	_, err := http.DefaultClient.Do(post())
	require.Error(t, err, "the connection is dropped without an answer")
	require.Len(t, fake.Messages("C1"), 2, "but the message was stored")
	require.Equal(t, 5, fake.Calls("chat.postMessage"))
}

func TestAuthTestAndAppsConnectionsOpen(t *testing.T) {
	fake := fakeslack.New(t)
	fake.AddWorkspace("T1", "xoxb-1", "UBOT")
	fake.AddAppToken("xapp-1")

	_, _, m := call(t, form(t, fake, "auth.test", url.Values{"token": {"xoxb-1"}}))
	require.Equal(t, "T1", m["team_id"])
	require.Equal(t, "UBOT", m["user_id"])

	_, _, m = call(t, jsonReq(t, fake, "apps.connections.open", "xapp-1", ""))
	require.Equal(t, true, m["ok"], m)
	require.True(t, strings.HasPrefix(m["url"].(string), "ws://"))

	_, _, m = call(t, jsonReq(t, fake, "apps.connections.open", "xoxb-1", ""))
	require.Equal(t, "not_allowed_token_type", m["error"])
}

func TestOAuthV2Access(t *testing.T) {
	fake := fakeslack.New(t)
	fake.AddWorkspace("T1", "xoxb-1", "UBOT")
	fake.AddOAuthCode("c1", "T1", "")

	resp, err := slackapi.GetOAuthV2Response(http.DefaultClient, "id", "secret", "c1", "", slackapi.OAuthOptionAPIURL(fake.URL()))
	require.NoError(t, err)
	require.Equal(t, "xoxb-1", resp.AccessToken)
	require.Equal(t, "bot", resp.TokenType)
	require.Equal(t, "T1", resp.Team.ID)
	require.Equal(t, "UBOT", resp.BotUserID)

	_, err = slackapi.GetOAuthV2Response(http.DefaultClient, "id", "secret", "c1", "", slackapi.OAuthOptionAPIURL(fake.URL()))
	require.EqualError(t, err, "invalid_code")
}

func TestWaitForMessages(t *testing.T) {
	fake := fakeslack.New(t)
	fake.AddWorkspace("T1", "xoxb-1", "UBOT")
	api := slackapi.New("xoxb-1", slackapi.OptionAPIURL(fake.URL()))
	go func() {
		for i := range 3 {
			_, _, _ = api.PostMessage("C1", slackapi.MsgOptionText(strings.Repeat("x", i+1), false))
		}
	}()
	msgs := fake.WaitForMessages(t, "C1", 3, 10*time.Second)
	require.Len(t, msgs, 3)
}

func TestSignedRequest(t *testing.T) {
	body := fakeslack.URLVerification("abc")
	now := time.Unix(1_531_420_618, 0)
	h := fakeslack.SignedRequest("secret", body, now)
	require.Equal(t, "1531420618", h.Get("X-Slack-Request-Timestamp"))

	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte("v0:1531420618:" + string(body)))
	require.Equal(t, "v0="+hex.EncodeToString(mac.Sum(nil)), h.Get("X-Slack-Signature"))

	r := fakeslack.NewEventsRequest("secret", body, now)
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, fakeslack.EventsPath, r.URL.Path)
	require.Equal(t, h.Get("X-Slack-Signature"), r.Header.Get("X-Slack-Signature"))
	got, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	require.Equal(t, body, got)
}

// Slack's documented signing example.
func TestSignatureMatchesSlackDocsExample(t *testing.T) {
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	require.Equal(t, "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
		fakeslack.Signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", []byte(body)))
}

// The builders produce payloads slack-go's own parser understands as Slack's.
func TestBuildersParseWithSlackevents(t *testing.T) {
	ev, err := slackevents.ParseEvent(fakeslack.AppMention("T1", "C1", "U1", "<@UBOT> hi", "1700000000.000100", "1699999999.000001", "Ev1"),
		slackevents.OptionNoVerifyToken())
	require.NoError(t, err)
	require.Equal(t, slackevents.CallbackEvent, ev.Type)
	require.Equal(t, "T1", ev.TeamID)
	am, ok := ev.InnerEvent.Data.(*slackevents.AppMentionEvent)
	require.True(t, ok, "%T", ev.InnerEvent.Data)
	require.Equal(t, "<@UBOT> hi", am.Text)
	require.Equal(t, "C1", am.Channel)
	require.Equal(t, "1699999999.000001", am.ThreadTimeStamp)
	cb := ev.Data.(*slackevents.EventsAPICallbackEvent)
	require.Equal(t, "Ev1", cb.EventID)
	require.Equal(t, 1700000000, cb.EventTime)

	ev, err = slackevents.ParseEvent(fakeslack.DirectMessage("T1", "D1", "U1", "hello", "1700000000.000100", "", "Ev2"),
		slackevents.OptionNoVerifyToken())
	require.NoError(t, err)
	me, ok := ev.InnerEvent.Data.(*slackevents.MessageEvent)
	require.True(t, ok, "%T", ev.InnerEvent.Data)
	require.Equal(t, "im", me.ChannelType)
	require.Equal(t, "hello", me.Text)

	ev, err = slackevents.ParseEvent(fakeslack.MessageChanged("T1", "D1", "im", "U1", "new", "1700000000.000100", "Ev3"),
		slackevents.OptionNoVerifyToken())
	require.NoError(t, err)
	me = ev.InnerEvent.Data.(*slackevents.MessageEvent)
	require.Equal(t, "message_changed", me.SubType)
	require.Equal(t, "new", me.Message.Text)

	ev, err = slackevents.ParseEvent(fakeslack.URLVerification("xyz"), slackevents.OptionNoVerifyToken())
	require.NoError(t, err)
	require.Equal(t, "xyz", ev.Data.(*slackevents.EventsAPIURLVerificationEvent).Challenge)
}

func TestEventOptions(t *testing.T) {
	var env map[string]any
	require.NoError(t, json.Unmarshal(fakeslack.DirectMessage("T1", "D1", "U1", "x", "1700000000.000100", "", "Ev1",
		fakeslack.WithBotUserID("UB"), fakeslack.WithAPIAppID("A9"), fakeslack.WithEventTime(42),
		fakeslack.WithSubtype("file_share"), fakeslack.WithEventField("client_msg_id", nil)), &env))
	require.Equal(t, "A9", env["api_app_id"])
	require.Equal(t, float64(42), env["event_time"])
	require.Equal(t, "UB", env["authorizations"].([]any)[0].(map[string]any)["user_id"])
	ev := env["event"].(map[string]any)
	require.Equal(t, "file_share", ev["subtype"])
	require.NotContains(t, ev, "client_msg_id")
}
