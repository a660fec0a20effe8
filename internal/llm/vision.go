package llm

import (
	"strings"
)

// Which models accept images, by family (prefix of the model name after the
// provider), from the vendors' model pages. A model that matches no family
// cannot see: it is given a description or a note instead of the image, which
// costs a little when the table lags a new vision model, whereas sending an
// image to a model that cannot take one fails the whole request.
//
// Exceptions are checked first: families whose prefix looks like a vision
// family but whose models take no images.
var vision = map[string]struct{ see, blind []string }{
	ProviderOpenAI: {
		// gpt-4o and gpt-4o-mini, gpt-4.1 (mini, nano), gpt-4.5, gpt-4-turbo,
		// gpt-5 (mini, nano, chat), o1, o3, o4-mini.
		see: []string{"gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-4-turbo", "gpt-4-vision", "gpt-5", "o1", "o3", "o4"},
		// The first mini reasoning models and o1-preview were text only; the
		// audio, realtime and speech variants of gpt-4o take no images.
		blind: []string{"o1-mini", "o1-preview", "o3-mini", "gpt-4o-audio", "gpt-4o-mini-audio", "gpt-4o-realtime",
			"gpt-4o-mini-realtime", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-mini-tts", "gpt-4o-search", "gpt-4o-mini-search"},
	},
	ProviderAnthropic: {
		// Every Claude 3 model and every model since (Sonnet, Opus, Haiku 4.x).
		see: []string{"claude-3", "claude-sonnet-", "claude-opus-", "claude-haiku-"},
		// Claude 3.5 Haiku launched text only.
		blind: []string{"claude-3-5-haiku"},
	},
	ProviderOllama: {
		// Ollama's library names (the tag after ':' is the size or quantisation).
		see: []string{"llava", "bakllava", "llama3.2-vision", "llama4", "qwen2.5vl", "qwen3-vl", "gemma3", "gemma4",
			"minicpm-v", "moondream", "granite3.2-vision", "mistral-small3.1", "mistral-small3.2"},
		// gemma3n is text only in Ollama; gemma3's 1b and 270m sizes have no vision encoder.
		blind: []string{"gemma3n", "gemma3:1b", "gemma3:270m"},
	},
}

// SupportsVision reports whether "provider/model" accepts images.
func SupportsVision(model string) bool {
	provider, name, ok := strings.Cut(model, "/")
	if !ok {
		return false
	}
	return supportsVision(provider, name)
}

func supportsVision(provider, model string) bool {
	v, ok := vision[provider]
	if !ok {
		return false
	}
	for _, p := range v.blind {
		if strings.HasPrefix(model, p) {
			return false
		}
	}
	if provider == ProviderOllama {
		model, _, _ = strings.Cut(model, ":") // "llava:13b", "gemma3:27b-it-qat"
	}
	for _, p := range v.see {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// VisionModels returns the entries of chain that accept images, in order.
func VisionModels(chain []string) []string {
	var out []string
	for _, m := range chain {
		if SupportsVision(m) {
			out = append(out, m)
		}
	}
	return out
}

// ImageTokens is what one image is estimated to cost in a prompt's budget:
// about what Anthropic charges for an image of 1.15 megapixels and OpenAI
// for a large one in high detail (each vendor scales the image down to its
// own limit first, so a bigger upload costs no more).
const ImageTokens = 1600

// hasImages reports whether any message of req carries an image.
func hasImages(req Request) bool {
	for _, m := range req.Messages {
		if len(m.Images) > 0 {
			return true
		}
	}
	return false
}

// withoutImages returns req with each image replaced by its Text, for a
// model that cannot see; req is not modified.
func withoutImages(req Request) Request {
	msgs := make([]Message, len(req.Messages))
	for i, m := range req.Messages {
		if len(m.Images) > 0 {
			var b strings.Builder
			for _, img := range m.Images {
				b.WriteString(img.textOrNote())
				b.WriteString("\n")
			}
			b.WriteString(m.Content)
			m.Content = strings.TrimRight(b.String(), "\n")
			m.Images = nil
		}
		msgs[i] = m
	}
	req.Messages = msgs
	return req
}

// textOrNote is what a model that cannot see reads in the image's place.
func (img Image) textOrNote() string {
	if img.Text != "" {
		return img.Text
	}
	return "[The user sent an image here, which you cannot see. Say so if it matters for your answer.]"
}
