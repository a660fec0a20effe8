package slack

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The shipped manifest renders into a valid manifest whose request URLs are
// the server's, and its bot scopes are what the install asks for.
func TestManifestAndAuthorizeURL(t *testing.T) {
	m := Manifest("https://konstruct.example.com/")
	require.NotContains(t, m, PublicURLPlaceholder)
	require.True(t, strings.HasPrefix(m, "display_information:"), "the file's explanation is left out")
	var doc struct {
		OAuth struct {
			Redirects []string `yaml:"redirect_urls"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				URL    string   `yaml:"request_url"`
				Events []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			Interactivity struct {
				URL string `yaml:"request_url"`
			} `yaml:"interactivity"`
		} `yaml:"settings"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(m), &doc))
	require.Equal(t, []string{"https://konstruct.example.com/slack/oauth/callback"}, doc.OAuth.Redirects)
	require.Equal(t, "https://konstruct.example.com/webhooks/slack/events", doc.Settings.Events.URL)
	require.Equal(t, []string{"app_mention", "message.im"}, doc.Settings.Events.Events)
	require.Equal(t, "https://konstruct.example.com/webhooks/slack/interactions", doc.Settings.Interactivity.URL)
	require.Equal(t, []string{"app_mentions:read", "im:history", "im:read", "chat:write", "channels:history", "groups:history"}, BotScopes())

	for api, want := range map[string]string{
		"https://slack.com/api/":          "https://slack.com/oauth/v2/authorize",
		"http://127.0.0.1:4567/api/":      "http://127.0.0.1:4567/oauth/v2/authorize",
		"http://fake.test:99/some/prefix": "http://fake.test:99/oauth/v2/authorize",
	} {
		got, err := AuthorizeURL(api, "123.456", BotScopes(), "https://k.example.com/slack/oauth/callback", "st4te")
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(got, want+"?"), got)
		u, _ := url.Parse(got)
		require.Equal(t, "123.456", u.Query().Get("client_id"))
		require.Equal(t, "app_mentions:read,im:history,im:read,chat:write,channels:history,groups:history", u.Query().Get("scope"))
		require.Equal(t, "https://k.example.com/slack/oauth/callback", u.Query().Get("redirect_uri"))
		require.Equal(t, "st4te", u.Query().Get("state"))
	}
	_, err := AuthorizeURL("not a url", "1", nil, "x", "y")
	require.Error(t, err)
}
