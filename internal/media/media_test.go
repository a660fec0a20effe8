package media

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

func TestCheckSniffsTheBytes(t *testing.T) {
	for want, data := range map[string][]byte{
		"image/png": testimage.PNG(2, 2, 1), "image/jpeg": testimage.JPEG(2, 2, 1),
		"image/gif": testimage.GIF(2, 2, 1), "image/webp": testimage.WebP(1),
	} {
		got, err := Check(data)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := Check([]byte("%PDF-1.7\n..."))
	r, ok := AsRefused(err)
	require.True(t, ok)
	require.Contains(t, r.Reason, "not an image")

	_, err = Check([]byte("<!DOCTYPE html><html><body>Sign in to Slack</body></html>"))
	r, ok = AsRefused(err)
	require.True(t, ok)
	require.Contains(t, r.Reason, "did not let me download it", "an HTML sign-in page is an authentication problem")

	_, err = Check(nil)
	_, ok = AsRefused(err)
	require.True(t, ok)
}

func TestReadLimited(t *testing.T) {
	b, err := ReadLimited(strings.NewReader("12345"), -1, 5)
	require.NoError(t, err)
	require.Equal(t, "12345", string(b))

	_, err = ReadLimited(strings.NewReader("123456"), -1, 5)
	r, ok := AsRefused(err)
	require.True(t, ok, "a body longer than announced is cut at the limit")
	require.Equal(t, "it is larger than 5 bytes", r.Reason)

	// An announced length over the limit is refused before reading anything.
	body := &countingReader{r: bytes.NewReader(make([]byte, 10<<20))}
	_, err = ReadLimited(body, 10<<20, 5<<20)
	r, ok = AsRefused(err)
	require.True(t, ok)
	require.Equal(t, "it is larger than 5 MB (it is 10 MB)", r.Reason)
	require.Zero(t, body.n)

	_, err = ReadLimited(failingReader{}, -1, 5)
	_, ok = AsRefused(err)
	require.False(t, ok, "a broken connection is not a refusal: it is retried")
}

func TestAnnounced(t *testing.T) {
	for _, ok := range []string{"image/png", "IMAGE/JPEG", "image/jpg", "image/webp; q=1", "", "application/octet-stream"} {
		require.True(t, Announced(ok), ok)
	}
	for _, no := range []string{"application/pdf", "video/mp4", "image/heic", "audio/ogg; codecs=opus", "image/svg+xml"} {
		require.False(t, Announced(no), no)
	}
}

func TestHumanSize(t *testing.T) {
	require.Equal(t, "5 MB", HumanSize(5<<20))
	require.Equal(t, "5.5 MB", HumanSize(5<<20+1<<19))
	require.Equal(t, "740 KB", HumanSize(740<<10))
	require.Equal(t, "12 bytes", HumanSize(12))
}

type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
