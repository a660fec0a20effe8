// Package media holds what every channel's file download shares: which
// images the platform accepts (checked on the bytes, not on what the channel
// announced), the size limit, reading a body without passing it, and the
// error that says a file was refused for good and why.
package media

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultMaxBytes is the largest file read when no limit is configured:
// WhatsApp's limit for images, and Anthropic's per image.
const DefaultMaxBytes = 5 << 20

// Image types a model is given: the formats OpenAI, Anthropic and Ollama all
// take.
var imageTypes = []string{"image/jpeg", "image/png", "image/webp", "image/gif"}

// Sniff returns the image type of data from its first bytes, or "" when it
// is none of the accepted formats.
func Sniff(data []byte) string {
	t := http.DetectContentType(data)
	for _, k := range imageTypes {
		if t == k {
			return t
		}
	}
	return ""
}

// Announced reports whether a channel's announced MIME type can be an
// accepted image: one of the formats, or a type too vague to judge before
// the bytes are seen ("" or application/octet-stream).
func Announced(mimeType string) bool {
	t, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mimeType)), ";")
	if t == "" || t == "application/octet-stream" {
		return true
	}
	for _, k := range imageTypes {
		if t == k || (t == "image/jpg" && k == "image/jpeg") {
			return true
		}
	}
	return false
}

// Refused is a file that will never be read: too big, not an image, or
// refused by the channel (gone, forbidden). Retrying cannot help; Reason is
// told to the end user.
type Refused struct {
	Reason string // for the end user: "it is larger than 5 MB"
	Err    error  // detail for the logs
}

func (e *Refused) Error() string {
	if e.Err != nil {
		return "media: refused: " + e.Reason + ": " + e.Err.Error()
	}
	return "media: refused: " + e.Reason
}

func (e *Refused) Unwrap() error { return e.Err }

// Refuse builds a *Refused.
func Refuse(reason string, err error) error { return &Refused{Reason: reason, Err: err} }

// AsRefused returns the *Refused in err's chain, if any.
func AsRefused(err error) (*Refused, bool) {
	var r *Refused
	ok := errors.As(err, &r)
	return r, ok
}

// TooBig is the refusal of a file over limit bytes.
func TooBig(size, limit int64) error {
	if size > 0 {
		return Refuse("it is larger than "+HumanSize(limit)+" (it is "+HumanSize(size)+")", nil)
	}
	return Refuse("it is larger than "+HumanSize(limit), nil)
}

// HumanSize renders a byte count for people: "5 MB", "740 KB", "12 bytes".
func HumanSize(n int64) string {
	switch {
	case n >= 1<<20:
		if n%(1<<20) == 0 {
			return fmt.Sprintf("%d MB", n>>20)
		}
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+(1<<9))>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadLimited reads body up to limit bytes; a longer body is refused as too
// big without reading the rest. contentLength (-1 if unknown) refuses early.
func ReadLimited(body io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength > limit {
		return nil, TooBig(contentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("media: read: %w", err) // a broken connection: retryable
	}
	if int64(len(b)) > limit {
		return nil, TooBig(0, limit)
	}
	return b, nil
}

// Check accepts data as an image and returns its type (sniffed), or refuses
// it. HTML where an image was expected means the channel did not
// authenticate the download (Slack answers its sign-in page), which is told
// as such rather than as a wrong file type.
func Check(data []byte) (string, error) {
	if len(data) == 0 {
		return "", Refuse("the file is empty", nil)
	}
	if t := Sniff(data); t != "" {
		return t, nil
	}
	if got := http.DetectContentType(data); strings.HasPrefix(got, "text/html") {
		return "", Refuse("the channel did not let me download it (the app may be missing a permission)",
			errors.New("got an HTML page instead of the file"))
	}
	return "", Refuse("it is not an image I can read (JPEG, PNG, WebP or GIF)", fmt.Errorf("content is %s", http.DetectContentType(data)))
}
