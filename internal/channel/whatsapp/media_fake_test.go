package whatsapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/media"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

// The media client against the fake Graph API's media endpoints (which the
// e2e tests use): the two agree on Meta's wire format — the resolve answer
// with a hex SHA-256 and the webhook's base64 one both verify the bytes, an
// expired URL is resolved again, a CDN's 503 is a retryable error, and
// another business's token cannot see the media.
func TestMediaClientAgainstTheFakeGraphAPI(t *testing.T) {
	fake := fakewhatsapp.New(t)
	fake.AddNumber("106540352242922", "EAAG-acme", "+1 555-0100", "Acme")
	fake.AddNumber("106540352242999", "EAAG-globex", "+1 555-0199", "Globex")
	png := testimage.PNG(12, 12, 9)
	m := fake.AddMedia("106540352242922", "image/png", png)
	c, err := whatsapp.NewMediaClient(whatsapp.MediaConfig{BaseURL: fake.URL(), Version: "v25.0"})
	require.NoError(t, err)
	ctx := context.Background()

	// The resolve answer, field by field, as Meta sends it.
	req, err := http.NewRequest(http.MethodGet, fake.URL()+"v25.0/"+m.ID, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer EAAG-acme")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&raw))
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "whatsapp", raw["messaging_product"])
	require.Equal(t, m.ID, raw["id"])
	require.Equal(t, "image/png", raw["mime_type"])
	require.Equal(t, float64(len(png)), raw["file_size"])
	require.Len(t, raw["sha256"], 64, "hex in the resolve answer")
	u, err := url.Parse(raw["url"].(string))
	require.NoError(t, err)
	require.Equal(t, "/whatsapp_business/attachments/", u.Path)
	require.Equal(t, m.ID, u.Query().Get("mid"))
	require.NotEmpty(t, u.Query().Get("ext"))
	require.NotEmpty(t, u.Query().Get("hash"))

	// The URL without the token is refused; with it, it serves the bytes.
	res, err = http.Get(raw["url"].(string))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	f, err := c.Download(ctx, "EAAG-acme", m.ID, "106540352242922", m.SHA256, 1<<20)
	require.NoError(t, err)
	require.Equal(t, png, f.Data)
	require.Equal(t, "image/png", f.MimeType)
	require.True(t, f.Verified, "both hashes checked")

	// An expired URL (404) is resolved again, once.
	before := fake.MediaCalls(fakewhatsapp.OpMediaURL, m.ID)
	fake.Fail(fakewhatsapp.OpMediaDownload, fakewhatsapp.Failure{Status: http.StatusNotFound})
	f, err = c.Download(ctx, "EAAG-acme", m.ID, "106540352242922", m.SHA256, 1<<20)
	require.NoError(t, err)
	require.Equal(t, png, f.Data)
	require.Equal(t, before+2, fake.MediaCalls(fakewhatsapp.OpMediaURL, m.ID))

	// A URL handed out earlier and expired since answers 404.
	fake.ExpireMediaURLs()
	req, _ = http.NewRequest(http.MethodGet, raw["url"].(string), nil)
	req.Header.Set("Authorization", "Bearer EAAG-acme")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusNotFound, res.StatusCode, string(body))

	// A CDN's 503 is worth retrying.
	fake.Fail(fakewhatsapp.OpMediaDownload, fakewhatsapp.Failure{Status: http.StatusServiceUnavailable})
	_, err = c.Download(ctx, "EAAG-acme", m.ID, "106540352242922", m.SHA256, 1<<20)
	var me *whatsapp.MediaError
	require.ErrorAs(t, err, &me)
	require.Equal(t, http.StatusServiceUnavailable, me.Status)
	_, refused := media.AsRefused(err)
	require.False(t, refused)

	// Graph's own failure on resolve, throttling: retryable with its delay.
	fake.Fail(fakewhatsapp.OpMediaURL, fakewhatsapp.Failure{Code: 4, Message: "Application request limit reached"})
	_, err = c.Download(ctx, "EAAG-acme", m.ID, "", "", 1<<20)
	require.ErrorAs(t, err, &me)
	require.Equal(t, 4, me.Code)

	// Too big for the limit: refused before downloading.
	downloads := fake.MediaCalls(fakewhatsapp.OpMediaDownload, m.ID)
	_, err = c.Download(ctx, "EAAG-acme", m.ID, "", "", int64(len(png)-1))
	r, refused := media.AsRefused(err)
	require.True(t, refused, "%v", err)
	require.Contains(t, r.Reason, "larger than")
	require.Equal(t, downloads, fake.MediaCalls(fakewhatsapp.OpMediaDownload, m.ID))

	// Bytes that do not match the webhook's hash are not accepted.
	other := fake.AddMedia("106540352242922", "image/png", testimage.PNG(12, 12, 10))
	_, err = c.Download(ctx, "EAAG-acme", m.ID, "", other.SHA256, 1<<20)
	require.ErrorAs(t, err, &me)
	require.Contains(t, me.Error(), "do not match the SHA-256")

	// Another business cannot see it; a number that is not the media's is refused.
	_, err = c.Download(ctx, "EAAG-globex", m.ID, "106540352242999", "", 1<<20)
	r, refused = media.AsRefused(err)
	require.True(t, refused, "%v", err)
	require.Contains(t, r.Reason, "no longer available")
	_, err = c.Download(ctx, "EAAG-acme", m.ID, "106540352242999", "", 1<<20)
	_, refused = media.AsRefused(err)
	require.True(t, refused, "%v", err)
	_, err = c.Download(ctx, "EAAG-revoked", m.ID, "", "", 1<<20)
	r, refused = media.AsRefused(err)
	require.True(t, refused, "%v", err)
	require.True(t, strings.Contains(r.Reason, "access token"), r.Reason)
}
