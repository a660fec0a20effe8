package fakeslack

import (
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// File is a file uploaded to a workspace of the fake: served at its private
// URLs to requests bearing that workspace's bot token, described by
// files.info, and put in events with WithFiles.
type File struct {
	ID                 string
	TeamID             string
	User               string
	Name               string
	MimeType           string
	Data               []byte
	URLPrivate         string
	URLPrivateDownload string
	Created            int64
	// Mode is "hosted" unless set otherwise before the file is added
	// ("external", "tombstone", "hidden_by_limit").
	Mode string
}

// FilesDownload names file downloads in FailNext and Calls, as if they were
// a Web API method: FailNextWithStatus(FilesDownload, 1, 503) makes the next
// download answer 503 (with Slack's HTML error page).
const FilesDownload = "files.download"

// AddFile stores data as a file that user uploaded to workspace teamID and
// returns it with its ID and private URLs.
func (s *Server) AddFile(teamID, user, name, mimeType string, data []byte) File {
	return s.AddFileWith(File{TeamID: teamID, User: user, Name: name, MimeType: mimeType, Data: data})
}

// AddFileWith stores f as given, filling in the ID, URLs and mode it lacks.
func (s *Server) AddFileWith(f File) File {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if f.ID == "" {
		f.ID = "F" + strings.ToUpper(strconv.FormatInt(s.baseSec, 36)) + strconv.FormatInt(s.seq, 10)
	}
	if f.Mode == "" {
		f.Mode = "hosted"
	}
	if f.Created == 0 {
		f.Created = time.Now().Unix()
	}
	base := s.srv.URL + "/files-pri/" + f.TeamID + "-" + f.ID + "/"
	if f.URLPrivate == "" && f.Mode == "hosted" {
		f.URLPrivate = base + f.Name
		f.URLPrivateDownload = base + "download/" + f.Name
	}
	if s.files == nil {
		s.files = map[string]File{}
	}
	s.files[f.ID] = f
	return f
}

// RemoveFile deletes a file: its URLs answer 404 and files.info file_not_found.
func (s *Server) RemoveFile(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, id)
}

// serveFile serves GET /files-pri/{team}-{file}/[download/]{name} as Slack
// does: the bytes to the workspace's bot token (Authorization: Bearer), and
// to anyone else the HTML of Slack's sign-in page with status 200 — which is
// what a client that forgot the token or the files:read scope gets.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls[FilesDownload]++
	var fail *Failure
	if q := s.failures[FilesDownload]; len(q) > 0 {
		f := q[0]
		s.failures[FilesDownload] = q[1:]
		fail = &f
	}
	s.notifyLocked()
	rest := strings.TrimPrefix(r.URL.Path, "/files-pri/")
	dir, _, _ := strings.Cut(rest, "/")
	_, id, _ := strings.Cut(dir, "-")
	f, found := s.files[id]
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ws := s.byToken[token]
	s.mu.Unlock()

	if fail != nil && !fail.LoseResponse {
		writeFailure(w, *fail)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	switch {
	case ws == nil || (found && ws.TeamID != f.TeamID):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to your workspace</body></html>"))
		return
	case !found || path.Base(r.URL.Path) != f.Name:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<html><body>Not Found</body></html>"))
		return
	}
	if fail != nil && fail.LoseResponse {
		loseResponse(w)
		return
	}
	w.Header().Set("Content-Type", f.MimeType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	if strings.Contains(r.URL.Path, "/download/") {
		w.Header().Set("Content-Disposition", `attachment; filename="`+f.Name+`"`)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.Data)
	}
}

// filesInfo answers files.info for a file of the token's workspace.
func (s *Server) filesInfo(req request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, code := s.workspaceLocked(req.token)
	if w == nil {
		return http.StatusOK, slackErr(code)
	}
	f, ok := s.files[req.params["file"]]
	if !ok || f.TeamID != w.TeamID {
		return http.StatusOK, slackErr("file_not_found")
	}
	return http.StatusOK, map[string]any{"ok": true, "file": f.wire(), "comments": []any{},
		"response_metadata": map[string]any{"next_cursor": ""}}
}

// wire is the file as Slack describes it in an event's files[] and in files.info.
func (f File) wire() obj {
	ext := strings.TrimPrefix(path.Ext(f.Name), ".")
	o := obj{
		{"id", f.ID},
		{"created", f.Created},
		{"timestamp", f.Created},
		{"name", f.Name},
		{"title", f.Name},
		{"mimetype", f.MimeType},
		{"filetype", ext},
		{"pretty_type", strings.ToUpper(ext)},
		{"user", f.User},
		{"user_team", f.TeamID},
		{"editable", false},
		{"size", len(f.Data)},
		{"mode", f.Mode},
		{"is_external", f.Mode == "external"},
		{"external_type", ""},
		{"is_public", false},
		{"public_url_shared", false},
		{"display_as_bot", false},
		{"username", ""},
	}
	if f.URLPrivate != "" {
		o = append(o, kv{"url_private", f.URLPrivate}, kv{"url_private_download", f.URLPrivateDownload})
	}
	return append(o,
		kv{"permalink", "https://" + strings.ToLower(f.TeamID) + ".slack.com/files/" + f.User + "/" + f.ID + "/" + f.Name},
		kv{"is_starred", false},
		kv{"has_rich_preview", false},
		kv{"file_access", "visible"},
	)
}

// WithFiles attaches files to the event (files[]), as Slack sends a message
// or app_mention that shares them; on a message event it also sets the
// file_share subtype.
func WithFiles(files ...File) EventOption {
	return func(s *eventSpec) {
		wire := make([]any, len(files))
		for i, f := range files {
			wire[i] = f.wire()
		}
		s.event = s.event.set("files", wire).set("upload", false).set("display_as_bot", false)
		if typ, _ := s.event.get("type").(string); typ == "message" {
			s.event = s.event.set("subtype", "file_share")
		}
	}
}

// WithFileAccess replaces each file of the event with the stub Slack sends
// for a file it wants fetched with files.info ("check_file_info"): its ID
// and nothing else.
func WithFileAccess(access string) EventOption {
	return func(s *eventSpec) {
		files, _ := s.event.get("files").([]any)
		for i, f := range files {
			id, _ := f.(obj).get("id").(string)
			files[i] = obj{{"id", id}, {"mode", "file_access"}, {"file_access", access}}
		}
	}
}

// FileShare is the event_callback of a DM in which user shared files (with
// text, which may be empty): a message.im event of subtype file_share.
func FileShare(teamID, channel, user, text, ts, threadTS, eventID string, files []File, opts ...EventOption) []byte {
	return DirectMessage(teamID, channel, user, text, ts, threadTS, eventID, append([]EventOption{WithFiles(files...)}, opts...)...)
}
