// Package fakewhatsapp is an in-process fake of Meta's WhatsApp Cloud API
// (the Graph API endpoints Konstruct calls) that speaks the real wire format,
// for tests in any package.
//
// It serves, under URL()/{version}/:
//
//   - GET /{phone-number-id}: the number's details, for its access token;
//   - POST /{phone-number-id}/messages: text and template messages, answered
//     {"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid..."}]}.
//
// Every request is recorded with its Authorization header. Errors are Graph
// error objects ({"error":{"message","type","code","error_subcode",
// "fbtrace_id"}}) at the HTTP status Meta uses for the code; they can be
// injected per operation, answered at once or — as Meta reports 131047 and
// most delivery failures — accepted with a wamid and reported afterwards in a
// signed "failed" status webhook. With DeliverStatuses set, every accepted
// message is followed by status webhooks (sent, delivered, ...) signed with
// the app secret, each carrying the message's biz_opaque_callback_data.
//
// webhook.go builds and signs webhook payloads (messages and statuses)
// exactly as Meta does. Other files of this package add endpoints through
// the extension hook (see extensions): a file registers a function that
// receives the Server as it is created and calls HandleFunc (own routes) or
// ResolveObject (GET /{version}/{id} for its own kind of object, such as a
// media ID).
package fakewhatsapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Operations failures can be injected into.
const (
	OpMessages    = "messages"     // POST /{phone-number-id}/messages
	OpPhoneNumber = "phone_number" // GET /{phone-number-id}
)

// Server is a fake Graph API. Create it with New.
type Server struct {
	srv *httptest.Server
	mux *http.ServeMux

	mu        sync.Mutex
	changed   chan struct{}
	numbers   map[string]*Number // by phone-number ID
	byToken   map[string]*Number
	revoked   map[string]bool
	templates map[string]bool // phone-number ID + "/" + name + "/" + language
	requests  []Request
	sent      []Sent
	failures  map[string][]Failure
	resolvers []func(w http.ResponseWriter, r *http.Request, id string) bool
	hook      *statusHook
	closed    bool
	wg        sync.WaitGroup

	mediaFiles *mediaStore // the media endpoints' files and URLs (media.go)
}

// extensions run on every new Server; files of this package append to it in
// init() to add endpoints (media, ...).
var extensions []func(*Server)

// Number is a registered business phone number and the token that may use it.
type Number struct {
	ID                 string
	Token              string
	DisplayPhoneNumber string
	VerifiedName       string
	WABAID             string
}

// Request is one request the fake received.
type Request struct {
	Method        string
	Path          string // e.g. /v25.0/106540352242922/messages
	Version       string // e.g. v25.0
	Authorization string
	Body          []byte
}

// Sent is a message the fake accepted.
type Sent struct {
	WAMID         string
	PhoneNumberID string
	To            string // phone number, when sent with "to"
	Recipient     string // business-scoped user ID, when sent with "recipient"
	Type          string // text | template
	Text          string
	Template      string // template name
	Language      string // template language code
	ReplyTo       string // context.message_id
	BizOpaque     string // biz_opaque_callback_data
	Authorization string
}

// Failure is an injected error.
type Failure struct {
	// Code is the Graph error code (130429, 131047, 190, ...); Status the
	// HTTP status (default: the one Meta uses for Code).
	Code    int
	Subcode int
	Status  int
	Message string
	// Async accepts the message (200 with a wamid) and reports the error in a
	// "failed" status webhook afterwards, as Meta does for 131047 and most
	// delivery failures. Needs DeliverStatuses.
	Async bool
	// LoseResponse handles the request normally (the message is sent) and
	// then closes the connection without answering.
	LoseResponse bool
	// Raw answers Status with this body instead of a Graph error (a proxy's
	// error page).
	Raw string
}

type statusHook struct {
	url, secret string
	statuses    []string
}

// New starts a fake that is closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		changed:   make(chan struct{}),
		numbers:   map[string]*Number{},
		byToken:   map[string]*Number{},
		revoked:   map[string]bool{},
		templates: map[string]bool{},
		failures:  map[string][]Failure{},
		mux:       http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /{version}/{id}", s.getObject)
	s.mux.HandleFunc("POST /{version}/{id}/messages", s.postMessage)
	for _, ext := range extensions {
		ext(s)
	}
	s.srv = httptest.NewServer(s.mux)
	t.Cleanup(s.Close)
	return s
}

// URL is the Graph API base URL (KONSTRUCT_WHATSAPP_API_URL), ending in "/".
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close stops the server after the status webhooks in flight.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// HandleFunc registers an extra route (for extensions).
func (s *Server) HandleFunc(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// ResolveObject adds a resolver for GET /{version}/{id}: it answers and
// returns true when id is its kind of object (for extensions).
func (s *Server) ResolveObject(fn func(w http.ResponseWriter, r *http.Request, id string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resolvers = append(s.resolvers, fn)
}

// AddNumber registers a business phone number usable with token.
func (s *Server) AddNumber(id, token, displayPhoneNumber, verifiedName string) Number {
	n := &Number{ID: id, Token: token, DisplayPhoneNumber: displayPhoneNumber, VerifiedName: verifiedName, WABAID: "1" + id}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numbers[id] = n
	s.byToken[token] = n
	return *n
}

// AddTemplate approves template name in language for the number.
func (s *Server) AddTemplate(phoneNumberID, name, language string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.templates[phoneNumberID+"/"+name+"/"+language] = true
}

// RevokeToken makes token invalid: calls with it answer 401, code 190.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[token] = true
}

// DeliverStatuses makes the fake post, after every accepted message, one
// status webhook per status (e.g. "sent", "delivered") to url, signed with
// appSecret as Meta signs them. Injected Async failures are reported there.
func (s *Server) DeliverStatuses(url, appSecret string, statuses ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = &statusHook{url: url, secret: appSecret, statuses: statuses}
}

// Fail queues failures for op (OpMessages, OpPhoneNumber): the next calls
// answer them in order.
func (s *Server) Fail(op string, fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[op] = append(s.failures[op], fs...)
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Sent returns the messages accepted so far, oldest first.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// WaitForSent waits until at least n messages were accepted and returns them.
func (s *Server) WaitForSent(t testing.TB, n int, timeout time.Duration) []Sent {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.sent), s.changed
		out := append([]Sent(nil), s.sent...)
		s.mu.Unlock()
		if got >= n {
			return out
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("fakewhatsapp: timed out after %s waiting for %d sent messages (have %d: %+v)", timeout, n, got, out)
		}
	}
}

// SentTo returns the messages accepted from phoneNumberID to user (a phone
// number or business-scoped user ID), oldest first.
func (s *Server) SentTo(phoneNumberID, user string) []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentToLocked(phoneNumberID, user)
}

func (s *Server) sentToLocked(phoneNumberID, user string) []Sent {
	var out []Sent
	for _, m := range s.sent {
		if m.PhoneNumberID == phoneNumberID && (m.To == user || m.Recipient == user) {
			out = append(out, m)
		}
	}
	return out
}

// WaitForSentTo waits until at least n messages were accepted from
// phoneNumberID to user and returns them all.
func (s *Server) WaitForSentTo(t testing.TB, phoneNumberID, user string, n int, timeout time.Duration) []Sent {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		out, ch := s.sentToLocked(phoneNumberID, user), s.changed
		s.mu.Unlock()
		if len(out) >= n {
			return out
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("fakewhatsapp: timed out after %s waiting for %d messages to %s (have %d: %+v)", timeout, n, user, len(out), out)
		}
	}
}

// Posts counts the POST /messages requests the fake received for number
// (accepted or not) whose body names user.
func (s *Server) Posts(phoneNumberID, user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/"+phoneNumberID+"/messages") && bytes.Contains(r.Body, []byte(`"`+user+`"`)) {
			n++
		}
	}
	return n
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// NewWAMID returns a fresh message ID shaped like Meta's.
func NewWAMID() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "wamid." + base64.StdEncoding.EncodeToString(b)
}

// ---- Graph API ----

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// graphError writes a Graph API error object.
func graphError(w http.ResponseWriter, status, code, subcode int, message string) {
	if status == 0 {
		status = statusFor(code)
	}
	typ := "OAuthException"
	if code >= 130000 {
		message = fmt.Sprintf("(#%d) %s", code, message)
	}
	body := map[string]any{"message": message, "type": typ, "code": code, "fbtrace_id": "A" + strings.ToUpper(randHex(10))}
	if subcode != 0 {
		body["error_subcode"] = subcode
	}
	if code >= 130000 {
		body["error_data"] = map[string]any{"messaging_product": "whatsapp", "details": message}
	}
	writeJSON(w, status, map[string]any{"error": body})
}

// statusFor is the HTTP status Meta answers an error code with.
func statusFor(code int) int {
	switch {
	case code == 0 || code == 190:
		return http.StatusUnauthorized
	case code == 10 || (code >= 200 && code <= 299) || code == 368:
		return http.StatusForbidden
	case code == 4:
		return http.StatusTooManyRequests
	case code == 2 || code == 131016:
		return http.StatusServiceUnavailable
	case code == 131000 || code == 3:
		return http.StatusInternalServerError
	case code == 132001:
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

func defaultMessage(code int) string {
	switch code {
	case 190:
		return "Error validating access token: Session has expired."
	case 130429:
		return "Rate limit hit"
	case 131056:
		return "(Business Account, Consumer Account) pair rate limit hit"
	case 131047:
		return "Re-engagement message"
	case 131026:
		return "Message undeliverable"
	case 131000:
		return "Something went wrong"
	case 100:
		return "Invalid parameter"
	}
	return "Error " + fmt.Sprint(code)
}

func writeFailure(w http.ResponseWriter, f Failure) {
	if f.Raw != "" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(max(f.Status, http.StatusBadGateway))
		_, _ = io.WriteString(w, f.Raw)
		return
	}
	msg := f.Message
	if msg == "" {
		msg = defaultMessage(f.Code)
	}
	graphError(w, f.Status, f.Code, f.Subcode, msg)
}

// begin records the request, checks the version and token, and takes the
// next injected failure of op. It returns the number the token may use (nil
// after answering an error itself).
func (s *Server) begin(w http.ResponseWriter, r *http.Request, op string) (*Number, []byte, *Failure) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Version: r.PathValue("version"),
		Authorization: auth, Body: body})
	var fail *Failure
	if q := s.failures[op]; len(q) > 0 {
		f := q[0]
		s.failures[op] = q[1:]
		fail = &f
	}
	id := r.PathValue("id")
	n := s.numbers[id]
	token, hasBearer := strings.CutPrefix(auth, "Bearer ")
	owner := s.byToken[token]
	revoked := s.revoked[token]
	s.notifyLocked()
	s.mu.Unlock()

	switch {
	case !versionRE.MatchString(r.PathValue("version")):
		graphError(w, http.StatusBadRequest, 2635, 0, "Unknown version: "+r.PathValue("version"))
	case !hasBearer || token == "":
		graphError(w, http.StatusBadRequest, 104, 0, "An access token is required to request this resource.")
	case owner == nil || revoked:
		graphError(w, http.StatusUnauthorized, 190, 0, "Invalid OAuth access token - Cannot parse access token")
	case n == nil || owner.ID != n.ID:
		graphError(w, http.StatusBadRequest, 100, 33, "Unsupported "+strings.ToLower(r.Method)+" request. Object with ID '"+id+
			"' does not exist, cannot be loaded due to missing permissions, or does not support this operation.")
	case fail != nil && !fail.LoseResponse && !fail.Async:
		writeFailure(w, *fail)
	default:
		return n, body, fail
	}
	return nil, nil, nil
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	_, isNumber := s.numbers[id]
	resolvers := append([]func(http.ResponseWriter, *http.Request, string) bool(nil), s.resolvers...)
	s.mu.Unlock()
	if !isNumber {
		for _, res := range resolvers {
			if res(w, r, id) {
				return
			}
		}
	}
	n, _, fail := s.begin(w, r, OpPhoneNumber)
	if n == nil {
		return
	}
	out := map[string]any{"id": n.ID, "display_phone_number": n.DisplayPhoneNumber, "verified_name": n.VerifiedName,
		"quality_rating": "GREEN", "code_verification_status": "VERIFIED", "platform_type": "CLOUD_API",
		"throughput": map[string]any{"level": "STANDARD"}}
	if f := r.URL.Query().Get("fields"); f != "" {
		keep := map[string]any{}
		for _, k := range strings.Split(f, ",") {
			if v, ok := out[strings.TrimSpace(k)]; ok {
				keep[strings.TrimSpace(k)] = v
			}
		}
		keep["id"] = n.ID
		out = keep
	}
	s.answer(w, fail, http.StatusOK, out)
}

var bsuidRE = regexp.MustCompile(`^[A-Z]{2}\.([A-Z]+\.)?[0-9A-Za-z]+$`)

type wireSend struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Recipient        string `json:"recipient"`
	Type             string `json:"type"`
	Context          *struct {
		MessageID string `json:"message_id"`
	} `json:"context"`
	Text *struct {
		Body string `json:"body"`
	} `json:"text"`
	Template *struct {
		Name     string `json:"name"`
		Language *struct {
			Code string `json:"code"`
		} `json:"language"`
	} `json:"template"`
	BizOpaque string `json:"biz_opaque_callback_data"`
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	n, body, fail := s.begin(w, r, OpMessages)
	if n == nil {
		return
	}
	var m wireSend
	if err := json.Unmarshal(body, &m); err != nil {
		graphError(w, http.StatusBadRequest, 100, 0, "Invalid parameter: the body is not JSON")
		return
	}
	bad := func(msg string) { graphError(w, http.StatusBadRequest, 100, 0, msg) }
	switch {
	case m.MessagingProduct != "whatsapp":
		bad("The parameter messaging_product is required.")
		return
	case m.To == "" && m.Recipient == "":
		bad("The parameter to is required.")
		return
	case m.To != "" && strings.Trim(strings.TrimPrefix(m.To, "+"), "0123456789") != "":
		bad("Param to must be a phone number.")
		return
	case m.To == "" && !bsuidRE.MatchString(m.Recipient):
		bad("Param recipient must be a business-scoped user ID.")
		return
	case len(m.BizOpaque) > 512:
		bad("Param biz_opaque_callback_data must be at most 512 characters long.")
		return
	}
	sent := Sent{WAMID: NewWAMID(), PhoneNumberID: n.ID, To: m.To, Type: m.Type, BizOpaque: m.BizOpaque,
		Authorization: r.Header.Get("Authorization")}
	if m.To == "" {
		sent.Recipient = m.Recipient
	}
	if m.Context != nil {
		sent.ReplyTo = m.Context.MessageID
	}
	switch m.Type {
	case "text":
		if m.Text == nil || strings.TrimSpace(m.Text.Body) == "" {
			bad("Param text['body'] is required.")
			return
		}
		if utf8.RuneCountInString(m.Text.Body) > 4096 {
			bad("Param text['body'] must be at most 4096 characters long.")
			return
		}
		sent.Text = m.Text.Body
	case "template":
		if m.Template == nil || m.Template.Name == "" || m.Template.Language == nil || m.Template.Language.Code == "" {
			bad("Param template['name'] and template['language']['code'] are required.")
			return
		}
		s.mu.Lock()
		ok := s.templates[n.ID+"/"+m.Template.Name+"/"+m.Template.Language.Code]
		s.mu.Unlock()
		if !ok {
			graphError(w, http.StatusNotFound, 132001, 0, "Template name does not exist in the translation")
			return
		}
		sent.Template, sent.Language = m.Template.Name, m.Template.Language.Code
	default:
		bad("Param type must be one of text, template (this fake's subset).")
		return
	}
	contact := map[string]any{"input": m.To, "wa_id": strings.TrimPrefix(m.To, "+")}
	if m.To == "" {
		contact = map[string]any{"input": m.Recipient, "user_id": m.Recipient}
	}
	s.mu.Lock()
	s.sent = append(s.sent, sent)
	hook := s.hook
	s.notifyLocked()
	s.mu.Unlock()
	if hook != nil {
		s.reportStatuses(hook, sent, fail)
	}
	s.answer(w, fail, http.StatusOK, map[string]any{"messaging_product": "whatsapp",
		"contacts": []any{contact}, "messages": []any{map[string]any{"id": sent.WAMID}}})
}

// answer writes a success, or drops the connection for a LoseResponse failure.
func (s *Server) answer(w http.ResponseWriter, fail *Failure, status int, v any) {
	if fail != nil && fail.LoseResponse {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	writeJSON(w, status, v)
}

// reportStatuses posts the message's status webhooks in the background, in
// order, as Meta would: the configured statuses, or "failed" with the
// injected error.
func (s *Server) reportStatuses(h *statusHook, sent Sent, fail *Failure) {
	statuses := h.statuses
	if fail != nil && fail.Async {
		statuses = []string{"failed"}
	}
	if len(statuses) == 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		time.Sleep(20 * time.Millisecond) // the answer usually arrives first
		for _, st := range statuses {
			spec := StatusSpec{ID: sent.WAMID, Status: st, RecipientID: strings.TrimPrefix(sent.To, "+"),
				RecipientUserID: sent.Recipient, BizOpaque: sent.BizOpaque}
			if st == "failed" && fail != nil {
				msg := fail.Message
				if msg == "" {
					msg = defaultMessage(fail.Code)
				}
				spec.Errors = []ErrorSpec{{Code: fail.Code, Title: msg, Details: msg}}
			}
			s.post(h, Statuses(sent.PhoneNumberID, spec))
		}
	}()
}

// post delivers a signed webhook, retrying a few times on failure as Meta does.
func (s *Server) post(h *statusHook, body []byte) {
	for attempt := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req := NewWebhookRequest(h.url, h.secret, body).WithContext(ctx)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
