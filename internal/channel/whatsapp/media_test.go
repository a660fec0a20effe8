package whatsapp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/media"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

// graph is a small Graph API for media: GET /{version}/{media-id} answers
// the media's URL and metadata (checking the token and, when asked, the
// phone number), and the URL serves the bytes to the same token. Each
// resolve mints a new URL; expire makes the URLs minted so far answer 404,
// as Meta's do after five minutes.
type graph struct {
	t       *testing.T
	srv     *httptest.Server
	token   string
	version string

	mu        sync.Mutex
	media     map[string]graphMedia
	resolves  int
	downloads int
	nextURL   int
	live      map[string]string // url token → media ID
	// scripted answers, consumed in order
	resolveFail  []int
	downloadFail []int
}

type graphMedia struct {
	data     []byte
	mime     string
	sha      string // as Graph writes it
	size     string // file_size as sent (a number or a quoted one)
	phone    string
	download string // overrides the URL handed out
}

func newGraph(t *testing.T) *graph {
	g := &graph{t: t, token: "EAAG-test", version: "v25.0", media: map[string]graphMedia{}, live: map[string]string{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *graph) add(id string, m graphMedia) {
	if m.sha == "" {
		sum := sha256.Sum256(m.data)
		m.sha = base64.StdEncoding.EncodeToString(sum[:])
	}
	if m.size == "" {
		m.size = strconv.Itoa(len(m.data))
	}
	g.mu.Lock()
	g.media[id] = m
	g.mu.Unlock()
}

func (g *graph) expire() {
	g.mu.Lock()
	g.live = map[string]string{}
	g.mu.Unlock()
}

func graphErr(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}})
}

func (g *graph) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		graphErr(w, http.StatusUnauthorized, 190, "Error validating access token: Session has expired")
		return
	}
	if tok, ok := strings.CutPrefix(r.URL.Path, "/whatsapp_business/attachments/"); ok {
		g.downloads++
		if len(g.downloadFail) > 0 {
			st := g.downloadFail[0]
			g.downloadFail = g.downloadFail[1:]
			w.WriteHeader(st)
			return
		}
		id, ok := g.live[tok]
		if !ok {
			w.WriteHeader(http.StatusNotFound) // expired URL
			return
		}
		m := g.media[id]
		w.Header().Set("Content-Type", m.mime)
		w.Header().Set("Content-Length", strconv.Itoa(len(m.data)))
		_, _ = w.Write(m.data)
		return
	}
	version, id, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	require.Equal(g.t, g.version, version, "the configured Graph version")
	g.resolves++
	if len(g.resolveFail) > 0 {
		st := g.resolveFail[0]
		g.resolveFail = g.resolveFail[1:]
		graphErr(w, st, 2, "Service temporarily unavailable")
		return
	}
	m, ok := g.media[id]
	if !ok {
		graphErr(w, http.StatusBadRequest, 100, "Unsupported get request. Object with ID '"+id+"' does not exist")
		return
	}
	if p := r.URL.Query().Get("phone_number_id"); p != "" && m.phone != "" && p != m.phone {
		graphErr(w, http.StatusBadRequest, 100, "Param phone_number_id does not match the media's phone number")
		return
	}
	g.nextURL++
	tok := "t" + strconv.Itoa(g.nextURL)
	g.live[tok] = id
	u := g.srv.URL + "/whatsapp_business/attachments/" + tok + "?mid=" + id + "&ext=1700000000&hash=ATs"
	if m.download != "" {
		u = m.download
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"messaging_product":"whatsapp","url":` + strconv.Quote(u) + `,"mime_type":` + strconv.Quote(m.mime) +
		`,"sha256":` + strconv.Quote(m.sha) + `,"file_size":` + m.size + `,"id":` + strconv.Quote(id) + `}`))
}

func (g *graph) client(t *testing.T) *MediaClient {
	c, err := NewMediaClient(MediaConfig{BaseURL: g.srv.URL})
	require.NoError(t, err)
	return c
}

func refusedReason(t *testing.T, err error) string {
	t.Helper()
	r, ok := media.AsRefused(err)
	require.True(t, ok, "want a refusal, got %v", err)
	return r.Reason
}

func retryable(t *testing.T, err error) *MediaError {
	t.Helper()
	var e *MediaError
	require.True(t, errors.As(err, &e), "want a retryable error, got %v", err)
	_, refused := media.AsRefused(err)
	require.False(t, refused)
	return e
}

func TestDownloadMedia(t *testing.T) {
	g := newGraph(t)
	c := g.client(t)
	ctx := context.Background()
	jpeg := testimage.JPEG(32, 32, 5)
	g.add("1001", graphMedia{data: jpeg, mime: "image/jpeg", phone: "PN1"})

	f, err := c.Download(ctx, g.token, "1001", "PN1", "", 5<<20)
	require.NoError(t, err)
	require.Equal(t, jpeg, f.Data)
	require.Equal(t, "image/jpeg", f.MimeType)
	require.True(t, f.Verified, "the base64 SHA-256 was checked")

	info, err := c.Resolve(ctx, g.token, "1001", "")
	require.NoError(t, err)
	require.Equal(t, int64(len(jpeg)), info.FileSize)
	require.Equal(t, "1001", info.ID)

	// A hex hash (as some Graph answers carry it) and a quoted file_size.
	sum := sha256.Sum256(jpeg)
	g.add("1002", graphMedia{data: jpeg, mime: "image/jpeg", sha: hex.EncodeToString(sum[:]), size: `"` + strconv.Itoa(len(jpeg)) + `"`})
	f, err = c.Download(ctx, g.token, "1002", "", "", 5<<20)
	require.NoError(t, err)
	require.True(t, f.Verified)

	// A media ID of another number is not handed over.
	_, err = c.Download(ctx, g.token, "1001", "PN2", "", 5<<20)
	require.Contains(t, refusedReason(t, err), "no longer available")
}

// The URL lasts minutes: a 404 (or 401) from it resolves the media again,
// once, and fetches the fresh URL.
func TestDownloadMediaReResolvesAnExpiredURL(t *testing.T) {
	g := newGraph(t)
	c := g.client(t)
	png := testimage.PNG(8, 8, 1)
	g.add("2001", graphMedia{data: png, mime: "image/png"})

	g.downloadFail = []int{http.StatusNotFound}
	f, err := c.Download(context.Background(), g.token, "2001", "", "", 5<<20)
	require.NoError(t, err)
	require.Equal(t, png, f.Data)
	require.Equal(t, 2, g.resolves)
	require.Equal(t, 2, g.downloads)

	g.downloadFail = []int{http.StatusUnauthorized}
	_, err = c.Download(context.Background(), g.token, "2001", "", "", 5<<20)
	require.NoError(t, err)

	// Only once: a URL that fails twice is given up.
	g.downloadFail = []int{http.StatusNotFound, http.StatusNotFound}
	_, err = c.Download(context.Background(), g.token, "2001", "", "", 5<<20)
	require.Contains(t, refusedReason(t, err), "no longer available")
}

func TestDownloadMediaFailures(t *testing.T) {
	g := newGraph(t)
	c := g.client(t)
	ctx := context.Background()
	png := testimage.PNG(8, 8, 2)
	g.add("3001", graphMedia{data: png, mime: "image/png"})

	// Outages are retryable, at either step.
	g.resolveFail = []int{http.StatusServiceUnavailable}
	retryable(t, must(c.Download(ctx, g.token, "3001", "", "", 5<<20)))
	g.downloadFail = []int{http.StatusBadGateway}
	retryable(t, must(c.Download(ctx, g.token, "3001", "", "", 5<<20)))
	g.resolveFail = []int{http.StatusTooManyRequests}
	retryable(t, must(c.Download(ctx, g.token, "3001", "", "", 5<<20)))

	// Unknown media, a refused token: refused for good.
	require.Contains(t, refusedReason(t, must(c.Download(ctx, g.token, "nope", "", "", 5<<20))), "no longer available")
	require.Contains(t, refusedReason(t, must(c.Download(ctx, "EAAG-expired", "3001", "", "", 5<<20))), "access token")

	// Too big, by Graph's word (nothing downloaded) or while reading (Graph
	// understated the size).
	downloads := g.downloads
	require.Contains(t, refusedReason(t, must(c.Download(ctx, g.token, "3001", "", "", int64(len(png)-1)))), "larger than")
	require.Equal(t, downloads, g.downloads, "refused from file_size, before downloading")
	g.add("3002", graphMedia{data: png, mime: "image/png", size: "10"})
	require.Contains(t, refusedReason(t, must(c.Download(ctx, g.token, "3002", "", "", int64(len(png)-1)))), "larger than")

	// Bytes that do not match Meta's hash are not accepted (retryable: a
	// corrupted transfer).
	other := sha256.Sum256([]byte("something else"))
	g.add("3003", graphMedia{data: png, mime: "image/png", sha: base64.StdEncoding.EncodeToString(other[:])})
	e := retryable(t, must(c.Download(ctx, g.token, "3003", "", "", 5<<20)))
	require.Contains(t, e.Error(), "do not match the SHA-256")

	// Without a hash from Graph, the webhook's is checked.
	g.add("3004", graphMedia{data: png, mime: "image/png", sha: "-"})
	retryable(t, must(c.Download(ctx, g.token, "3004", "", base64.StdEncoding.EncodeToString(other[:]), 5<<20)))
	g.add("3005", graphMedia{data: png, mime: "image/png", sha: "-"})
	f, err := c.Download(ctx, g.token, "3005", "", "", 5<<20)
	require.NoError(t, err)
	require.False(t, f.Verified, "no hash to check")

	// The token goes to Meta's hosts only.
	g.add("3006", graphMedia{data: png, mime: "image/png", download: "https://attacker.example.com/steal"})
	require.Contains(t, refusedReason(t, must(c.Download(ctx, g.token, "3006", "", "", 5<<20))), "not Meta's")
}

func TestMediaHashFormats(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	for _, s := range []string{hex.EncodeToString(sum[:]), strings.ToUpper(hex.EncodeToString(sum[:])),
		base64.StdEncoding.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(sum[:])} {
		b, ok := decodeMediaHash(s)
		require.True(t, ok, s)
		require.Equal(t, sum[:], b)
	}
	for _, s := range []string{"", "-", "abc", base64.StdEncoding.EncodeToString([]byte("short"))} {
		_, ok := decodeMediaHash(s)
		require.False(t, ok, s)
	}
}

func TestNewMediaClient(t *testing.T) {
	c, err := NewMediaClient(MediaConfig{BaseURL: "https://graph.facebook.com/"})
	require.NoError(t, err)
	require.Equal(t, MediaDefaultVersion, c.version)
	_, err = NewMediaClient(MediaConfig{BaseURL: "graph.facebook.com"})
	require.Error(t, err)
}

// must drops a MediaFile to keep the failure cases to one line each.
func must(_ MediaFile, err error) error { return err }
