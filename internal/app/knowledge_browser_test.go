package app_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/knowledge/kbtest"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

// The knowledge journey in a browser: upload a PDF with the plain file input
// and Upload button, drop a Markdown file on the drop zone, watch both reach
// "ready" on the list without reloading (the page polls), open a document's
// chunks, and try a query that finds the PDF's passage with its scores.
func TestBrowserKnowledgeUploadReadyQuery(t *testing.T) {
	testkit.NewTemporal(t)
	fake := fakellm.New(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	h := newHarness(t, map[string]string{
		"KONSTRUCT_TEMPORAL_TASK_QUEUE": "kb-browser-" + hex.EncodeToString(b),
		"KONSTRUCT_OPENAI_API_KEY":      fake.APIKey(),
		"KONSTRUCT_OPENAI_BASE_URL":     fake.OpenAIBaseURL(),
	})
	w := h.app.Worker()
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	// Slow embeddings, so the page is seen polling a document in progress.
	fake.SetEmbedHandler(func(fakellm.Request) fakellm.Reply { return fakellm.Reply{}.After(700 * time.Millisecond) })

	ctx := newChrome(t, 1366, 900)
	shot := newShots(t)
	visit(t, ctx, h.URL+"/sign-up")
	fill(t, ctx, map[string]string{"#name": "Kay Base", "#email": "kay@acme.test", "#organisation": "Acme Robotics",
		"#password": "Knowledge-Is-Power-1597"})
	submit(t, ctx, `button[type=submit]`, "[data-testid=stepper]") // a new organisation lands in the setup stepper
	home := strings.TrimSuffix(strings.TrimPrefix(location(t, ctx), h.URL), "/onboarding")

	// The navigation leads to the Knowledge page.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css(`[data-testid=nav-knowledge]`))))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(css(`[data-testid=upload-form]`))))
	require.Contains(t, text(t, ctx, ".empty"), "No documents yet")

	// Upload with the plain form: file input and submit button.
	pdfPath := filepath.Join(t.TempDir(), "Warranty terms.pdf")
	require.NoError(t, os.WriteFile(pdfPath, kbtest.PDF(t, "Warranty terms",
		"The Zorblax 3000 warranty covers parts and labour for 37 months.\n\nReturns go to depot Quillon."), 0o644))
	require.NoError(t, chromedp.Do(ctx, chromedp.SetUploadFiles(css(`[data-testid=upload-file]`), []string{pdfPath})))
	submit(t, ctx, `[data-testid=upload-submit]`, `[data-testid=documents-table]`)
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Uploaded Warranty terms")

	// Drop a Markdown file on the drop zone: the script submits the form.
	_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(["# Opening hours\n\nThe Quillon depot is open 9 to 5 on weekdays."], "hours.md", {type: "text/markdown"}));
		document.querySelector("[data-dropzone-target]").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
	})()`))
	require.NoError(t, err)
	// The form submission navigates: evaluate until the new page is there.
	require.Eventually(t, func() bool {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.readyState === "complete" ? document.querySelectorAll("tr[data-doc]").length : 0`))
		return err == nil && n == 2
	}, 20*time.Second, 100*time.Millisecond, "the dropped file was uploaded")
	require.Contains(t, text(t, ctx, ".flash-wrap"), "Uploaded hours")
	shot.take(ctx, "knowledge-indexing")

	// Both become ready on this page, without a reload: the table polls.
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`)))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`Array.from(document.querySelectorAll("tr[data-doc] [data-field=status]")).every(s => s.textContent.trim() === "ready")`,
		chromedp.WithPollingTimeout(60*time.Second)))
	require.NoError(t, err, "documents reach ready on the page")
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`))
	require.NoError(t, err)
	require.True(t, same, "progress arrived without reloading the page")
	require.Contains(t, text(t, ctx, "[data-testid=documents-table]"), "Warranty terms")
	require.Regexp(t, `(\d+) / (\d+) chunks`, text(t, ctx, "[data-testid=progress]"))
	shot.take(ctx, "knowledge-ready")

	// A document's page lists its chunks.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(css(`tr[data-doc] a`)), chromedp.WaitVisible(css(`[data-testid=chunks]`))))
	require.Contains(t, text(t, ctx, "[data-testid=chunks]"), "embedded")

	// Try a query: the PDF's passage comes first, with its citation and scores.
	visit(t, ctx, h.URL+home+"/knowledge")
	submit(t, ctx, `[data-testid=try-query]`, `[data-testid=search-form]`)
	fill(t, ctx, map[string]string{"#kb-q": "How long is the Zorblax warranty?"})
	submit(t, ctx, `[data-testid=search-submit]`, `[data-testid=search-results]`)
	first := text(t, ctx, `[data-testid=search-results] tbody tr:first-child`)
	require.Contains(t, first, "[Warranty terms §1]")
	require.Contains(t, first, "37 months")
	score := text(t, ctx, `[data-testid=search-results] tbody tr:first-child [data-testid=score]`)
	require.Regexp(t, `^0\.0\d{3}$`, score)
	shot.take(ctx, "knowledge-query")
}
