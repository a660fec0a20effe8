package invitations

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"

	"github.com/konstruct/konstruct/internal/mail"
)

type emailData struct {
	Tenant   string
	Inviter  string
	Role     string
	RoleHelp string
	Link     string
	Expires  string
	Hours    int
}

const subjectTmpl = `{{.Inviter}} invited you to join {{.Tenant}} on Konstruct`

const textTmpl = `Hello,

{{.Inviter}} invited you to join {{.Tenant}} on Konstruct as an {{.Role}}.
{{.RoleHelp}}

Accept the invitation and choose your password here:

{{.Link}}

The link works once and expires in {{.Hours}} hours ({{.Expires}}).
If you did not expect this email, you can ignore it: nothing happens until the link is opened.

— Konstruct
`

const htmlTmpl = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Join {{.Tenant}} on Konstruct</title></head>
<body style="margin:0;padding:0;background:#f4f5f8;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2433">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f8;padding:32px 12px">
<tr><td align="center">
<table role="presentation" width="560" cellpadding="0" cellspacing="0" style="max-width:560px;width:100%;background:#ffffff;border:1px solid #e3e6ee;border-radius:12px">
<tr><td style="padding:28px 32px 8px 32px;font-size:15px;font-weight:700;color:#4338ca;letter-spacing:.02em">KONSTRUCT</td></tr>
<tr><td style="padding:8px 32px 0 32px"><h1 style="margin:0;font-size:22px;line-height:1.3;color:#111827">Join {{.Tenant}}</h1></td></tr>
<tr><td style="padding:16px 32px 0 32px;font-size:15px;line-height:1.6">
<p style="margin:0 0 12px 0"><strong>{{.Inviter}}</strong> invited you to join <strong>{{.Tenant}}</strong> on Konstruct as <strong>{{.Role}}</strong>.</p>
<p style="margin:0 0 20px 0;color:#4b5563">{{.RoleHelp}}</p>
</td></tr>
<tr><td style="padding:0 32px 8px 32px">
<a href="{{.Link}}" style="display:inline-block;background:#4f46e5;color:#ffffff;text-decoration:none;font-weight:600;font-size:15px;padding:12px 22px;border-radius:8px">Accept invitation</a>
</td></tr>
<tr><td style="padding:16px 32px 0 32px;font-size:13px;line-height:1.6;color:#6b7280">
<p style="margin:0 0 8px 0">The link works once and expires in {{.Hours}} hours ({{.Expires}}).</p>
<p style="margin:0 0 8px 0">If the button does not work, paste this address into your browser:<br><span style="word-break:break-all;color:#4338ca">{{.Link}}</span></p>
<p style="margin:0 0 24px 0">If you did not expect this email, ignore it: nothing happens until the link is opened.</p>
</td></tr>
</table>
</td></tr></table>
</body></html>
`

var (
	subjectT = texttemplate.Must(texttemplate.New("subject").Parse(subjectTmpl))
	textT    = texttemplate.Must(texttemplate.New("text").Parse(textTmpl))
	htmlT    = htmltemplate.Must(htmltemplate.New("html").Parse(htmlTmpl))
)

// render builds the invitation email. Names typed by people go into the HTML
// part escaped; the subject is one line.
func render(d emailData) (mail.Message, error) {
	var subj, text, html bytes.Buffer
	if err := subjectT.Execute(&subj, d); err != nil {
		return mail.Message{}, fmt.Errorf("invitations: subject: %w", err)
	}
	if err := textT.Execute(&text, d); err != nil {
		return mail.Message{}, fmt.Errorf("invitations: text: %w", err)
	}
	if err := htmlT.Execute(&html, d); err != nil {
		return mail.Message{}, fmt.Errorf("invitations: html: %w", err)
	}
	return mail.Message{Subject: oneLine(subj.String()), Text: text.String(), HTML: html.String()}, nil
}

func oneLine(s string) string {
	b := []rune(s)
	out := b[:0]
	for _, r := range b {
		if r == '\r' || r == '\n' {
			r = ' '
		}
		out = append(out, r)
	}
	if len(out) > 200 {
		out = append(out[:197], '…')
	}
	return string(out)
}
