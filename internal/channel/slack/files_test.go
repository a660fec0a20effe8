package slack_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/media"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

// A DM sharing files (subtype file_share) and a mention with attachments are
// messages with Files; the text may be empty.
func TestParseFileShare(t *testing.T) {
	fs := fakeslack.New(t)
	png := fs.AddFile("T1", "U1", "photo.png", "image/png", testimage.PNG(4, 4, 1))
	pdf := fs.AddFile("T1", "U1", "invoice.pdf", "application/pdf", []byte("%PDF-1.7"))

	env := parse(t, fakeslack.FileShare("T1", "D1", "U1", "what is this?", "1700000000.000100", "", "Ev1", []fakeslack.File{png, pdf}))
	require.NotNil(t, env.Event, env.IgnoredReason)
	require.Equal(t, "what is this?", env.Event.Text)
	require.Equal(t, []slack.File{
		{ID: png.ID, Name: "photo.png", Title: "photo.png", MimeType: "image/png", Size: int64(len(png.Data)), URL: png.URLPrivateDownload, Mode: "hosted"},
		{ID: pdf.ID, Name: "invoice.pdf", Title: "invoice.pdf", MimeType: "application/pdf", Size: 8, URL: pdf.URLPrivateDownload, Mode: "hosted"},
	}, env.Event.Files)

	env = parse(t, fakeslack.FileShare("T1", "D1", "U1", "", "1700000000.000200", "", "Ev2", []fakeslack.File{png}))
	require.NotNil(t, env.Event)
	require.Empty(t, env.Event.Text)
	require.Len(t, env.Event.Files, 1)

	env = parse(t, fakeslack.AppMention("T1", "C1", "U1", "<@UBOT> look", "1700000000.000300", "", "Ev3", fakeslack.WithFiles(png)))
	require.NotNil(t, env.Event)
	require.Equal(t, slack.KindAppMention, env.Event.Kind)
	require.Len(t, env.Event.Files, 1)

	// A file Slack wants looked up carries only its ID.
	env = parse(t, fakeslack.FileShare("T1", "D1", "U1", "", "1700000000.000400", "", "Ev4", []fakeslack.File{png},
		fakeslack.WithFileAccess("check_file_info")))
	require.Equal(t, []slack.File{{ID: png.ID, Mode: "file_access"}}, env.Event.Files)

	// A file shared in a channel without mentioning the bot stays ignored.
	env = parse(t, fakeslack.ChannelMessage("T1", "C1", "U1", "for the team", "1700000000.000500", "", "Ev5", fakeslack.WithFiles(png)))
	require.Nil(t, env.Event)
	require.Equal(t, slack.IgnoredNotDM, env.IgnoredReason)
}

func TestDownloadFile(t *testing.T) {
	fs := fakeslack.New(t)
	fs.AddWorkspace("T1", "xoxb-one", "UBOT1")
	fs.AddWorkspace("T2", "xoxb-two", "UBOT2")
	data := testimage.PNG(16, 16, 7)
	f := fs.AddFile("T1", "U1", "photo.png", "image/png", data)
	c := slack.NewClient(fs.URL(), nil)
	ctx := context.Background()

	got, err := c.DownloadFile(ctx, "xoxb-one", f.URLPrivateDownload, 1<<20)
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.Equal(t, 1, fs.Calls(fakeslack.FilesDownload))

	// A 503 is worth retrying; so is a 429, after the wait Slack asked for.
	fs.FailNextWithStatus(fakeslack.FilesDownload, 1, http.StatusServiceUnavailable)
	_, err = c.DownloadFile(ctx, "xoxb-one", f.URLPrivateDownload, 1<<20)
	require.Error(t, err)
	_, refused := media.AsRefused(err)
	require.False(t, refused)
	require.False(t, slack.IsPermanent(err))
	fs.RateLimitNext(fakeslack.FilesDownload, 1, 3*time.Second)
	_, err = c.DownloadFile(ctx, "xoxb-one", f.URLPrivateDownload, 1<<20)
	d, ok := slack.RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 3*time.Second, d)

	// Another workspace's token gets Slack's sign-in page, which is no image.
	got, err = c.DownloadFile(ctx, "xoxb-two", f.URLPrivateDownload, 1<<20)
	require.NoError(t, err)
	_, err = media.Check(got)
	r, ok := media.AsRefused(err)
	require.True(t, ok)
	require.Contains(t, r.Reason, "did not let me download it")

	// Too big: refused without reading it all.
	_, err = c.DownloadFile(ctx, "xoxb-one", f.URLPrivateDownload, int64(len(data)-1))
	r, ok = media.AsRefused(err)
	require.True(t, ok)
	require.Contains(t, r.Reason, "larger than")

	// Deleted: refused.
	fs.RemoveFile(f.ID)
	_, err = c.DownloadFile(ctx, "xoxb-one", f.URLPrivateDownload, 1<<20)
	r, ok = media.AsRefused(err)
	require.True(t, ok)
	require.Contains(t, r.Reason, "no longer exists")

	// The bot token goes to Slack only.
	calls := fs.Calls(fakeslack.FilesDownload)
	for _, u := range []string{"https://evil.example.com/files-pri/T1-F1/download/x.png", "http://files.slack.com/x.png", "not a url"} {
		_, err = c.DownloadFile(ctx, "xoxb-one", u, 1<<20)
		_, ok = media.AsRefused(err)
		require.True(t, ok, u)
	}
	require.Equal(t, calls, fs.Calls(fakeslack.FilesDownload))
}

func TestFileInfo(t *testing.T) {
	fs := fakeslack.New(t)
	fs.AddWorkspace("T1", "xoxb-one", "UBOT1")
	f := fs.AddFile("T1", "U1", "scan.jpg", "image/jpeg", testimage.JPEG(4, 4, 1))
	c := slack.NewClient(fs.URL(), nil)

	got, err := c.FileInfo(context.Background(), "xoxb-one", f.ID)
	require.NoError(t, err)
	require.Equal(t, f.URLPrivateDownload, got.URL)
	require.Equal(t, "image/jpeg", got.MimeType)
	require.True(t, got.Downloadable())

	_, err = c.FileInfo(context.Background(), "xoxb-one", "FNOPE")
	require.True(t, slack.IsPermanent(err))
	require.Equal(t, "file_not_found", slack.ErrorCode(err))
}
