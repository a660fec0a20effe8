// Package kbtest makes knowledge-base test documents: real PDFs written by a
// PDF writer (go-pdf/fpdf), so extraction is tested on the files users upload
// rather than on hand-made byte strings.
package kbtest

import (
	"bytes"
	"testing"

	"codeberg.org/go-pdf/fpdf"
)

// PDF writes a PDF whose first page starts with title as a heading, then one
// page per entry of pages (lines separated by "\n").
func PDF(t testing.TB, title string, pages ...string) []byte {
	t.Helper()
	f := fpdf.New("P", "mm", "A4", "")
	f.SetTitle(title, true)
	for i, p := range pages {
		f.AddPage()
		if i == 0 && title != "" {
			f.SetFont("Helvetica", "B", 16)
			f.MultiCell(0, 8, title, "", "", false)
		}
		f.SetFont("Helvetica", "", 12)
		f.MultiCell(0, 6, p, "", "", false)
	}
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		t.Fatalf("kbtest: write pdf: %v", err)
	}
	return buf.Bytes()
}
