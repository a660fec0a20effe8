package fakewhatsapp

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Media endpoints of the Graph API, added through the extension hook:
//
//   - GET /{version}/{media-id}[?phone_number_id=...] with the number's
//     bearer token answers, as Meta does,
//     {"messaging_product":"whatsapp","url","mime_type","sha256","file_size","id"}
//     — sha256 in hex here (the webhook's image.sha256 is base64), file_size a
//     number, and a url on the lookaside path
//     /whatsapp_business/attachments/?mid=…&ext=<expiry>&hash=…, minted anew
//     on every call and valid for MediaURLTTL;
//   - GET that URL with the same bearer token serves the bytes with their
//     Content-Type and Content-Length. An expired URL answers 404, a missing
//     or foreign token 401.
//
// Failures are injected with Fail(OpMediaURL | OpMediaDownload, ...): a
// Failure with a Graph Code answers a Graph error object, one with only a
// Status (a CDN's 503) answers that status with a short text body.

// Operations of the media endpoints failures can be injected into.
const (
	OpMediaURL      = "media_url"      // GET /{version}/{media-id}
	OpMediaDownload = "media_download" // GET the lookaside URL
)

// MediaURLTTL is how long a download URL works, as Meta's (five minutes).
const MediaURLTTL = 5 * time.Minute

// attachmentsPath is the lookaside path Meta's download URLs have.
const attachmentsPath = "/whatsapp_business/attachments/"

// Media is a file a WhatsApp user sent to a business number.
type Media struct {
	ID            string // numeric, like Meta's
	PhoneNumberID string // the business number that received it
	MimeType      string
	Data          []byte
	// SHA256 is the bytes' hash as the webhook's image.sha256 carries it
	// (base64); the media endpoint answers it in hex.
	SHA256 string
}

// Image is the webhook message in which user from sends m, with caption.
func (m Media) Image(from, caption string) Msg {
	return Image(from, m.ID, m.MimeType, m.SHA256, caption)
}

type mediaStore struct {
	mu    sync.Mutex
	files map[string]Media
	urls  map[string]mediaURL // by the URL's hash parameter
	next  int64
}

type mediaURL struct {
	mediaID string
	expires time.Time
}

func init() {
	extensions = append(extensions, func(s *Server) {
		ms := &mediaStore{files: map[string]Media{}, urls: map[string]mediaURL{}, next: 1_000_000_000_000_000}
		s.mediaFiles = ms
		s.ResolveObject(func(w http.ResponseWriter, r *http.Request, id string) bool {
			ms.mu.Lock()
			m, ok := ms.files[id]
			ms.mu.Unlock()
			if !ok {
				return false // not a media ID: a phone number, or unknown (Graph's 100/33)
			}
			s.serveMediaURL(w, r, ms, m)
			return true
		})
		s.HandleFunc("GET "+attachmentsPath, func(w http.ResponseWriter, r *http.Request) { s.serveMediaDownload(w, r, ms) })
	})
}

// AddMedia stores data as a file a user sent to phoneNumberID and returns it
// (with a fresh media ID); m.Image builds the webhook message that carries it.
func (s *Server) AddMedia(phoneNumberID, mimeType string, data []byte) Media {
	ms := s.mediaFiles
	sum := sha256.Sum256(data)
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.next++
	m := Media{ID: strconv.FormatInt(ms.next, 10), PhoneNumberID: phoneNumberID, MimeType: mimeType,
		Data: append([]byte(nil), data...), SHA256: base64.StdEncoding.EncodeToString(sum[:])}
	ms.files[m.ID] = m
	return m
}

// ExpireMediaURLs makes every download URL handed out so far answer 404, as
// Meta's do after MediaURLTTL.
func (s *Server) ExpireMediaURLs() {
	ms := s.mediaFiles
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for k, u := range ms.urls {
		u.expires = time.Time{}
		ms.urls[k] = u
	}
}

// MediaCalls counts the requests the fake received for op (OpMediaURL,
// OpMediaDownload) of media ID id, answered or not.
func (s *Server) MediaCalls(op, id string) int {
	n := 0
	for _, r := range s.Requests() {
		switch {
		case op == OpMediaURL && r.Method == http.MethodGet && r.Version != "" && strings.HasSuffix(r.Path, "/"+id):
			n++
		case op == OpMediaDownload && strings.HasPrefix(r.Path, attachmentsPath+"?mid="+id+"&"):
			n++
		}
	}
	return n
}

// recordMedia notes a media request (a download's Path with its query, which
// names the media) and takes the next injected failure of op.
func (s *Server) recordMedia(r *http.Request, op, version string) *Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := r.URL.Path
	if op == OpMediaDownload {
		path = r.URL.RequestURI()
	}
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Version: version, Authorization: r.Header.Get("Authorization")})
	var fail *Failure
	if q := s.failures[op]; len(q) > 0 {
		f := q[0]
		s.failures[op] = q[1:]
		fail = &f
	}
	s.notifyLocked()
	return fail
}

// tokenNumber is the number a bearer token may use, or nil (with whether a
// bearer was sent at all).
func (s *Server) tokenNumber(auth string) (n *Number, hasBearer bool) {
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked[token] {
		return nil, true
	}
	return s.byToken[token], true
}

func (s *Server) serveMediaURL(w http.ResponseWriter, r *http.Request, ms *mediaStore, m Media) {
	version := r.PathValue("version")
	fail := s.recordMedia(r, OpMediaURL, version)
	owner, hasBearer := s.tokenNumber(r.Header.Get("Authorization"))
	notFound := func() {
		graphError(w, http.StatusBadRequest, 100, 33, "Unsupported get request. Object with ID '"+m.ID+
			"' does not exist, cannot be loaded due to missing permissions, or does not support this operation.")
	}
	switch {
	case !versionRE.MatchString(version):
		graphError(w, http.StatusBadRequest, 2635, 0, "Unknown version: "+version)
	case !hasBearer:
		graphError(w, http.StatusBadRequest, 104, 0, "An access token is required to request this resource.")
	case owner == nil:
		graphError(w, http.StatusUnauthorized, 190, 0, "Invalid OAuth access token - Cannot parse access token")
	case owner.ID != m.PhoneNumberID:
		notFound() // another business's media: Graph does not tell it exists
	case r.URL.Query().Has("phone_number_id") && r.URL.Query().Get("phone_number_id") != m.PhoneNumberID:
		graphError(w, http.StatusBadRequest, 100, 0, "Invalid parameter: the media does not belong to phone number "+
			r.URL.Query().Get("phone_number_id"))
	case fail != nil:
		writeFailure(w, *fail)
	default:
		expires := time.Now().Add(MediaURLTTL)
		hash := "AT" + randHex(16)
		ms.mu.Lock()
		ms.urls[hash] = mediaURL{mediaID: m.ID, expires: expires}
		ms.mu.Unlock()
		sum := sha256.Sum256(m.Data)
		url := s.srv.URL + attachmentsPath + "?mid=" + m.ID + "&ext=" + strconv.FormatInt(expires.Unix(), 10) + "&hash=" + hash
		writeJSON(w, http.StatusOK, map[string]any{"messaging_product": "whatsapp", "url": url, "mime_type": m.MimeType,
			"sha256": hex.EncodeToString(sum[:]), "file_size": len(m.Data), "id": m.ID})
	}
}

func (s *Server) serveMediaDownload(w http.ResponseWriter, r *http.Request, ms *mediaStore) {
	q := r.URL.Query()
	ms.mu.Lock()
	u, known := ms.urls[q.Get("hash")]
	m, hasFile := ms.files[u.mediaID]
	ms.mu.Unlock()
	fail := s.recordMedia(r, OpMediaDownload, "")
	owner, _ := s.tokenNumber(r.Header.Get("Authorization"))
	plain := func(status int, text string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}
	switch {
	case fail != nil && fail.Code == 0 && fail.Raw == "":
		status := cmp.Or(fail.Status, http.StatusServiceUnavailable)
		plain(status, http.StatusText(status))
	case fail != nil:
		writeFailure(w, *fail)
	case !known || !hasFile || q.Get("mid") != u.mediaID || time.Now().After(u.expires):
		plain(http.StatusNotFound, "URL signature expired")
	case owner == nil || owner.ID != m.PhoneNumberID:
		graphError(w, http.StatusUnauthorized, 190, 0, "Invalid OAuth access token - Cannot parse access token")
	default:
		w.Header().Set("Content-Type", m.MimeType)
		w.Header().Set("Content-Length", strconv.Itoa(len(m.Data)))
		w.Header().Set("Content-Disposition", "attachment")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(m.Data)
	}
}
