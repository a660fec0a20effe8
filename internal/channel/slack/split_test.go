package slack_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/slack"
)

func TestSplitText(t *testing.T) {
	tests := []struct {
		name string
		text string
		max  int
		want []string
	}{
		{"empty", "", 10, nil},
		{"fits", "hello", 10, []string{"hello"}},
		{"exactly max", "0123456789", 10, []string{"0123456789"}},
		{"no limit", strings.Repeat("x", 50), 0, []string{strings.Repeat("x", 50)}},
		{"paragraphs", "aaaa bbbb\n\ncccc dddd", 12, []string{"aaaa bbbb\n\n", "cccc dddd"}},
		{"paragraph preferred over later line", "aaaaaa\n\nbb\ncc dd ee", 14, []string{"aaaaaa\n\n", "bb\ncc dd ee"}},
		{"line when no paragraph", "aaaa\nbbbb cccc", 10, []string{"aaaa\n", "bbbb cccc"}},
		{"space when no newline", "aaaa bbbb cccc", 10, []string{"aaaa bbbb ", "cccc"}},
		{"late line beats early paragraph", "a\n\nbbbbb\ncc", 10, []string{"a\n\nbbbbb\n", "cc"}},
		{"hard cut long word", "abcdefghijklmnopqrstuvwxyz", 10, []string{"abcdefghij", "klmnopqrst", "uvwxyz"}},
		{"early break beats cut word", "a bcdefghijklmno", 10, []string{"a ", "bcdefghijk", "lmno"}},
		{"runes not bytes", "ééééé ééééé", 6, []string{"ééééé ", "ééééé"}},
		{"no cut inside rune", "日本語のテキスト", 3, []string{"日本語", "のテキ", "スト"}},
		{"max 1", "ab c", 1, []string{"a", "b", " ", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slack.SplitText(tt.text, tt.max)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.text, strings.Join(got, ""))
		})
	}
}

func TestSplitTextLongReply(t *testing.T) {
	para := strings.Repeat("All work and no play makes Jack a dull boy. ", 20) // 880 chars
	text := strings.Repeat(para+"\n\n", 12)
	parts := slack.SplitText(text, slack.MaxPartChars)
	require.Len(t, parts, 3)
	require.Equal(t, text, strings.Join(parts, ""))
	for _, p := range parts[:len(parts)-1] {
		require.True(t, strings.HasSuffix(p, "\n\n"), "cut at a paragraph break")
		require.LessOrEqual(t, utf8.RuneCountInString(p), slack.MaxPartChars)
	}
}

func FuzzSplitText(f *testing.F) {
	f.Add("hello world", 5)
	f.Add("a\n\nb\nc d", 3)
	f.Add("日本語のテキスト\n\nです", 4)
	f.Add("\xff\xfe invalid \xc3", 2)
	f.Add(strings.Repeat("word ", 100), 17)
	f.Fuzz(func(t *testing.T, text string, max int) {
		if max > 1000 || max < -5 {
			max %= 1000
		}
		parts := slack.SplitText(text, max)
		if strings.Join(parts, "") != text {
			t.Fatalf("parts do not rejoin: %q -> %q", text, parts)
		}
		for _, p := range parts {
			if p == "" {
				t.Fatalf("empty part in %q", parts)
			}
			if max > 0 && utf8.RuneCountInString(p) > max {
				t.Fatalf("part of %d runes > max %d: %q", utf8.RuneCountInString(p), max, p)
			}
		}
	})
}
