// Package fakeslack is an in-process fake of Slack's Web API and Socket Mode
// that speaks the real wire format, for tests in any package.
//
// It serves auth.test, chat.postMessage, chat.update, conversations.replies,
// conversations.history, users.info, oauth.v2.access, files.info and
// apps.connections.open under URL() (which ends in /api/), uploaded files at
// their private URLs (files.go), the OAuth v2 consent page an "Add to Slack"
// install passes through (oauth.go), plus a Socket Mode WebSocket. Requests
// may be form-encoded or JSON, with the
// token in the form or as a Bearer header, as slack-go sends them; answers are
// {"ok":true,...} or {"ok":false,"error":"..."}. Failures can be injected per
// method, including a post that Slack stores but whose response is lost.
//
// The package also signs webhook requests and builds Events API payloads
// (events.go). All methods are safe for concurrent use; the Wait* helpers must
// be called from the test goroutine.
package fakeslack

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Server is a fake Slack. Create it with New.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every state change
	byTeam     map[string]*Workspace
	byToken    map[string]*Workspace
	appTokens  map[string]bool
	codes      map[string]oauthGrant
	oauthID    string
	oauthSec   string
	messages   []Posted
	baseSec    int64
	seq        int64
	failures   map[string][]Failure
	calls      map[string]int
	socket     socketState
	closed     bool
	pingPeriod time.Duration
	onPost     func(Posted)
	files      map[string]File   // by ID (files.go)
	users      map[string]string // "team/user" → display name (users.info)
	outside    map[string]bool   // channels the bot is not a member of (posting: not_in_channel)

	// The consent page (oauth.go): the workspace it installs into, and
	// what it was asked.
	installTeam string
	authorizes  []url.Values
}

// Workspace is a registered Slack workspace (team) with its bot.
type Workspace struct {
	TeamID    string
	TeamName  string
	BotToken  string
	BotUserID string
	BotID     string
	AppID     string
}

// Posted is a message stored by the fake: one posted with chat.postMessage or
// seeded with AddUserMessage.
type Posted struct {
	TeamID   string
	Channel  string
	TS       string
	ThreadTS string
	Text     string
	User     string
	BotID    string
	// Metadata is the message metadata posted with it, nil if none.
	Metadata *Metadata
	// Blocks are the Block Kit blocks posted with it (raw JSON), nil if none.
	Blocks json.RawMessage
	// Broadcast: a thread reply also sent to the channel (reply_broadcast).
	Broadcast bool
	// Updates counts chat.update calls on the message.
	Updates int
}

// HasButton reports whether the message's blocks hold a button with actionID.
func (p Posted) HasButton(actionID string) bool {
	return bytes.Contains(p.Blocks, []byte(`"action_id":"`+actionID+`"`))
}

// Metadata is Slack message metadata.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// Key returns event_payload.key when it is a string, else "".
func (m *Metadata) Key() string {
	if m == nil {
		return ""
	}
	k, _ := m.EventPayload["key"].(string)
	return k
}

// Failure describes how an injected failure answers.
type Failure struct {
	// Status is the HTTP status to answer with (e.g. 500, 503, 429). 0 means
	// 200 with {"ok":false,"error":Error}.
	Status int
	// Error is the Slack error code for an ok:false body ("invalid_auth").
	Error string
	// RetryAfter is sent as the Retry-After header (whole seconds, rounded
	// up) with a 429.
	RetryAfter time.Duration
	// LoseResponse handles the call normally (a post is stored) and then
	// closes the connection without answering.
	LoseResponse bool
}

type oauthGrant struct {
	teamID      string
	redirectURI string
}

// New starts a fake Slack that is closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		changed:    make(chan struct{}),
		byTeam:     map[string]*Workspace{},
		byToken:    map[string]*Workspace{},
		appTokens:  map[string]bool{},
		codes:      map[string]oauthGrant{},
		failures:   map[string][]Failure{},
		calls:      map[string]int{},
		users:      map[string]string{},
		outside:    map[string]bool{},
		baseSec:    time.Now().Unix(),
		pingPeriod: 2 * time.Second,
	}
	s.socket.acks = map[string]json.RawMessage{}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/socket", s.serveSocket)
	mux.HandleFunc("/files-pri/", s.serveFile)
	mux.HandleFunc("GET /oauth/v2/authorize", s.serveAuthorize)
	mux.HandleFunc("POST /oauth/v2/authorize/decision", s.serveDecision)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// URL is the Web API base URL, ending in "/api/".
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// Close closes Socket Mode connections and the server. New registers it with
// t.Cleanup; calling it again is harmless.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := append([]*socketConn(nil), s.socket.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// AddWorkspace registers a workspace whose bot token is botToken and whose bot
// user is botUserID. It returns a copy of the record, whose other fields
// (TeamName, BotID, AppID) are derived.
func (s *Server) AddWorkspace(teamID, botToken, botUserID string) Workspace {
	w := &Workspace{
		TeamID:    teamID,
		TeamName:  teamID + " workspace",
		BotToken:  botToken,
		BotUserID: botUserID,
		BotID:     "B" + strings.TrimPrefix(botUserID, "U"),
		AppID:     DefaultAPIAppID,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byTeam[teamID] = w
	s.byToken[botToken] = w
	return *w
}

// Workspace returns the registered workspace teamID, or nil.
func (s *Server) Workspace(teamID string) *Workspace {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.byTeam[teamID]; w != nil {
		c := *w
		return &c
	}
	return nil
}

// RevokeToken makes token unknown, so calls with it answer invalid_auth.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byToken, token)
}

// AddAppToken registers an app-level token (xapp-…) for apps.connections.open.
func (s *Server) AddAppToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appTokens[token] = true
}

// SetOAuthClient makes oauth.v2.access check client_id and client_secret
// (invalid_client_id, bad_client_secret). Without it any client is accepted.
func (s *Server) SetOAuthClient(clientID, clientSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthID, s.oauthSec = clientID, clientSecret
}

// AddOAuthCode registers a one-time OAuth code that oauth.v2.access exchanges
// for the bot token of workspace teamID (added with AddWorkspace). If
// redirectURI is not empty, the exchange must present the same one.
func (s *Server) AddOAuthCode(code, teamID, redirectURI string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = oauthGrant{teamID: teamID, redirectURI: redirectURI}
}

// AddUserMessage stores a message as if a user had sent it (a thread root, or
// a reply when threadTS is set) and returns its ts, generated when ts is "".
func (s *Server) AddUserMessage(channel, user, text, ts, threadTS string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts == "" {
		ts = s.nextTSLocked()
	}
	s.messages = append(s.messages, Posted{Channel: channel, TS: ts, ThreadTS: threadTS, Text: text, User: user})
	s.notifyLocked()
	return ts
}

// AddUser names a workspace member for users.info.
func (s *Server) AddUser(teamID, userID, displayName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[teamID+"/"+userID] = displayName
}

// RemoveBot takes the bot out of channel (or, member false, puts it back):
// chat.postMessage there answers not_in_channel, as Slack does for a
// channel the bot was never invited to.
func (s *Server) RemoveBot(channel string, removed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outside[channel] = removed
}

// Message returns the message ts of channel, as stored now.
func (s *Server) Message(channel, ts string) (Posted, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m, true
		}
	}
	return Posted{}, false
}

// WaitForThread waits until thread threadTS of channel (its root included)
// holds at least n messages and returns them.
func (s *Server) WaitForThread(t testing.TB, channel, threadTS string, n int, timeout time.Duration) []Posted {
	t.Helper()
	var out []Posted
	s.waitFor(t, timeout, fmt.Sprintf("%d messages in thread %s of %q", n, threadTS, channel), func() bool {
		out = s.threadLocked(channel, threadTS)
		return len(out) >= n
	})
	return out
}

// WaitFor waits until cond, called under the server's lock with every
// message stored so far, holds.
func (s *Server) WaitFor(t testing.TB, what string, timeout time.Duration, cond func(all []Posted) bool) {
	t.Helper()
	s.waitFor(t, timeout, what, func() bool { return cond(s.messages) })
}

// FailNext makes the next n calls of method (e.g. "chat.postMessage") answer
// with f, in order after any failures already queued.
func (s *Server) FailNext(method string, n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[method] = append(s.failures[method], f)
	}
}

// FailNextWithError makes the next n calls of method answer 200
// {"ok":false,"error":code}.
func (s *Server) FailNextWithError(method string, n int, code string) {
	s.FailNext(method, n, Failure{Error: code})
}

// FailNextWithStatus makes the next n calls of method answer HTTP status.
func (s *Server) FailNextWithStatus(method string, n int, status int) {
	s.FailNext(method, n, Failure{Status: status})
}

// RateLimitNext makes the next n calls of method answer 429 with Retry-After.
func (s *Server) RateLimitNext(method string, n int, retryAfter time.Duration) {
	s.FailNext(method, n, Failure{Status: http.StatusTooManyRequests, Error: "ratelimited", RetryAfter: retryAfter})
}

// LoseNextResponse makes the next n calls of method take effect (a post is
// stored) but drop the connection instead of answering.
func (s *Server) LoseNextResponse(method string, n int) {
	s.FailNext(method, n, Failure{LoseResponse: true})
}

// Calls returns how many requests method has received, failed ones included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Messages returns the messages stored in channel (all channels when ""),
// oldest first.
func (s *Server) Messages(channel string) []Posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked(channel)
}

// Thread returns the root and replies of thread threadTS in channel, oldest first.
func (s *Server) Thread(channel, threadTS string) []Posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.threadLocked(channel, threadTS)
}

// WaitForMessages waits until channel ("" for any) holds at least n messages
// and returns them; it fails the test after timeout.
func (s *Server) WaitForMessages(t testing.TB, channel string, n int, timeout time.Duration) []Posted {
	t.Helper()
	var out []Posted
	s.waitFor(t, timeout, fmt.Sprintf("%d messages in channel %q", n, channel), func() bool {
		out = s.messagesLocked(channel)
		return len(out) >= n
	})
	return out
}

func (s *Server) messagesLocked(channel string) []Posted {
	var out []Posted
	for _, m := range s.messages {
		if channel == "" || m.Channel == channel {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) threadLocked(channel, threadTS string) []Posted {
	var out []Posted
	for _, m := range s.messages {
		if m.Channel == channel && (m.TS == threadTS || m.ThreadTS == threadTS) {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return tsLess(out[i].TS, out[j].TS) })
	return out
}

// waitFor calls cond under the lock until it holds, waking on state changes.
func (s *Server) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("fakeslack: timed out after %s waiting for %s", timeout, what)
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// OnPost calls fn with every message posted through chat.postMessage, as it
// is stored (benchmarks time replies with it). fn runs under the server's
// lock: keep it short and do not call back into the server.
func (s *Server) OnPost(fn func(Posted)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPost = fn
}

// nextTSLocked returns a unique, increasing Slack timestamp.
func (s *Server) nextTSLocked() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", s.baseSec+s.seq/1_000_000, s.seq%1_000_000)
}

func tsLess(a, b string) bool {
	af, _ := strconv.ParseFloat(a, 64)
	bf, _ := strconv.ParseFloat(b, 64)
	if af != bf {
		return af < bf
	}
	return a < b
}

// ---- Web API ----

type request struct {
	method string
	token  string
	params map[string]string
}

type handlerFunc func(req request) (status int, body map[string]any)

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	req, err := parseRequest(method, r)
	if err != nil {
		writeJSON(w, http.StatusOK, slackErr("invalid_form_data"))
		return
	}

	s.mu.Lock()
	s.calls[method]++
	var fail *Failure
	if q := s.failures[method]; len(q) > 0 {
		f := q[0]
		s.failures[method] = q[1:]
		fail = &f
	}
	s.notifyLocked()
	s.mu.Unlock()

	if fail != nil && !fail.LoseResponse {
		writeFailure(w, *fail)
		return
	}

	var h handlerFunc
	switch method {
	case "auth.test":
		h = s.authTest
	case "chat.postMessage":
		h = s.chatPostMessage
	case "conversations.replies":
		h = s.conversationsReplies
	case "conversations.history":
		h = s.conversationsHistory
	case "chat.update":
		h = s.chatUpdate
	case "users.info":
		h = s.usersInfo
	case "oauth.v2.access":
		h = s.oauthV2Access
	case "files.info":
		h = s.filesInfo
	case "apps.connections.open":
		h = func(req request) (int, map[string]any) { return s.appsConnectionsOpen(req, r) }
	default:
		writeJSON(w, http.StatusOK, slackErr("unknown_method"))
		return
	}
	status, body := h(req)

	if fail != nil && fail.LoseResponse {
		loseResponse(w)
		return
	}
	writeJSON(w, status, body)
}

// parseRequest reads parameters the way Slack accepts them: query string,
// form body, or JSON body; the token from the form or a Bearer header.
func parseRequest(method string, r *http.Request) (request, error) {
	req := request{method: method, params: map[string]string{}}
	for k, v := range r.URL.Query() {
		req.params[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return req, err
		}
		if len(bytes.TrimSpace(body)) > 0 && !bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				return req, err
			}
			for k, raw := range m {
				var str string
				if json.Unmarshal(raw, &str) == nil {
					req.params[k] = str
				} else {
					req.params[k] = string(raw) // objects, numbers, bools as JSON text
				}
			}
		}
	default:
		if err := r.ParseForm(); err != nil {
			return req, err
		}
		for k, v := range r.PostForm {
			req.params[k] = v[0]
		}
	}
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.token = auth
	}
	if req.token == "" {
		req.token = req.params["token"]
	}
	return req, nil
}

func slackErr(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func writeJSON(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeFailure(w http.ResponseWriter, f Failure) {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusTooManyRequests && f.RetryAfter > 0 {
		secs := (f.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	code := f.Error
	if code == "" {
		switch {
		case status == http.StatusTooManyRequests:
			code = "ratelimited"
		case status >= 500:
			code = "internal_error"
		default:
			code = "request_failed"
		}
	}
	if status >= 500 {
		// Slack answers 5xx with an HTML page, not JSON.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<html><body>"+http.StatusText(status)+"</body></html>")
		return
	}
	writeJSON(w, status, slackErr(code))
}

// loseResponse drops the connection without writing a response.
func loseResponse(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fakeslack: response writer cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// workspaceLocked resolves a bot token; the error code is set when it fails.
func (s *Server) workspaceLocked(token string) (*Workspace, string) {
	if token == "" {
		return nil, "not_authed"
	}
	w := s.byToken[token]
	if w == nil {
		return nil, "invalid_auth"
	}
	return w, ""
}

func (s *Server) authTest(req request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, code := s.workspaceLocked(req.token)
	if w == nil {
		return http.StatusOK, slackErr(code)
	}
	return http.StatusOK, map[string]any{
		"ok":                    true,
		"url":                   "https://" + strings.ToLower(w.TeamID) + ".slack.com/",
		"team":                  w.TeamName,
		"user":                  "konstruct",
		"team_id":               w.TeamID,
		"user_id":               w.BotUserID,
		"bot_id":                w.BotID,
		"is_enterprise_install": false,
	}
}

// maxTextChars is Slack's hard limit on message text.
const maxTextChars = 40000

func (s *Server) chatPostMessage(req request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, code := s.workspaceLocked(req.token)
	if w == nil {
		return http.StatusOK, slackErr(code)
	}
	p := req.params
	channel := p["channel"]
	if channel == "" {
		return http.StatusOK, slackErr("channel_not_found")
	}
	text := p["text"]
	if text == "" && p["blocks"] == "" && p["attachments"] == "" {
		return http.StatusOK, slackErr("no_text")
	}
	if utf8.RuneCountInString(text) > maxTextChars {
		return http.StatusOK, slackErr("msg_too_long")
	}
	if s.outside[channel] {
		return http.StatusOK, slackErr("not_in_channel")
	}
	var md *Metadata
	if raw := p["metadata"]; raw != "" {
		md = &Metadata{}
		if err := json.Unmarshal([]byte(raw), md); err != nil || md.EventType == "" {
			return http.StatusOK, slackErr("invalid_metadata_format")
		}
	}
	blocks, ok := parseBlocks(p["blocks"])
	if !ok {
		return http.StatusOK, slackErr("invalid_blocks")
	}
	msg := Posted{
		TeamID:    w.TeamID,
		Channel:   channel,
		TS:        s.nextTSLocked(),
		ThreadTS:  p["thread_ts"],
		Text:      text,
		User:      w.BotUserID,
		BotID:     w.BotID,
		Metadata:  md,
		Blocks:    blocks,
		Broadcast: p["thread_ts"] != "" && (p["reply_broadcast"] == "true" || p["reply_broadcast"] == "1"),
	}
	s.messages = append(s.messages, msg)
	s.notifyLocked()
	if s.onPost != nil {
		s.onPost(msg)
	}
	return http.StatusOK, map[string]any{
		"ok":      true,
		"channel": channel,
		"ts":      msg.TS,
		"message": wireMessage(msg, true),
	}
}

// parseBlocks checks blocks as Slack does: a JSON array of objects, each
// with a type (at most 50).
func parseBlocks(raw string) (json.RawMessage, bool) {
	if raw == "" {
		return nil, true
	}
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil || len(blocks) > 50 {
		return nil, false
	}
	for _, b := range blocks {
		if t, _ := b["type"].(string); t == "" {
			return nil, false
		}
	}
	return json.RawMessage(raw), true
}

func (s *Server) chatUpdate(req request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, code := s.workspaceLocked(req.token)
	if w == nil {
		return http.StatusOK, slackErr(code)
	}
	p := req.params
	blocks, ok := parseBlocks(p["blocks"])
	if !ok {
		return http.StatusOK, slackErr("invalid_blocks")
	}
	for i := range s.messages {
		m := &s.messages[i]
		if m.Channel != p["channel"] || m.TS != p["ts"] {
			continue
		}
		if m.BotID != w.BotID {
			return http.StatusOK, slackErr("cant_update_message")
		}
		if p["text"] != "" {
			m.Text = p["text"]
		}
		if blocks != nil {
			m.Blocks = blocks
		}
		m.Updates++
		s.notifyLocked()
		return http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text}
	}
	return http.StatusOK, slackErr("message_not_found")
}

// conversationsHistory answers the channel's top-level messages (and thread
// replies broadcast to it), newest first, paged with a cursor.
func (s *Server) conversationsHistory(req request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, code := s.workspaceLocked(req.token); w == nil {
		return http.StatusOK, slackErr(code)
	}
	p := req.params
	if p["channel"] == "" {
		return http.StatusOK, slackErr("channel_not_found")
	}
	var top []Posted
	for _, m := range s.messages {
		if m.Channel == p["channel"] && (m.ThreadTS == "" || m.ThreadTS == m.TS || m.Broadcast) {
			top = append(top, m)
		}
	}
	sort.SliceStable(top, func(i, j int) bool { return tsLess(top[j].TS, top[i].TS) })
	limit := 100
	if l, err := strconv.Atoi(p["limit"]); err == nil && l > 0 && l < 1000 {
		limit = l
	}
	offset := 0
	if c := p["cursor"]; c != "" {
		raw, err := base64.StdEncoding.DecodeString(c)
		n, ok := strings.CutPrefix(string(raw), "offset:")
		if err != nil || !ok {
			return http.StatusOK, slackErr("invalid_cursor")
		}
		if offset, err = strconv.Atoi(n); err != nil || offset < 0 || offset > len(top) {
			return http.StatusOK, slackErr("invalid_cursor")
		}
	}
	withMD := p["include_all_metadata"] == "1" || p["include_all_metadata"] == "true"
	end := min(offset+limit, len(top))
	msgs := make([]map[string]any, 0, end-offset)
	for _, m := range top[offset:end] {
		msgs = append(msgs, wireMessage(m, withMD))
	}
	next := ""
	if end < len(top) {
		next = base64.StdEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return http.StatusOK, map[string]any{"ok": true, "messages": msgs, "has_more": next != "",
		"response_metadata": map[string]any{"next_cursor": next}}
}

func (s *Server) usersInfo(req request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, code := s.workspaceLocked(req.token)
	if w == nil {
		return http.StatusOK, slackErr(code)
	}
	id := req.params["user"]
	name, ok := s.users[w.TeamID+"/"+id]
	if !ok {
		return http.StatusOK, slackErr("user_not_found")
	}
	return http.StatusOK, map[string]any{"ok": true, "user": map[string]any{
		"id": id, "team_id": w.TeamID, "name": strings.ToLower(strings.ReplaceAll(name, " ", ".")), "real_name": name,
		"profile": map[string]any{"display_name": name, "real_name": name}}}
}

func wireMessage(m Posted, withMetadata bool) map[string]any {
	out := map[string]any{
		"type": "message",
		"text": m.Text,
		"ts":   m.TS,
	}
	if m.User != "" {
		out["user"] = m.User
	}
	if m.BotID != "" {
		out["bot_id"] = m.BotID
		out["app_id"] = DefaultAPIAppID
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if withMetadata && m.Metadata != nil {
		out["metadata"] = m.Metadata
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	if m.Broadcast {
		out["subtype"] = "thread_broadcast"
	}
	return out
}

func (s *Server) conversationsReplies(req request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, code := s.workspaceLocked(req.token); w == nil {
		return http.StatusOK, slackErr(code)
	}
	p := req.params
	if p["channel"] == "" {
		return http.StatusOK, slackErr("channel_not_found")
	}
	if p["ts"] == "" {
		return http.StatusOK, slackErr("invalid_arguments")
	}
	thread := s.threadLocked(p["channel"], p["ts"])
	if len(thread) == 0 {
		return http.StatusOK, slackErr("thread_not_found")
	}
	limit := 1000
	if l, err := strconv.Atoi(p["limit"]); err == nil && l > 0 && l < limit {
		limit = l
	}
	offset := 0
	if c := p["cursor"]; c != "" {
		raw, err := base64.StdEncoding.DecodeString(c)
		n, ok := strings.CutPrefix(string(raw), "offset:")
		if err != nil || !ok {
			return http.StatusOK, slackErr("invalid_cursor")
		}
		if offset, err = strconv.Atoi(n); err != nil || offset < 0 || offset > len(thread) {
			return http.StatusOK, slackErr("invalid_cursor")
		}
	}
	withMD := p["include_all_metadata"] == "1" || p["include_all_metadata"] == "true"
	end := min(offset+limit, len(thread))
	msgs := make([]map[string]any, 0, end-offset)
	for _, m := range thread[offset:end] {
		msgs = append(msgs, wireMessage(m, withMD))
	}
	next := ""
	if end < len(thread) {
		next = base64.StdEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return http.StatusOK, map[string]any{
		"ok":                true,
		"messages":          msgs,
		"has_more":          next != "",
		"response_metadata": map[string]any{"next_cursor": next},
	}
}

func (s *Server) oauthV2Access(req request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := req.params
	if s.oauthID != "" && p["client_id"] != s.oauthID {
		return http.StatusOK, slackErr("invalid_client_id")
	}
	if s.oauthSec != "" && p["client_secret"] != s.oauthSec {
		return http.StatusOK, slackErr("bad_client_secret")
	}
	g, ok := s.codes[p["code"]]
	if !ok {
		return http.StatusOK, slackErr("invalid_code")
	}
	if g.redirectURI != "" && p["redirect_uri"] != g.redirectURI {
		return http.StatusOK, slackErr("bad_redirect_uri")
	}
	w := s.byTeam[g.teamID]
	if w == nil {
		return http.StatusOK, slackErr("invalid_code")
	}
	delete(s.codes, p["code"]) // codes are single-use
	s.notifyLocked()
	return http.StatusOK, map[string]any{
		"ok":           true,
		"app_id":       w.AppID,
		"authed_user":  map[string]any{"id": "UINSTALLER"},
		"scope":        "app_mentions:read,chat:write,im:history,im:read",
		"token_type":   "bot",
		"access_token": w.BotToken,
		"bot_user_id":  w.BotUserID,
		"team":         map[string]any{"id": w.TeamID, "name": w.TeamName},
		"enterprise":   nil,

		"is_enterprise_install": false,
	}
}
