// Package mailtest runs an in-process SMTP server (emersion/go-smtp) that
// keeps every message it receives, so tests can read the emails the platform
// sends, over a real SMTP conversation.
package mailtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one received message.
type Mail struct {
	From    string
	To      []string
	Subject string
	Text    string // the text/plain part
	HTML    string // the text/html part
	Raw     []byte
}

// Server is a running SMTP server.
type Server struct {
	Addr string // host:port
	srv  *smtp.Server
	mu   sync.Mutex
	mail []Mail
	recv chan Mail
}

// Start listens on a free local port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{recv: make(chan Mail, 100)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.ErrorLog = discard{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.Addr = l.Addr().String()
	go func() { _ = s.srv.Serve(l) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// URL is the KONSTRUCT_SMTP_URL that reaches this server.
func (s *Server) URL() string { return "smtp://" + s.Addr + "?tls=none" }

// Messages returns every message received so far.
func (s *Server) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

// Wait returns the next message addressed to rcpt, or fails the test.
func (s *Server) Wait(t testing.TB, rcpt string, timeout time.Duration) Mail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case m := <-s.recv:
			for _, to := range m.To {
				if strings.EqualFold(to, rcpt) {
					return m
				}
			}
		case <-ctx.Done():
			t.Fatalf("mailtest: no email to %s within %s", rcpt, timeout)
			return Mail{}
		}
	}
}

func (s *Server) add(m Mail) {
	s.mu.Lock()
	s.mail = append(s.mail, m)
	s.mu.Unlock()
	select {
	case s.recv <- m:
	default:
	}
}

type session struct {
	s    *Server
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: x.from, To: x.to, Raw: raw}
	if err := parse(raw, &m); err != nil {
		return err
	}
	x.s.add(m)
	return nil
}

// parse decodes the headers and the text and HTML parts.
func parse(raw []byte, m *Mail) error {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		m.Subject = msg.Header.Get("Subject")
	}
	return walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, m)
}

func walk(contentType, encoding string, body io.Reader, m *Mail) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, m); err != nil {
				return err
			}
		}
	}
	b, err := decode(encoding, body)
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
	return nil
}

func decode(encoding string, r io.Reader) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		return io.ReadAll(newQP(r))
	case "base64":
		return io.ReadAll(newB64(r))
	}
	return io.ReadAll(r)
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}
