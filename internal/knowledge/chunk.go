package knowledge

import (
	"crypto/sha256"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Chunking parameters, in words (a word is about 1.3 tokens of English, so
// MaxWords ≈ 300 tokens): small enough that a chunk is about one thing and
// several fit in the model's context, large enough to carry an answer with
// its surroundings. Overlap repeats the tail of a chunk at the head of the
// next one when a long section is split, so a sentence cut at the boundary
// is whole in one of them.
const (
	MaxWords     = 230
	OverlapWords = 30
	// MaxChunkBytes bounds a chunk whose "words" are huge (a base64 blob, a
	// URL list without spaces): the store refuses more than 20000 characters.
	MaxChunkBytes = 8000
)

// Piece is one chunk of a document before it is stored.
type Piece struct {
	Heading string // heading path, "Setup › Install"
	Content string
	Hash    []byte // sha256 of heading and content: unchanged pieces keep their embedding on replace
}

// Text is what the model, the embedder and the portal see of a chunk: its
// heading path gives the content its context.
func (p Piece) Text() string { return ChunkText(p.Heading, p.Content) }

// ChunkText joins a heading path and content.
func ChunkText(heading, content string) string {
	if heading == "" {
		return content
	}
	return heading + "\n\n" + content
}

var headingRE = regexp.MustCompile(`^(#{1,6})\s+(.+?)\s*#*\s*$`)

// Chunk cuts Markdown-like text (see Extract) into pieces. A heading always
// starts a new piece, and a piece never spans two sections; paragraphs of a
// section are packed up to MaxWords, and a paragraph longer than that is cut
// with OverlapWords of overlap. Headings inside fenced code blocks are code,
// not headings. The same text always gives the same pieces and hashes.
func Chunk(text string) []Piece {
	var out []Piece
	var path []string // heading titles by level
	var levels []int
	var paras []string
	flushSection := func() {
		out = append(out, pack(strings.Join(path, " › "), paras)...)
		paras = nil
	}
	var para []string
	endPara := func() {
		if len(para) > 0 {
			paras = append(paras, strings.Join(para, "\n"))
			para = nil
		}
	}
	fence := false
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = !fence
		}
		if !fence {
			if m := headingRE.FindStringSubmatch(trimmed); m != nil {
				endPara()
				flushSection()
				lvl := len(m[1])
				for len(levels) > 0 && levels[len(levels)-1] >= lvl {
					levels, path = levels[:len(levels)-1], path[:len(path)-1]
				}
				levels, path = append(levels, lvl), append(path, m[2])
				continue
			}
			if trimmed == "" {
				endPara()
				continue
			}
		}
		para = append(para, strings.TrimRight(line, " \t"))
	}
	endPara()
	flushSection()
	out = capBytes(out)
	for i := range out {
		sum := sha256.Sum256([]byte(out[i].Heading + "\x00" + out[i].Content))
		out[i].Hash = sum[:]
	}
	return out
}

// pack groups a section's paragraphs into pieces of at most MaxWords.
func pack(heading string, paras []string) []Piece {
	var out []Piece
	var cur []string
	words := 0
	emit := func() {
		if len(cur) > 0 {
			out = append(out, Piece{Heading: heading, Content: strings.Join(cur, "\n\n")})
			cur, words = nil, 0
		}
	}
	for _, p := range paras {
		n := len(strings.Fields(p))
		if n > MaxWords {
			emit()
			out = append(out, split(heading, p)...)
			continue
		}
		if words+n > MaxWords {
			emit()
		}
		cur = append(cur, p)
		words += n
	}
	emit()
	return out
}

// split cuts one long paragraph into overlapping windows of words.
func split(heading, para string) []Piece {
	w := strings.Fields(para)
	var out []Piece
	for start := 0; start < len(w); start += MaxWords - OverlapWords {
		end := min(start+MaxWords, len(w))
		out = append(out, Piece{Heading: heading, Content: strings.Join(w[start:end], " ")})
		if end == len(w) {
			break
		}
	}
	return out
}

// capBytes cuts any piece longer than MaxChunkBytes at rune boundaries.
func capBytes(in []Piece) []Piece {
	out := in[:0:0]
	for _, p := range in {
		c := p.Content
		for len(c) > MaxChunkBytes {
			cut := MaxChunkBytes
			for cut > 0 && !utf8.RuneStart(c[cut]) {
				cut--
			}
			out = append(out, Piece{Heading: p.Heading, Content: c[:cut]})
			c = c[cut:]
		}
		out = append(out, Piece{Heading: p.Heading, Content: c})
	}
	return out
}
