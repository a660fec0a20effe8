package slack

import (
	"strings"
	"unicode/utf8"
)

// MaxPartChars is the size, in characters, that replies are split at: under
// Slack's recommended 4,000 characters per message, far under its 40,000 hard
// limit.
const MaxPartChars = 3900

// SplitText cuts text into parts of at most max characters (runes) each, so
// that strings.Join(parts, "") == text. It cuts after the last paragraph break
// ("\n\n") in the window, else after the last line break, else after the last
// space, preferring a break in the second half of the window so that parts are
// not needlessly short; a word longer than max is cut inside. Separators stay at
// the end of the part they follow, so nothing is lost or added.
//
// Empty text gives no parts; max <= 0 means no limit. Invalid UTF-8 counts one
// character per bad byte and is never cut inside a valid sequence.
func SplitText(text string, max int) []string {
	if text == "" {
		return nil
	}
	if max <= 0 || len(text) <= max { // len in bytes >= runes
		return []string{text}
	}
	var parts []string
	for text != "" {
		window := runePrefix(text, max)
		if len(window) == len(text) {
			parts = append(parts, text)
			break
		}
		cut := breakPoint(window, max)
		parts = append(parts, text[:cut])
		text = text[cut:]
	}
	return parts
}

// runePrefix returns the longest prefix of s with at most n runes.
func runePrefix(s string, n int) string {
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

// breakPoint picks the byte offset within window (which holds max runes) at
// which to end the part.
func breakPoint(window string, max int) int {
	half := len(runePrefix(window, max/2))
	best := 0
	for _, sep := range []string{"\n\n", "\n", " "} {
		i := strings.LastIndex(window, sep)
		if i < 0 {
			continue
		}
		end := i + len(sep)
		if end >= half && end > 0 {
			return end
		}
		if end > best {
			best = end
		}
	}
	if best > 0 {
		// Only breaks early in the window: a short part beats a cut word.
		return best
	}
	return len(window)
}
