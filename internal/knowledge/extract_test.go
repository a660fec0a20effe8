package knowledge_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/knowledge"
	"github.com/konstruct/konstruct/internal/knowledge/kbtest"
)

func TestDetectType(t *testing.T) {
	for _, tc := range []struct{ name, ctype, data, want string }{
		{"notes.md", "", "# Hi", knowledge.TypeMarkdown},
		{"notes.TXT", "application/octet-stream", "hi", knowledge.TypeText},
		{"page.html", "", "<p>hi</p>", knowledge.TypeHTML},
		{"blob", "text/html; charset=utf-8", "<p>hi</p>", knowledge.TypeHTML},
		{"scan.bin", "", "%PDF-1.4 ...", knowledge.TypePDF},
		{"", "text/markdown", "# x", knowledge.TypeMarkdown},
	} {
		got, err := knowledge.DetectType(tc.name, tc.ctype, []byte(tc.data))
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
	_, err := knowledge.DetectType("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", []byte("PK\x03\x04"))
	require.ErrorIs(t, err, knowledge.ErrUnsupported)
	require.ErrorContains(t, err, "report.docx")
}

func TestExtractPDFWrittenByAPDFWriter(t *testing.T) {
	data := kbtest.PDF(t, "Zorblax warranty", "The Zorblax warranty lasts 37 months.\nReturns go to depot Quillon.",
		"Page two: the flux capacitor needs 1.21 gigawatts.")
	text, err := knowledge.Extract(knowledge.TypePDF, data)
	require.NoError(t, err)
	require.Contains(t, text, "The Zorblax warranty lasts 37 months.")
	require.Contains(t, text, "Returns go to depot Quillon.")
	require.Contains(t, text, "flux capacitor needs 1.21 gigawatts")
}

func TestExtractRefusesWhatItCannotRead(t *testing.T) {
	_, err := knowledge.Extract(knowledge.TypePDF, []byte("%PDF-1.4 this is no PDF at all"))
	require.ErrorContains(t, err, "could not be read as a PDF")
	_, err = knowledge.Extract(knowledge.TypeText, []byte{0xff, 0xfe, 0x00, 'a'})
	require.ErrorContains(t, err, "not UTF-8")
	_, err = knowledge.Extract(knowledge.TypeHTML, []byte("<script>alert(1)</script><nav>menu</nav>"))
	require.ErrorIs(t, err, knowledge.ErrNoText)
}

func TestExtractHTMLKeepsHeadingsAndDropsChrome(t *testing.T) {
	text, err := knowledge.Extract(knowledge.TypeHTML, []byte(`<html><head><title>T</title><style>p{}</style></head>
<body><nav><a href="/">Home</a> <a href="/x">Pricing</a></nav>
<h1>Returns</h1><p>Send items to   depot <b>Quillon</b>.</p>
<h2>Refunds</h2><ul><li>Within 14 days</li><li>Original packaging</li></ul>
<script>var secret = "drop me";</script></body></html>`))
	require.NoError(t, err)
	require.Contains(t, text, "# Returns\n")
	require.Contains(t, text, "## Refunds\n")
	require.Contains(t, text, "Send items to depot Quillon.")
	require.Contains(t, text, "- Within 14 days")
	require.NotContains(t, text, "drop me")
	require.NotContains(t, text, "Pricing")
	pieces := knowledge.Chunk(text)
	require.Len(t, pieces, 2)
	require.Equal(t, "Returns › Refunds", pieces[1].Heading)
}

func TestChunkIsHeadingAwareBoundedAndStable(t *testing.T) {
	long := strings.Repeat("alpha beta gamma delta ", 150) // 600 words in one paragraph
	md := "intro line\n\n# Setup\n\nInstall it.\n\n## Linux\n\n" + long + "\n\n```\n# not a heading\n```\n\n# Usage\n\nRun it."
	pieces := knowledge.Chunk(md)
	var headings []string
	for _, p := range pieces {
		headings = append(headings, p.Heading)
		require.LessOrEqual(t, len(strings.Fields(p.Content)), knowledge.MaxWords)
		require.Len(t, p.Hash, 32)
	}
	require.Equal(t, []string{"", "Setup", "Setup › Linux", "Setup › Linux", "Setup › Linux", "Setup › Linux", "Usage"}, headings)
	require.Equal(t, "intro line", pieces[0].Content)
	require.Contains(t, pieces[5].Content, "# not a heading", "a fenced block's # line is code")
	// Consecutive windows of a long paragraph overlap.
	a, b := strings.Fields(pieces[2].Content), strings.Fields(pieces[3].Content)
	require.Equal(t, a[len(a)-knowledge.OverlapWords:], b[:knowledge.OverlapWords])
	require.Equal(t, "Usage\n\nRun it.", pieces[6].Text())

	// Same text, same hashes; an edit in one section changes only its hash.
	again := knowledge.Chunk(md)
	require.Equal(t, pieces, again)
	edited := knowledge.Chunk(strings.Replace(md, "Run it.", "Run it twice.", 1))
	require.Len(t, edited, len(pieces))
	for i := range pieces[:6] {
		require.Equal(t, pieces[i].Hash, edited[i].Hash)
	}
	require.NotEqual(t, pieces[6].Hash, edited[6].Hash)
}

func TestChunkBoundsHugeWords(t *testing.T) {
	blob := strings.Repeat("é", 9000) // one 18000-byte "word"
	pieces := knowledge.Chunk("# Blob\n\n" + blob)
	require.Len(t, pieces, 3)
	total := ""
	for _, p := range pieces {
		require.LessOrEqual(t, len(p.Content), knowledge.MaxChunkBytes)
		require.True(t, utf8.ValidString(p.Content))
		require.Equal(t, "Blob", p.Heading)
		total += p.Content
	}
	require.Equal(t, blob, total, "nothing lost")
}
