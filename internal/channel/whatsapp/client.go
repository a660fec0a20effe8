package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultAPIURL is the Graph API base; requests go to {API_URL}/{version}/....
const DefaultAPIURL = "https://graph.facebook.com/"

// DefaultAPIVersion is the Graph API version used unless configured.
const DefaultAPIVersion = "v25.0"

// MaxTextChars is the longest text message body Meta accepts, in characters.
const MaxTextChars = 4096

// MaxBizOpaque is the longest biz_opaque_callback_data Meta accepts.
const MaxBizOpaque = 512

// Client calls the Graph API's WhatsApp endpoints. It is safe for concurrent
// use; the access token is passed per call, since every tenant has its own.
// It does not retry: its callers (activities) own retries, driven by the
// classification in errors.go.
type Client struct {
	base    string // ends in "/"
	version string
	http    *http.Client
}

// NewClient returns a Client for the Graph API at apiURL (DefaultAPIURL when
// empty; tests point it at fakewhatsapp) and version (DefaultAPIVersion when
// empty). A nil httpClient gets one with a 30 s timeout.
func NewClient(apiURL, version string, httpClient *http.Client) *Client {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	if version == "" {
		version = DefaultAPIVersion
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: apiURL, version: version, http: httpClient}
}

// URL returns the Graph API URL of path (no leading slash) at the client's version.
func (c *Client) URL(path string) string { return c.base + c.version + "/" + path }

// PhoneNumber is what the Graph API says about a business phone number.
type PhoneNumber struct {
	ID                 string `json:"id"`
	DisplayPhoneNumber string `json:"display_phone_number"`
	VerifiedName       string `json:"verified_name"`
	QualityRating      string `json:"quality_rating"`
}

// PhoneNumber reads GET /{phone_number_id} with token: the check that the
// token may use the number before it is connected.
func (c *Client) PhoneNumber(ctx context.Context, token, phoneNumberID string) (PhoneNumber, error) {
	const op = "get phone number"
	u := c.URL(url.PathEscape(phoneNumberID)) + "?fields=" + url.QueryEscape("id,display_phone_number,verified_name,quality_rating")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return PhoneNumber{}, &Error{Op: op, Err: err}
	}
	var out PhoneNumber
	if err := c.do(req, token, op, &out); err != nil {
		return PhoneNumber{}, err
	}
	if out.ID == "" {
		out.ID = phoneNumberID
	}
	return out, nil
}

// Template names an approved message template.
type Template struct {
	Name     string
	Language string // e.g. en_US
}

// Outbound is one message to send.
type Outbound struct {
	// To is the user's phone number (wa_id); Recipient their business-scoped
	// user ID, used when the phone number is unknown. Meta prefers To.
	To        string
	Recipient string
	// ReplyTo is the wamid the message answers (context.message_id): WhatsApp
	// shows it as a reply to that message.
	ReplyTo string
	// Text is sent as a text message (at most MaxTextChars; split before), or
	// Template when set.
	Text     string
	Template *Template
	// BizOpaque is echoed by Meta in this message's status webhooks
	// (biz_opaque_callback_data); Konstruct sends the part's idempotency key.
	BizOpaque string
}

type wireSend struct {
	MessagingProduct string        `json:"messaging_product"`
	RecipientType    string        `json:"recipient_type"`
	To               string        `json:"to,omitempty"`
	Recipient        string        `json:"recipient,omitempty"`
	Context          *wireContext  `json:"context,omitempty"`
	Type             string        `json:"type"`
	Text             *wireText     `json:"text,omitempty"`
	Template         *wireTemplate `json:"template,omitempty"`
	BizOpaque        string        `json:"biz_opaque_callback_data,omitempty"`
}

type wireContext struct {
	MessageID string `json:"message_id"`
}

type wireText struct {
	PreviewURL bool   `json:"preview_url"`
	Body       string `json:"body"`
}

type wireTemplate struct {
	Name     string       `json:"name"`
	Language wireLanguage `json:"language"`
}

type wireLanguage struct {
	Code string `json:"code"`
}

type wireSent struct {
	MessagingProduct string `json:"messaging_product"`
	Contacts         []struct {
		Input string `json:"input"`
		WAID  string `json:"wa_id"`
	} `json:"contacts"`
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
}

// ErrNoRecipient: an Outbound names neither To nor Recipient.
var ErrNoRecipient = errors.New("whatsapp: send: no recipient")

// Send posts msg from the business number phoneNumberID (POST
// /{phone_number_id}/messages) and returns the message's wamid.
//
// An error that is not Answered does not mean nothing was sent (the answer
// may have been lost after Meta accepted it); Meta then reports the message
// in a status webhook carrying BizOpaque.
func (c *Client) Send(ctx context.Context, token, phoneNumberID string, msg Outbound) (string, error) {
	const op = "send message"
	if msg.To == "" && msg.Recipient == "" {
		return "", &Error{Op: op, Err: ErrNoRecipient}
	}
	w := wireSend{MessagingProduct: "whatsapp", RecipientType: "individual", To: msg.To, BizOpaque: msg.BizOpaque}
	if msg.To == "" {
		w.Recipient = msg.Recipient
	}
	if len(w.BizOpaque) > MaxBizOpaque {
		w.BizOpaque = ""
	}
	if t := msg.Template; t != nil {
		w.Type, w.Template = "template", &wireTemplate{Name: t.Name, Language: wireLanguage{Code: t.Language}}
	} else {
		w.Type, w.Text = "text", &wireText{Body: msg.Text}
	}
	if msg.ReplyTo != "" {
		w.Context = &wireContext{MessageID: msg.ReplyTo}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return "", &Error{Op: op, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL(url.PathEscape(phoneNumberID)+"/messages"), bytes.NewReader(body))
	if err != nil {
		return "", &Error{Op: op, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	var out wireSent
	if err := c.do(req, token, op, &out); err != nil {
		return "", err
	}
	if len(out.Messages) == 0 || out.Messages[0].ID == "" {
		// Accepted, but with no ID to track it by: as good as a lost answer.
		return "", &Error{Op: op, HTTPStatus: http.StatusOK, Err: errors.New("answer without messages[0].id")}
	}
	return out.Messages[0].ID, nil
}

type wireGraphError struct {
	Error *struct {
		Message   string `json:"message"`
		Type      string `json:"type"`
		Code      int    `json:"code"`
		Subcode   int    `json:"error_subcode"`
		FBTraceID string `json:"fbtrace_id"`
		ErrorData struct {
			Details string `json:"details"`
		} `json:"error_data"`
	} `json:"error"`
}

// do sends req with the bearer token and decodes a 2xx answer into out; any
// other answer becomes an *Error.
func (c *Client) do(req *http.Request, token, op string, out any) error {
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &Error{Op: op, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode/100 != 2 {
		var ge wireGraphError
		if json.Unmarshal(raw, &ge) == nil && ge.Error != nil {
			g := ge.Error
			return &Error{Op: op, HTTPStatus: resp.StatusCode, Code: g.Code, Subcode: g.Subcode, Type: g.Type,
				Message: g.Message, Details: g.ErrorData.Details, FBTraceID: g.FBTraceID, answered: true}
		}
		return &Error{Op: op, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("not a Graph API error: %.200q", raw)}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Op: op, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("decode answer: %w", err)}
	}
	return nil
}
