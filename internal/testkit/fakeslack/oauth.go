package fakeslack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// Slack's OAuth v2 consent page, as "Add to Slack" meets it:
//
//   - GET /oauth/v2/authorize?client_id&scope&redirect_uri&state shows the
//     consent page for the workspace the fake's user is signed in to
//     (SetInstallWorkspace), listing the scopes asked for, with Allow and
//     Cancel;
//   - Allow sends the browser to redirect_uri?code=…&state=…, with a one-time
//     code oauth.v2.access exchanges for the workspace's bot token; Cancel
//     sends it to redirect_uri?error=access_denied&state=….
//
// A client ID other than the one SetOAuthClient registered, or a request
// without redirect_uri or scope, gets Slack's error page instead.

// SetInstallWorkspace signs the fake's browser user in to workspace teamID
// (added with AddWorkspace): the consent page installs into it.
func (s *Server) SetInstallWorkspace(teamID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installTeam = teamID
}

// SetTeamName names workspace teamID as Slack would report it (auth.test,
// oauth.v2.access, the consent page).
func (s *Server) SetTeamName(teamID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.byTeam[teamID]; w != nil {
		w.TeamName = name
	}
}

// AuthorizeURL is the fake's consent page (the path Slack serves it at).
func (s *Server) AuthorizeURL() string { return s.srv.URL + "/oauth/v2/authorize" }

// AuthorizeRequests returns the query of every consent page request.
func (s *Server) AuthorizeRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.authorizes...)
}

// Decide answers a consent page request (its full URL) as a person pressing
// Allow (allow) or Cancel would, and returns where Slack sends the browser.
func (s *Server) Decide(authorizeURL string, allow bool) (string, error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg := s.checkAuthorizeLocked(u.Query()); msg != "" {
		return "", fmt.Errorf("fakeslack: authorize: %s", msg)
	}
	return s.decideLocked(u.Query(), allow)
}

var scopeWords = map[string]string{
	"app_mentions:read": "View messages that directly mention @Konstruct in conversations that the app is in",
	"chat:write":        "Send messages as @Konstruct",
	"im:history":        "View messages and other content in direct messages that Konstruct has been added to",
	"im:read":           "View basic information about direct messages that Konstruct has been added to",
	"channels:history":  "View messages and other content in public channels that Konstruct has been added to",
	"groups:history":    "View messages and other content in private channels that Konstruct has been added to",
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Slack</title>
<style>
body { margin: 0; font-family: Lato, "Helvetica Neue", Arial, sans-serif; background: #f8f8f8; color: #1d1c1d; }
.bar { background: #4a154b; color: #fff; padding: 14px 28px; font-weight: 900; font-size: 22px; letter-spacing: -.5px; }
.card { max-width: 560px; margin: 48px auto; background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); padding: 36px 40px; }
h1 { font-size: 24px; margin: 0 0 8px; } .ws { color: #616061; margin-bottom: 24px; }
h2 { font-size: 15px; margin: 22px 0 10px; } li { margin-bottom: 8px; font-size: 15px; }
.buttons { display: flex; gap: 12px; justify-content: flex-end; margin-top: 28px; }
button { font: inherit; font-weight: 700; font-size: 15px; padding: 10px 22px; border-radius: 4px; cursor: pointer; }
.allow { background: #007a5a; color: #fff; border: 0; } .cancel { background: #fff; border: 1px solid #bbb; }
</style></head><body>
<div class="bar">slack</div>
<div class="card">
{{if .Error}}<h1>Something went wrong</h1><p>{{.Error}}</p>{{else}}
<h1>Konstruct is requesting permission to access the {{.Team}} Slack workspace</h1>
<div class="ws">{{.Team}} · {{.TeamID}}</div>
<h2>What will Konstruct be able to view and do?</h2>
<ul>{{range .Scopes}}<li data-scope="{{.Name}}">{{.Words}}</li>{{end}}</ul>
<form method="post" action="/oauth/v2/authorize/decision">
{{range $k, $v := .Query}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<div class="buttons"><button class="cancel" name="decision" value="deny" id="slack-cancel">Cancel</button>
<button class="allow" name="decision" value="allow" id="slack-allow">Allow</button></div>
</form>{{end}}
</div></body></html>`))

type scopeLine struct{ Name, Words string }

func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.authorizes = append(s.authorizes, q)
	s.notifyLocked()
	msg := s.checkAuthorizeLocked(q)
	team := s.byTeam[s.installTeam]
	s.mu.Unlock()
	data := map[string]any{"Error": msg, "Query": q}
	if msg == "" {
		data["Team"], data["TeamID"] = team.TeamName, team.TeamID
		var lines []scopeLine
		for _, sc := range strings.Split(q.Get("scope"), ",") {
			words := scopeWords[sc]
			if words == "" {
				words = sc
			}
			lines = append(lines, scopeLine{Name: sc, Words: words})
		}
		data["Scopes"] = lines
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if msg != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	_ = consentPage.Execute(w, data)
}

func (s *Server) serveDecision(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	q := url.Values{}
	for k, v := range r.PostForm {
		if k != "decision" {
			q[k] = v
		}
	}
	s.mu.Lock()
	msg := s.checkAuthorizeLocked(q)
	var to string
	var err error
	if msg == "" {
		to, err = s.decideLocked(q, r.PostForm.Get("decision") == "allow")
	}
	s.mu.Unlock()
	if msg != "" || err != nil {
		http.Error(w, fmt.Sprint(msg, err), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// checkAuthorizeLocked says what is wrong with a consent request, as Slack's
// error page would.
func (s *Server) checkAuthorizeLocked(q url.Values) string {
	switch {
	case q.Get("client_id") == "" || (s.oauthID != "" && q.Get("client_id") != s.oauthID):
		return "Invalid client_id parameter"
	case q.Get("scope") == "":
		return "Invalid scope: none requested"
	case q.Get("redirect_uri") == "":
		return "redirect_uri did not match any configured URIs"
	case s.byTeam[s.installTeam] == nil:
		return "no workspace to install into (fakeslack.SetInstallWorkspace)"
	}
	if u, err := url.Parse(q.Get("redirect_uri")); err != nil || u.Host == "" {
		return "redirect_uri did not match any configured URIs"
	}
	return ""
}

func (s *Server) decideLocked(q url.Values, allow bool) (string, error) {
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		return "", err
	}
	back := u.Query()
	if allow {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		code := "fake-code-" + hex.EncodeToString(b)
		s.codes[code] = oauthGrant{teamID: s.installTeam, redirectURI: q.Get("redirect_uri")}
		back.Set("code", code)
	} else {
		back.Set("error", "access_denied")
	}
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	u.RawQuery = back.Encode()
	s.notifyLocked()
	return u.String(), nil
}
