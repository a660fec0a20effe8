// Package knowledge is a tenant's knowledge base: documents are extracted to
// text, cut into heading-aware chunks, embedded and indexed by an ingestion
// workflow, and searched by a hybrid of vector similarity and Postgres
// full-text search, merged by reciprocal rank fusion. The agent reaches it
// through the kb_search tool, whose answers are recorded per turn so the
// transcript shows which chunks an answer used.
package knowledge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Source types.
const (
	TypeMarkdown = "markdown"
	TypeText     = "text"
	TypeHTML     = "html"
	TypePDF      = "pdf"
)

// ErrUnsupported is a file type the knowledge base cannot read.
var ErrUnsupported = errors.New("unsupported document type")

// ErrNoText is a document with no extractable text (an image-only PDF, say).
var ErrNoText = errors.New("the document has no text")

// DetectType names the source type of an upload from its file name, its
// declared content type and its first bytes. It refuses what it does not
// know rather than guess: a .docx read as text would index garbage.
func DetectType(filename, contentType string, data []byte) (string, error) {
	if bytes.HasPrefix(data, []byte("%PDF-")) {
		return TypePDF, nil
	}
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".md", ".markdown":
		return TypeMarkdown, nil
	case ".txt", ".text":
		return TypeText, nil
	case ".html", ".htm":
		return TypeHTML, nil
	case ".pdf":
		return TypePDF, nil // not a PDF by its bytes: Extract says why
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "text/markdown", "text/x-markdown":
		return TypeMarkdown, nil
	case "text/plain":
		return TypeText, nil
	case "text/html", "application/xhtml+xml":
		return TypeHTML, nil
	case "application/pdf":
		return TypePDF, nil
	}
	return "", fmt.Errorf("%w: %q (%s); upload Markdown (.md), plain text (.txt), HTML (.html) or PDF (.pdf)",
		ErrUnsupported, filename, contentType)
}

// Extract turns a document's bytes into Markdown-like text: headings are
// lines starting with '#', so the chunker can keep them as context.
func Extract(sourceType string, data []byte) (string, error) {
	var text string
	var err error
	switch sourceType {
	case TypeMarkdown, TypeText:
		if !utf8.Valid(data) {
			return "", fmt.Errorf("knowledge: extract: the %s file is not UTF-8 text", sourceType)
		}
		text = strings.TrimPrefix(string(data), "\ufeff")
	case TypeHTML:
		text, err = extractHTML(data)
	case TypePDF:
		text, err = extractPDF(data)
	default:
		return "", fmt.Errorf("knowledge: extract: %w: %q", ErrUnsupported, sourceType)
	}
	if err != nil {
		return "", err
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if strings.TrimSpace(text) == "" {
		return "", fmt.Errorf("knowledge: extract: %w", ErrNoText)
	}
	return text, nil
}

// skipped HTML elements carry no content a reader would want answered from.
var skipped = map[atom.Atom]bool{atom.Script: true, atom.Style: true, atom.Nav: true, atom.Noscript: true,
	atom.Template: true, atom.Head: true, atom.Svg: true, atom.Iframe: true, atom.Footer: true, atom.Form: true}

// block elements end a line of text.
var block = map[atom.Atom]bool{atom.P: true, atom.Div: true, atom.Li: true, atom.Tr: true, atom.Br: true,
	atom.Section: true, atom.Article: true, atom.Blockquote: true, atom.Pre: true, atom.Table: true,
	atom.Ul: true, atom.Ol: true, atom.Dd: true, atom.Dt: true, atom.Main: true, atom.Header: true}

var headingLevel = map[atom.Atom]int{atom.H1: 1, atom.H2: 2, atom.H3: 3, atom.H4: 4, atom.H5: 5, atom.H6: 6}

var spaces = regexp.MustCompile(`[ \t\f\v\x{a0}]+`)

func extractHTML(data []byte) (string, error) {
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("knowledge: extract html: %w", err)
	}
	var b strings.Builder
	var line strings.Builder
	flush := func(blank bool) {
		s := strings.TrimSpace(spaces.ReplaceAllString(line.String(), " "))
		line.Reset()
		if s != "" {
			b.WriteString(s)
			b.WriteString("\n")
			if blank {
				b.WriteString("\n")
			}
		}
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && skipped[n.DataAtom] {
			return
		}
		if n.Type == html.TextNode {
			line.WriteString(strings.ReplaceAll(n.Data, "\n", " "))
			return
		}
		if lvl, ok := headingLevel[n.DataAtom]; ok && n.Type == html.ElementNode {
			flush(true)
			line.WriteString(strings.Repeat("#", lvl) + " ")
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
			flush(true)
			return
		}
		if n.Type == html.ElementNode && n.DataAtom == atom.Li {
			flush(false)
			line.WriteString("- ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if n.Type == html.ElementNode && block[n.DataAtom] {
			flush(n.DataAtom == atom.P || n.DataAtom == atom.Table || n.DataAtom == atom.Ul || n.DataAtom == atom.Ol)
		}
		if n.Type == html.ElementNode && (n.DataAtom == atom.Td || n.DataAtom == atom.Th) {
			line.WriteString(" ")
		}
	}
	walk(doc)
	flush(false)
	return b.String(), nil
}

// extractPDF reads the text of every page with ledongthuc/pdf (pure Go, a
// maintained fork of rsc.io/pdf with text extraction). The library panics on
// some malformed files; that is turned into an error for the uploader.
func extractPDF(data []byte) (text string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("knowledge: extract pdf: the file could not be read as a PDF (%v)", r)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("knowledge: extract pdf: the file could not be read as a PDF: %w", err)
	}
	rd, err := r.GetPlainText()
	if err != nil {
		return "", fmt.Errorf("knowledge: extract pdf: %w", err)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return "", fmt.Errorf("knowledge: extract pdf: %w", err)
	}
	return string(b), nil
}

// readAll reads at most limit bytes of r, failing when there is more.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// ErrTooLarge is an upload over the size limit.
var ErrTooLarge = errors.New("the document is too large")
