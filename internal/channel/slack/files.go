package slack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/konstruct/konstruct/internal/media"
)

// File is a file shared in a message (an event's files[]), as far as
// Konstruct reads it.
type File struct {
	ID       string
	Name     string
	Title    string
	MimeType string
	Size     int64
	// URL is url_private_download (url_private when Slack sends no download
	// URL): fetched with the bot token as a Bearer header. Empty for files
	// whose event carries no URL (file_access "check_file_info", shared from
	// another workspace): FileInfo resolves it.
	URL string
	// Mode is "hosted" for files stored in Slack; "external", "tombstone"
	// (deleted) and "hidden_by_limit" files cannot be downloaded.
	Mode string
}

type wireFile struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	Title              string `json:"title"`
	MimeType           string `json:"mimetype"`
	Size               int64  `json:"size"`
	URLPrivate         string `json:"url_private"`
	URLPrivateDownload string `json:"url_private_download"`
	Mode               string `json:"mode"`
	FileAccess         string `json:"file_access"`
}

func (w wireFile) file() File {
	f := File{ID: w.ID, Name: w.Name, Title: w.Title, MimeType: w.MimeType, Size: w.Size, Mode: w.Mode,
		URL: w.URLPrivateDownload}
	if f.URL == "" {
		f.URL = w.URLPrivate
	}
	return f
}

// Downloadable reports whether the file is stored in Slack (not a link to
// an external service, deleted, or hidden by the workspace's plan).
func (f File) Downloadable() bool {
	switch f.Mode {
	case "external", "tombstone", "hidden_by_limit":
		return false
	}
	return true
}

// FileInfo asks files.info for a file the event described only by ID.
func (c *Client) FileInfo(ctx context.Context, token, fileID string) (File, error) {
	const method = "files.info"
	f, _, _, err := c.api(token).GetFileInfoContext(ctx, fileID, 0, 0)
	if err != nil {
		return File{}, wrapErr(method, err)
	}
	return wireFile{ID: f.ID, Name: f.Name, Title: f.Title, MimeType: f.Mimetype, Size: int64(f.Size),
		URLPrivate: f.URLPrivate, URLPrivateDownload: f.URLPrivateDownload, Mode: f.Mode}.file(), nil
}

// DownloadFile fetches a file's private URL with the bot token, reading at
// most limit bytes. The token is only ever sent to Slack: the URL must be on
// a slack.com host over HTTPS, or on the Web API's own host (a test fake).
//
// Errors: a *media.Refused for what retrying cannot fix (a URL that is not
// Slack's, 401/403/404/410, a file over limit); an *Error with RetryAfter for
// a 429; anything else (5xx, timeouts, a broken connection) is retryable.
func (c *Client) DownloadFile(ctx context.Context, token, fileURL string, limit int64) ([]byte, error) {
	const method = "files.download"
	if !c.slackHost(fileURL) {
		return nil, media.Refuse("Slack gave a download address that is not Slack's", fmt.Errorf("slack: %s: refusing to send the bot token to %q", method, fileURL))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fileURL, nil)
	if err != nil {
		return nil, media.Refuse("Slack gave an unusable download address", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Method: method, Err: err}
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusOK:
		return media.ReadLimited(res.Body, res.ContentLength, limit)
	case res.StatusCode == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		return nil, &Error{Method: method, StatusCode: res.StatusCode, RetryAfter: time.Duration(max(secs, 1)) * time.Second,
			Err: fmt.Errorf("slack: %s: %s", method, res.Status)}
	case res.StatusCode >= 500 || res.StatusCode == http.StatusRequestTimeout:
		return nil, &Error{Method: method, StatusCode: res.StatusCode, Err: fmt.Errorf("slack: %s: %s", method, res.Status)}
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
		return nil, media.Refuse("Slack says the file no longer exists", fmt.Errorf("slack: %s: %s", method, res.Status))
	default:
		return nil, media.Refuse("Slack did not let me download it (the app may need the files:read permission)",
			fmt.Errorf("slack: %s: %s", method, res.Status))
	}
}

// slackHost reports whether the bot token may be sent to u.
func (c *Client) slackHost(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return false
	}
	if api, err := url.Parse(c.apiURL); err == nil && p.Scheme == api.Scheme && p.Host == api.Host {
		return true
	}
	host := strings.ToLower(p.Hostname())
	return p.Scheme == "https" && (host == "slack.com" || strings.HasSuffix(host, ".slack.com"))
}
