package whatsapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/konstruct/konstruct/internal/media"
)

// MediaDefaultVersion is the Graph API version media is fetched with when
// none is configured.
const MediaDefaultVersion = "v25.0"

// MediaConfig configures a MediaClient.
type MediaConfig struct {
	// BaseURL is the Graph API host, without a version
	// (https://graph.facebook.com; tests point it at a fake).
	BaseURL    string
	Version    string       // default MediaDefaultVersion
	HTTPClient *http.Client // default: 60 s timeout
}

// MediaClient downloads the media of inbound WhatsApp messages: it resolves
// a media ID to a short-lived URL (GET /{version}/{media-id}), then fetches
// that URL with the same access token. It does not retry: the caller (a
// Temporal activity) owns retries, and tells them apart by the errors.
type MediaClient struct {
	base    *url.URL
	version string
	http    *http.Client
}

// NewMediaClient builds a MediaClient.
func NewMediaClient(cfg MediaConfig) (*MediaClient, error) {
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("whatsapp: media: base URL %q: want an absolute http(s) URL such as https://graph.facebook.com", cfg.BaseURL)
	}
	c := &MediaClient{base: base, version: cfg.Version, http: cfg.HTTPClient}
	if c.version == "" {
		c.version = MediaDefaultVersion
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 60 * time.Second}
	}
	return c, nil
}

// MediaInfo is Graph's description of a media object.
type MediaInfo struct {
	ID       string
	URL      string // valid for about five minutes
	MimeType string
	SHA256   string // as Graph gives it (base64 in webhooks, hex has been seen here)
	FileSize int64  // 0 when not given
}

// MediaFile is a downloaded media object.
type MediaFile struct {
	Data     []byte
	MimeType string // as announced by Graph; the caller checks the bytes
	// Verified reports that the bytes matched a SHA-256 Meta gave; false
	// when Meta gave none in a form this client reads.
	Verified bool
}

// MediaError is a Graph API failure that is worth retrying (throttling,
// 5xx, a broken connection). Permanent failures are *media.Refused.
type MediaError struct {
	Op         string // "resolve" or "download"
	Status     int    // HTTP status, 0 for transport errors
	Code       int    // Graph's error.code, when it sent one
	Message    string // Graph's error.message
	RetryAfter time.Duration
	Err        error
}

func (e *MediaError) Error() string {
	msg := fmt.Sprintf("whatsapp: media %s", e.Op)
	if e.Status != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Code != 0 {
		msg += fmt.Sprintf(" (code %d)", e.Code)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *MediaError) Unwrap() error { return e.Err }

// Resolve asks Graph for the media's URL and metadata. phoneNumberID, when
// set, makes Graph check that the media belongs to that business number.
func (c *MediaClient) Resolve(ctx context.Context, token, mediaID, phoneNumberID string) (MediaInfo, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + "/" + c.version + "/" + url.PathEscape(mediaID)
	if phoneNumberID != "" {
		u.RawQuery = url.Values{"phone_number_id": {phoneNumberID}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return MediaInfo{}, media.Refuse("WhatsApp gave an unusable media ID", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.http.Do(req)
	if err != nil {
		return MediaInfo{}, &MediaError{Op: "resolve", Err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return MediaInfo{}, &MediaError{Op: "resolve", Status: res.StatusCode, Err: err}
	}
	if res.StatusCode != http.StatusOK {
		return MediaInfo{}, graphError("resolve", res, body)
	}
	var w struct {
		ID       string          `json:"id"`
		URL      string          `json:"url"`
		MimeType string          `json:"mime_type"`
		SHA256   string          `json:"sha256"`
		FileSize json.RawMessage `json:"file_size"` // a number, or a string of one
	}
	if err := json.Unmarshal(body, &w); err != nil || w.URL == "" {
		return MediaInfo{}, &MediaError{Op: "resolve", Status: res.StatusCode, Err: fmt.Errorf("unexpected answer %.200q", body)}
	}
	info := MediaInfo{ID: w.ID, URL: w.URL, MimeType: w.MimeType, SHA256: w.SHA256}
	if s := strings.Trim(string(w.FileSize), `"`); s != "" && s != "null" {
		info.FileSize, _ = strconv.ParseInt(s, 10, 64)
	}
	return info, nil
}

// Download resolves mediaID and fetches it, reading at most limit bytes and
// checking the SHA-256 Meta gives in the resolve answer and expectSHA256
// (the webhook's), each when it is in a form this client reads. The URL lasts minutes, so a 401 or
// 404 from it resolves the media again, once, and downloads the new URL.
//
// Errors: *media.Refused for what retrying cannot fix (too big, an unknown
// or foreign media ID, a refused token, a URL that is not Meta's);
// *MediaError for what may pass (5xx, throttling, a broken connection, bytes
// that do not match their hash).
func (c *MediaClient) Download(ctx context.Context, token, mediaID, phoneNumberID, expectSHA256 string, limit int64) (MediaFile, error) {
	for attempt := 0; ; attempt++ {
		info, err := c.Resolve(ctx, token, mediaID, phoneNumberID)
		if err != nil {
			return MediaFile{}, err
		}
		if info.FileSize > limit {
			return MediaFile{}, media.TooBig(info.FileSize, limit)
		}
		data, status, err := c.fetch(ctx, token, info.URL, limit)
		if (status == http.StatusUnauthorized || status == http.StatusNotFound) && attempt == 0 {
			continue // the URL expired between resolving and fetching: resolve again
		}
		if err != nil {
			return MediaFile{}, err
		}
		f := MediaFile{Data: data, MimeType: info.MimeType}
		got := sha256.Sum256(data)
		for _, want := range []string{info.SHA256, expectSHA256} {
			sum, ok := decodeMediaHash(want)
			if !ok {
				continue
			}
			if !bytes.Equal(got[:], sum) {
				return MediaFile{}, &MediaError{Op: "download", Status: status,
					Err: fmt.Errorf("the %d bytes received do not match the SHA-256 Meta gave (%s)", len(data), want)}
			}
			f.Verified = true
		}
		return f, nil
	}
}

// fetch GETs a media URL with the token; it returns the status too, so that
// Download can tell an expired URL.
func (c *MediaClient) fetch(ctx context.Context, token, mediaURL string, limit int64) ([]byte, int, error) {
	if !c.metaHost(mediaURL) {
		return nil, 0, media.Refuse("WhatsApp gave a download address that is not Meta's",
			fmt.Errorf("whatsapp: refusing to send the access token to %q", mediaURL))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mediaURL, nil)
	if err != nil {
		return nil, 0, media.Refuse("WhatsApp gave an unusable download address", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, 0, &MediaError{Op: "download", Err: err}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		return nil, res.StatusCode, graphError("download", res, body)
	}
	data, err := media.ReadLimited(res.Body, res.ContentLength, limit)
	if err != nil {
		if _, refused := media.AsRefused(err); refused {
			return nil, res.StatusCode, err
		}
		return nil, res.StatusCode, &MediaError{Op: "download", Status: res.StatusCode, Err: err}
	}
	return data, res.StatusCode, nil
}

// metaHost reports whether the access token may be sent to u: Meta's hosts
// over HTTPS, or the configured Graph host itself (a test fake).
func (c *MediaClient) metaHost(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return false
	}
	if p.Scheme == c.base.Scheme && p.Host == c.base.Host {
		return true
	}
	host := strings.ToLower(p.Hostname())
	if p.Scheme != "https" {
		return false
	}
	for _, d := range []string{"fbsbx.com", "facebook.com", "fbcdn.net", "whatsapp.net"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// graphError classifies a non-200 Graph answer. Graph's error body is
// {"error":{"message","type","code","error_subcode","fbtrace_id"}}.
func graphError(op string, res *http.Response, body []byte) error {
	var w struct {
		Error struct {
			Message string `json:"message"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &w)
	e := &MediaError{Op: op, Status: res.StatusCode, Code: w.Error.Code, Message: w.Error.Message}
	if e.Message == "" && len(body) > 0 {
		e.Message = fmt.Sprintf("%.200s", body)
	}
	switch {
	case res.StatusCode == http.StatusTooManyRequests || w.Error.Code == 4 || w.Error.Code == 80007 || w.Error.Code == 130429:
		secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		e.RetryAfter = time.Duration(secs) * time.Second
		return e
	case res.StatusCode >= 500 || res.StatusCode == http.StatusRequestTimeout:
		return e
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden || w.Error.Code == 190:
		return media.Refuse("WhatsApp did not let me download it (the number's access token may have expired)", e)
	default: // 400 code 100 (unknown media ID), 404, 410: it is not there
		return media.Refuse("WhatsApp says the file is no longer available", e)
	}
}

// decodeMediaHash reads a SHA-256 as Meta writes it: base64 in webhooks
// ("ian…jM4k="), and in some Graph answers hex. Anything else is not
// checked (ok=false).
func decodeMediaHash(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == sha256.Size {
			return b, true
		}
	}
	return nil, false
}
