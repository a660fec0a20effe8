package slack

import (
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/konstruct/konstruct"
)

// PublicURLPlaceholder is where the manifest takes the server's public URL.
const PublicURLPlaceholder = "${KONSTRUCT_PUBLIC_URL}"

// Manifest is the Slack app manifest shipped in the repository with the
// server's public URL filled in (the request URLs of the events, the
// interactivity and the OAuth redirect), ready to paste into Slack: without
// the file's leading comment, which explains the placeholder.
func Manifest(publicURL string) string {
	m := konstruct.SlackAppManifest
	for strings.HasPrefix(m, "#") {
		_, m, _ = strings.Cut(m, "\n")
	}
	return strings.ReplaceAll(m, PublicURLPlaceholder, strings.TrimRight(publicURL, "/"))
}

// BotScopes are the bot token scopes the manifest asks for, in its order:
// what "Add to Slack" requests.
func BotScopes() []string { return manifestScopes }

var manifestScopes = func() []string {
	var m struct {
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
	}
	if err := yaml.Unmarshal([]byte(konstruct.SlackAppManifest), &m); err != nil || len(m.OAuth.Scopes.Bot) == 0 {
		panic(fmt.Sprintf("slack: slack-app-manifest.yaml has no oauth_config.scopes.bot (%v)", err))
	}
	return m.OAuth.Scopes.Bot
}()

// AuthorizeURL is Slack's OAuth v2 consent page for installing the app with
// scopes, sending the person back to redirectURI with state. Its origin is
// the Web API's (https://slack.com/api/ → https://slack.com/oauth/v2/authorize),
// so a test pointing KONSTRUCT_SLACK_API_URL at a fake gets the fake's page.
func AuthorizeURL(apiURL, clientID string, scopes []string, redirectURI, state string) (string, error) {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("slack: authorize URL: bad API URL %q", apiURL)
	}
	q := url.Values{}
	q.Set("client_id", clientID)
	q.Set("scope", strings.Join(scopes, ","))
	q.Set("redirect_uri", redirectURI)
	q.Set("state", state)
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/oauth/v2/authorize", RawQuery: q.Encode()}).String(), nil
}
