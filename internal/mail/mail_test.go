package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/mail"
	"github.com/konstruct/konstruct/internal/mail/mailtest"
)

func TestSMTPSenderDeliversTextAndHTML(t *testing.T) {
	srv := mailtest.Start(t)
	s, err := mail.New(srv.URL(), "Konstruct <no-reply@konstruct.test>", slog.Default())
	require.NoError(t, err)
	require.IsType(t, &mail.SMTPSender{}, s)

	err = s.Send(context.Background(), mail.Message{
		To: "ada@example.com", Subject: "You're invited — Acme",
		Text: "Open https://k.test/invitations/accept?token=abc to join.", HTML: "<p>Open <a href=\"https://k.test/x\">this</a></p>",
	})
	require.NoError(t, err)
	m := srv.Wait(t, "ada@example.com", 5*time.Second)
	require.Equal(t, "You're invited — Acme", m.Subject)
	require.Contains(t, m.Text, "https://k.test/invitations/accept?token=abc")
	require.Contains(t, m.HTML, `<a href="https://k.test/x">`)
	require.Equal(t, "no-reply@konstruct.test", m.From)
}

func TestSMTPSenderReportsAnUnreachableServer(t *testing.T) {
	s, err := mail.New("smtp://127.0.0.1:1?tls=none", "no-reply@konstruct.test", slog.Default())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = s.Send(ctx, mail.Message{To: "ada@example.com", Subject: "x", Text: "y"})
	require.ErrorContains(t, err, "mail: send to ada@example.com via 127.0.0.1:1")
}

func TestLogSenderWritesTheLink(t *testing.T) {
	var buf bytes.Buffer
	s, err := mail.New("", "no-reply@konstruct.test", slog.New(slog.NewJSONHandler(&buf, nil)))
	require.NoError(t, err)
	require.NoError(t, s.Send(context.Background(), mail.Message{To: "ada@example.com", Subject: "Join",
		Text: "body", Link: "http://127.0.0.1:8080/invitations/accept?token=xyz"}))
	out := buf.String()
	require.Contains(t, out, `"level":"INFO"`)
	require.Contains(t, out, `"link":"http://127.0.0.1:8080/invitations/accept?token=xyz"`)
	require.Contains(t, out, `"to":"ada@example.com"`)
}

func TestNewRejectsBadSettings(t *testing.T) {
	for _, tc := range []struct{ url, from, want string }{
		{"smtp://h?tls=sometimes", "a@b.co", "tls must be"},
		{"http://h", "a@b.co", "smtp:// or smtps://"},
		{"smtp://h:99999", "a@b.co", "bad port"},
		{"", "not an address", "from address"},
	} {
		_, err := mail.New(tc.url, tc.from, slog.Default())
		require.ErrorContains(t, err, tc.want, tc.url)
	}
	s, err := mail.New("smtps://user:secret@mail.example.com", "a@b.co", slog.Default())
	require.NoError(t, err)
	require.IsType(t, &mail.SMTPSender{}, s)
}

func TestSubjectCannotInjectHeaders(t *testing.T) {
	srv := mailtest.Start(t)
	s, err := mail.New(srv.URL(), "no-reply@konstruct.test", slog.Default())
	require.NoError(t, err)
	err = s.Send(context.Background(), mail.Message{To: "ada@example.com", Subject: "hi\r\nBcc: evil@example.com", Text: "x"})
	require.Error(t, err)
	require.Empty(t, srv.Messages())
}
