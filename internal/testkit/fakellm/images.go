package fakellm

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// Image is an image a request carried, decoded from the wire: an OpenAI
// image_url part (a base64 data URL), an Anthropic image block (base64
// source) or an Ollama message's images entry.
type Image struct {
	MimeType string // as declared on the wire; Ollama declares none, so it is sniffed
	Data     []byte
}

// ImageTokens is what the fake counts for each image in a request's input
// tokens (on top of its word count), so cost accounting of images is testable.
const ImageTokens = 100

// Images returns every image of the request, in order.
func (r Request) Images() []Image {
	var out []Image
	for _, m := range r.Messages {
		out = append(out, m.Images...)
	}
	return out
}

// imageTypes are the formats all three APIs accept.
var imageTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

func knownImageType(t string) bool {
	for _, k := range imageTypes {
		if t == k {
			return true
		}
	}
	return false
}

// sniff is the image type of data by its first bytes ("" if none of ours).
func sniff(data []byte) string {
	if t := http.DetectContentType(data); knownImageType(t) {
		return t
	}
	return ""
}

// decodeBase64 reads standard base64 (what every API documents), padding
// required, as the vendors' decoders do.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("empty image")
	}
	return b, nil
}

// parseDataURL reads "data:image/png;base64,...." as OpenAI accepts it.
func parseDataURL(u string) (Image, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return Image{}, fmt.Errorf("only base64 data URLs are supported by the fake (got %.30q)", u)
	}
	meta, data, ok := strings.Cut(rest, ",")
	mime, enc, _ := strings.Cut(meta, ";")
	if !ok || enc != "base64" {
		return Image{}, fmt.Errorf("Invalid base64 image_url.")
	}
	b, err := decodeBase64(data)
	if err != nil {
		return Image{}, fmt.Errorf("Invalid base64 image_url.")
	}
	return Image{MimeType: mime, Data: b}, nil
}

// checkImage refuses what the APIs refuse: a type outside the four formats,
// or bytes that are not the declared type (Anthropic checks this; OpenAI
// fails to decode them).
func checkImage(img Image) string {
	if !knownImageType(img.MimeType) {
		return fmt.Sprintf("You uploaded an unsupported image. Please make sure your image has of one the following formats: %v (got %q).", imageTypes, img.MimeType)
	}
	if got := sniff(img.Data); got != img.MimeType {
		return fmt.Sprintf("Image does not match the provided media type %s (the bytes are %q)", img.MimeType, got)
	}
	return ""
}

// SetBlind names models that cannot see: a request sending one of them an
// image is refused as the vendor refuses it (400), which is what a client
// that does not know the model's capabilities would hit.
func (s *Server) SetBlind(models ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blind = map[string]bool{}
	for _, m := range models {
		s.blind[m] = true
	}
}

// blindRefusal is the error for an image sent to a model set blind, or "".
func (s *Server) blindRefusal(req Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.blind[req.Model] || len(req.Images()) == 0 {
		return ""
	}
	return fmt.Sprintf("Invalid content type. image_url is only supported by certain models (%s cannot read images).", req.Model)
}
