package slack_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
)

func parse(t *testing.T, body []byte) slack.Envelope {
	t.Helper()
	env, err := slack.ParseEvent(body)
	require.NoError(t, err)
	return env
}

func TestParseURLVerification(t *testing.T) {
	env := parse(t, fakeslack.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"))
	require.Equal(t, slack.TypeURLVerification, env.Type)
	require.Equal(t, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", env.Challenge)
	require.Nil(t, env.Event)
	require.Empty(t, env.IgnoredReason)
}

func TestParseAppMention(t *testing.T) {
	body := fakeslack.AppMention("T1", "C1", "U1", "<@UBOT> what's the plan?", "1700000000.000100", "", "Ev1")
	env := parse(t, body)
	require.Equal(t, slack.TypeEventCallback, env.Type)
	require.Equal(t, "T1", env.TeamID)
	require.Equal(t, "Ev1", env.EventID)
	require.Equal(t, int64(1700000000), env.EventTime)
	require.Equal(t, "UBOT", env.BotUserID)
	require.Equal(t, fakeslack.DefaultAPIAppID, env.APIAppID)
	require.Empty(t, env.IgnoredReason)
	require.Equal(t, &slack.Message{
		TeamID:      "T1",
		ChannelID:   "C1",
		ChannelType: "channel",
		UserID:      "U1",
		Text:        "what's the plan?",
		TS:          "1700000000.000100",
		Kind:        slack.KindAppMention,
	}, env.Event)
	require.Equal(t, "1700000000.000100", env.Event.ThreadRoot())
}

func TestParseAppMentionInThread(t *testing.T) {
	body := fakeslack.AppMention("T1", "G1", "U1", "<@UBOT|konstruct>: and then?", "1700000001.000200", "1700000000.000100", "Ev2")
	env := parse(t, body)
	require.NotNil(t, env.Event)
	require.Equal(t, "and then?", env.Event.Text)
	require.Equal(t, "group", env.Event.ChannelType)
	require.Equal(t, "1700000000.000100", env.Event.ThreadTS)
	require.Equal(t, "1700000000.000100", env.Event.ThreadRoot())
}

func TestParseAppMentionStripsOnlyLeadingBotMention(t *testing.T) {
	tests := map[string]string{
		"<@UBOT> hi":                   "hi",
		"<@UBOT>":                      "",
		"<@UBOT>\n\nline two":          "line two",
		"<@UBOT> :wave: hi":            ":wave: hi",
		"<@UBOT>, please":              "please",
		"hey <@UBOT> do it":            "hey <@UBOT> do it",
		"<@UALICE> ask <@UBOT>":        "<@UALICE> ask <@UBOT>",
		"<@UBOT> cc <@UALICE> thanks!": "cc <@UALICE> thanks!",
		"<@UBOT":                       "<@UBOT",
	}
	for in, want := range tests {
		body := fakeslack.AppMention("T1", "C1", "U1", in, "1700000000.000100", "", "Ev1", fakeslack.WithBotUserID("UBOT"))
		env := parse(t, body)
		require.NotNil(t, env.Event, in)
		require.Equal(t, want, env.Event.Text, in)
	}
}

func TestParseAppMentionWithoutAuthorizations(t *testing.T) {
	// Slack's documented example payload, without authorizations: the bot is
	// unknown, so app_mention's leading mention is taken to be the bot's.
	body := []byte(`{
		"token": "ZZZZZZWSxiZZZ2yIvs3peJ",
		"team_id": "T123ABC456",
		"api_app_id": "A123ABC456",
		"event": {
			"type": "app_mention",
			"user": "U123ABC456",
			"text": "<@U0LAN0Z89> is it everything a river should be?",
			"ts": "1515449522.000016",
			"channel": "C123ABC456",
			"event_ts": "1515449522000016"
		},
		"type": "event_callback",
		"event_id": "Ev123ABC456",
		"event_time": 1515449522000016,
		"authed_users": ["U0LAN0Z89"]
	}`)
	env := parse(t, body)
	require.Empty(t, env.BotUserID)
	require.NotNil(t, env.Event)
	require.Equal(t, "is it everything a river should be?", env.Event.Text)
	require.Equal(t, "T123ABC456", env.Event.TeamID)
	require.Equal(t, "1515449522.000016", env.Event.ThreadRoot())
}

func TestParseDirectMessage(t *testing.T) {
	body := fakeslack.DirectMessage("T1", "D1", "U1", "Hello hello can you hear me?", "1355517523.000005", "", "Ev0PV52K21")
	env := parse(t, body)
	require.Equal(t, &slack.Message{
		TeamID:      "T1",
		ChannelID:   "D1",
		ChannelType: "im",
		UserID:      "U1",
		Text:        "Hello hello can you hear me?",
		TS:          "1355517523.000005",
		Kind:        slack.KindDirect,
	}, env.Event)

	reply := parse(t, fakeslack.DirectMessage("T1", "D1", "U1", "more", "1355517524.000001", "1355517523.000005", "Ev2"))
	require.Equal(t, "1355517523.000005", reply.Event.ThreadRoot())
}

func TestParseIgnored(t *testing.T) {
	const ts = "1700000000.000100"
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"bot message by bot_id", fakeslack.DirectMessage("T1", "D1", "UBOT", "I am a bot", ts, "", "Ev1", fakeslack.WithBotID("B1")), slack.IgnoredBotMessage},
		{"bot_message subtype", fakeslack.DirectMessage("T1", "D1", "", "legacy bot", ts, "", "Ev1", fakeslack.WithSubtype("bot_message"), fakeslack.WithEventField("user", nil)), slack.IgnoredBotMessage},
		{"bot mentioning us", fakeslack.AppMention("T1", "C1", "UOTHERBOT", "<@UBOT> hi", ts, "", "Ev1", fakeslack.WithBotID("B2")), slack.IgnoredBotMessage},
		{"own user", fakeslack.DirectMessage("T1", "D1", fakeslack.DefaultBotUserID, "echo", ts, "", "Ev1"), slack.IgnoredOwnMessage},
		{"edit", fakeslack.MessageChanged("T1", "D1", "im", "U1", "edited", ts, "Ev1"), slack.IgnoredEdit},
		{"deletion", fakeslack.MessageDeleted("T1", "D1", "im", ts, "Ev1"), slack.IgnoredDeletion},
		{"other subtype", fakeslack.DirectMessage("T1", "D1", "U1", "/me waves", ts, "", "Ev1", fakeslack.WithSubtype("me_message")), slack.IgnoredSubtype},
		{"channel_join", fakeslack.ChannelMessage("T1", "C1", "U1", "<@U1> has joined the channel", ts, "", "Ev1", fakeslack.WithSubtype("channel_join")), slack.IgnoredSubtype},
		{"channel message", fakeslack.ChannelMessage("T1", "C1", "U1", "<@UBOT> hi", ts, "", "Ev1"), slack.IgnoredNotDM},
		{"mpim message", fakeslack.ChannelMessage("T1", "G1", "U1", "hi all", ts, "", "Ev1", fakeslack.WithEventField("channel_type", "mpim")), slack.IgnoredNotDM},
		{"app_mention in a DM", fakeslack.AppMention("T1", "D1", "U1", "<@UBOT> hi", ts, "", "Ev1"), slack.IgnoredMentionInDM},
		{"no user", fakeslack.DirectMessage("T1", "D1", "U1", "hi", ts, "", "Ev1", fakeslack.WithEventField("user", nil)), slack.IgnoredEmpty},
		{"other event type", []byte(`{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"reaction_added","user":"U1","reaction":"thumbsup","item":{"type":"message","channel":"C1","ts":"1.2"}}}`), slack.IgnoredEventType},
		{"event with object channel", []byte(`{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"im_created","user":"U1","channel":{"id":"D1","is_im":true}}}`), slack.IgnoredEventType},
		{"no event", []byte(`{"type":"event_callback","team_id":"T1","event_id":"Ev1"}`), slack.IgnoredNoEvent},
		{"app_rate_limited", []byte(`{"token":"x","type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820,"api_app_id":"A1"}`), slack.IgnoredNotEventCallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := parse(t, tt.body)
			require.Nil(t, env.Event)
			require.Equal(t, tt.want, env.IgnoredReason)
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"truncated":         `{"type":"event_callback","event":{"type":"app_men`,
		"not json":          `type=event_callback`,
		"empty":             ``,
		"array":             `[1,2]`,
		"wrong type, ours":  `{"type":"event_callback","event":{"type":"app_mention","text":42}}`,
		"wrong outer field": `{"type":"event_callback","event_time":"soon","event":{"type":"reaction_added"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := slack.ParseEvent([]byte(body))
			require.Error(t, err)
			require.ErrorContains(t, err, "slack: parse event:")
		})
	}
	_, err := slack.ParseEvent([]byte(`{"type":`))
	var syntax *json.SyntaxError
	require.ErrorAs(t, err, &syntax, "the JSON error is wrapped")
}

// A reply in a channel's thread that does not mention the bot is a thread
// reply (a staff reply when the thread is a handoff's), even when also sent
// to the channel; a message starting a thread, or a bot's, is not.
func TestParseThreadReply(t *testing.T) {
	const root, ts = "1700000000.000100", "1700000001.000200"
	env := parse(t, fakeslack.ChannelMessage("T1", "C0SUPPORT", "U0STAFF", "<@UBOT> on it", ts, root, "Ev1", fakeslack.WithBotUserID("UBOT")))
	require.Equal(t, &slack.Message{TeamID: "T1", ChannelID: "C0SUPPORT", ChannelType: "channel", UserID: "U0STAFF",
		Text: "on it", TS: ts, ThreadTS: root, Kind: slack.KindThreadReply}, env.Event, "the bot's mention is stripped")

	env = parse(t, fakeslack.ChannelMessage("T1", "C0SUPPORT", "U0STAFF", "also to the channel", ts, root, "Ev2",
		fakeslack.WithSubtype("thread_broadcast")))
	require.NotNil(t, env.Event)
	require.Equal(t, slack.KindThreadReply, env.Event.Kind)

	for name, body := range map[string][]byte{
		"thread root": fakeslack.ChannelMessage("T1", "C0SUPPORT", "U0STAFF", "new topic", root, root, "Ev3"),
		"no thread":   fakeslack.ChannelMessage("T1", "C0SUPPORT", "U0STAFF", "new topic", ts, "", "Ev4"),
		"bot relay":   fakeslack.ChannelMessage("T1", "C0SUPPORT", "UBOT", "relayed", ts, root, "Ev5", fakeslack.WithBotID("B1")),
	} {
		require.Nil(t, parse(t, body).Event, name)
	}
}
