// Package mail sends the platform's emails (invitations today) over SMTP with
// wneessen/go-mail. With no KONSTRUCT_SMTP_URL it writes each email to the log
// instead, so local use works without a mail server.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one email. Text is required; HTML, when set, is sent as the
// alternative part mail clients prefer.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// Link is the one action the email asks for (an invitation link). The
	// log sender writes it on its own line so a developer can click it.
	Link string
}

// Sender delivers messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// New returns an SMTP sender for smtpURL, or a log-only sender when it is empty.
//
// smtpURL is smtp://[user:pass@]host[:port] (STARTTLS when the server offers
// it; port 587 by default) or smtps://[user:pass@]host[:port] (TLS from the
// first byte; port 465). Add ?tls=required to refuse a server without
// STARTTLS, or ?tls=none to never use it (a local test server).
func New(smtpURL, from string, logger *slog.Logger) (Sender, error) {
	if _, err := netmail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail: from address %q: %w", from, err)
	}
	if smtpURL == "" {
		return &LogSender{Logger: logger}, nil
	}
	u, err := url.Parse(smtpURL)
	if err != nil || u.Hostname() == "" {
		return nil, errors.New("mail: KONSTRUCT_SMTP_URL is not an smtp:// or smtps:// URL")
	}
	opts := []gomail.Option{gomail.WithTimeout(15 * time.Second)}
	port := 587
	switch u.Scheme {
	case "smtp":
		switch u.Query().Get("tls") {
		case "", "opportunistic":
			opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSOpportunistic))
		case "required", "mandatory":
			opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSMandatory))
		case "none", "off":
			opts = append(opts, gomail.WithTLSPortPolicy(gomail.NoTLS))
		default:
			return nil, errors.New("mail: KONSTRUCT_SMTP_URL: tls must be required, opportunistic or none")
		}
	case "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, errors.New("mail: KONSTRUCT_SMTP_URL must use smtp:// or smtps://")
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, errors.New("mail: KONSTRUCT_SMTP_URL has a bad port")
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	host := u.Hostname()
	// Build once to report bad options at start-up, not at the first send.
	if _, err := gomail.NewClient(host, opts...); err != nil {
		return nil, fmt.Errorf("mail: smtp client: %w", err)
	}
	return &SMTPSender{host: host, opts: opts, from: from, addr: host + ":" + strconv.Itoa(port)}, nil
}

// SMTPSender delivers through an SMTP server, one connection per message
// (invitations are rare; a pool would only hold idle connections).
type SMTPSender struct {
	host string
	addr string
	opts []gomail.Option
	from string
}

// Send delivers m.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	msg, err := build(s.from, m)
	if err != nil {
		return err
	}
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("mail: smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send to %s via %s: %w", m.To, s.addr, err)
	}
	return nil
}

func build(from string, m Message) (*gomail.Msg, error) {
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("mail: subject contains a line break")
	}
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: to %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// LogSender writes messages to the log instead of sending them.
type LogSender struct {
	Logger *slog.Logger
}

// Send logs m at Info level, with its link on its own attribute.
func (s *LogSender) Send(ctx context.Context, m Message) error {
	s.Logger.InfoContext(ctx, "email not sent: no KONSTRUCT_SMTP_URL is configured, so here it is",
		"to", m.To, "subject", m.Subject, "link", m.Link, "text", m.Text)
	return nil
}
