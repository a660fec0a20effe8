package activities

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/media"
	"github.com/konstruct/konstruct/internal/store"
)

// FetchMediaInput downloads the files sent with one inbound message.
type FetchMediaInput struct {
	TenantID       string     `json:"tenant_id"`
	AgentID        string     `json:"agent_id"`
	ConversationID string     `json:"conversation_id"`
	WorkflowID     string     `json:"workflow_id"`
	Channel        string     `json:"channel"`
	Address        Address    `json:"address"` // names the connection whose token downloads
	EndUserRef     string     `json:"end_user_ref,omitempty"`
	Turn           int        `json:"turn"`
	Media          []MediaRef `json:"media"`
	// ForStaff: people own the conversation, so the files go to them, not
	// to a model: no notice that the assistant's models cannot see.
	ForStaff bool `json:"for_staff,omitempty"`
}

// FetchMediaOutput says, per file in input order, what became of it, and
// what the end user must be told.
type FetchMediaOutput struct {
	Items []FetchedMedia `json:"items"`
	// CanSee: the agent's model chain has a model that can see images.
	CanSee bool `json:"can_see"`
	// Notice is what the end user is told about files that were not read,
	// or that no model of the assistant can see images; "" when nothing.
	Notice string `json:"notice,omitempty"`
}

// FetchedMedia is one file of the message.
type FetchedMedia struct {
	ID      string `json:"id,omitempty"`      // the stored image (media row); "" when not read
	Marker  string `json:"marker"`            // what the conversation's window holds in its place
	Refused string `json:"refused,omitempty"` // why it was not read, for the end user
}

// MediaMarker is the text an image leaves in the conversation's window: the
// current turn's model gets the image itself in its place (Respond strips
// it), later turns only this.
func MediaMarker(name, caption string) string {
	label := caption
	if strings.TrimSpace(label) == "" {
		label = name
	}
	label = strings.Join(strings.Fields(label), " ")
	if utf8.RuneCountInString(label) > 200 {
		label = string([]rune(label)[:200]) + "…"
	}
	if label == "" {
		return "[image]"
	}
	return "[image: " + label + "]"
}

// fileLabel names a file for the end user.
func fileLabel(ref MediaRef) string {
	switch {
	case ref.Name != "":
		return ref.Name
	case ref.Caption != "":
		return "the image \"" + ref.Caption + "\""
	case strings.HasPrefix(ref.MimeType, "image/"):
		return "the image you sent" // a WhatsApp image without a caption
	case strings.HasPrefix(ref.MimeType, "audio/"):
		return "the audio message you sent"
	}
	return "the file you sent"
}

// NoVisionNotice is told to an end user who sent an image to an assistant
// none of whose models can see.
const NoVisionNotice = "I can't see images: the language models this assistant uses can only read text."

// FetchMedia downloads each file of an inbound message with the channel
// connection's token, checks it (an image by its bytes, within
// MediaMaxBytes), and stores it once per tenant and channel file ID: a file
// stored already, by an earlier attempt or another message, is not
// downloaded again. A download that may succeed later (5xx, throttling, a
// timeout, a broken connection) fails the activity, so Temporal retries it;
// a file refused for good (too big, not an image, gone, forbidden) is
// reported in the output, with a notice for the user — never dropped in
// silence.
func (a *Conversation) FetchMedia(ctx context.Context, in FetchMediaInput) (FetchMediaOutput, error) {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("agent_id", in.AgentID))
	tenantID, convID, err := parseIDs(in.TenantID, in.ConversationID)
	if err != nil {
		return FetchMediaOutput{}, err
	}
	_, agentID, err := parseIDs(in.TenantID, in.AgentID)
	if err != nil {
		return FetchMediaOutput{}, err
	}
	out := FetchMediaOutput{Items: make([]FetchedMedia, len(in.Media))}
	var chain []string
	stored := make([]store.Media, len(in.Media))
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		agent, err := tx.GetAgent(ctx, agentID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		chain = agent.Models
		for i, ref := range in.Media {
			m, err := tx.FindMedia(ctx, ref.Source, ref.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			stored[i] = m
		}
		return nil
	})
	if err != nil {
		return FetchMediaOutput{}, fmt.Errorf("activities: fetch media: load: %w", err)
	}
	if len(chain) == 0 {
		chain = a.DefaultModels
	}
	out.CanSee = len(llm.VisionModels(chain)) > 0

	conn := &lazyConnection{load: func() (Connection, error) { return a.mediaConnection(ctx, tenantID, in) }}
	var notes []string
	for i, ref := range in.Media {
		item := &out.Items[i]
		item.Marker = MediaMarker(ref.Name, ref.Caption)
		if stored[i].ID != uuid.Nil {
			item.ID = stored[i].ID.String()
			continue
		}
		m, err := a.fetchOne(ctx, tenantID, convID, in, ref, conn)
		if r, ok := media.AsRefused(err); ok {
			item.Refused = r.Reason
			item.Marker = "[file " + fileLabel(ref) + " not read: " + r.Reason + "]"
			notes = append(notes, "I couldn't read "+fileLabel(ref)+": "+r.Reason+".")
			a.Logger.WarnContext(ctx, "media refused", "source", ref.Source, "file_id", ref.ID, "reason", r.Reason, "error", r.Err)
			continue
		}
		if err != nil {
			return FetchMediaOutput{}, err
		}
		item.ID = m.ID.String()
	}
	if !out.CanSee && !in.ForStaff {
		for _, item := range out.Items {
			if item.ID != "" {
				notes = append(notes, NoVisionNotice)
				break
			}
		}
	}
	out.Notice = strings.Join(notes, "\n")
	return out, nil
}

// lazyConnection loads the connection's token the first time a download
// needs it, once per activity attempt.
type lazyConnection struct {
	load func() (Connection, error)
	done bool
	conn Connection
	err  error
}

func (l *lazyConnection) token() (string, error) {
	if !l.done {
		l.conn, l.err = l.load()
		l.done = true
	}
	return l.conn.Token, l.err
}

// fetchOne downloads, checks and stores one file.
func (a *Conversation) fetchOne(ctx context.Context, tenantID, convID uuid.UUID, in FetchMediaInput, ref MediaRef, conn *lazyConnection) (store.Media, error) {
	limit := a.mediaMaxBytes()
	if !media.Announced(ref.MimeType) {
		return store.Media{}, media.Refuse("it is not an image I can read (JPEG, PNG, WebP or GIF)", fmt.Errorf("announced as %s", ref.MimeType))
	}
	if ref.Size > limit {
		return store.Media{}, media.TooBig(ref.Size, limit)
	}
	if ref.Source != store.SourceSlack && ref.Source != store.SourceWhatsApp {
		return store.Media{}, media.Refuse("files from "+ref.Source+" are not supported", nil)
	}
	token, err := conn.token()
	if err != nil {
		return store.Media{}, err
	}
	var data []byte
	if ref.Source == store.SourceSlack {
		data, err = a.fetchSlack(ctx, token, ref, limit)
	} else {
		data, err = a.fetchWhatsApp(ctx, token, in.Address.PhoneNumberID, ref, limit)
	}
	if err != nil {
		return store.Media{}, err
	}
	mime, err := media.Check(data)
	if err != nil {
		return store.Media{}, err
	}
	sum := sha256.Sum256(data)
	var m store.Media
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		m, err = tx.AddMedia(ctx, store.Media{ConversationID: convID, EndUserRef: in.EndUserRef, Source: ref.Source,
			SourceID: ref.ID, MimeType: mime, SHA256: sum[:], Data: data, Name: clip(ref.Name, 1000), Caption: clip(ref.Caption, 4096),
			Turn: in.Turn})
		return err
	})
	if errors.Is(err, store.ErrReferenced) {
		// The conversation (or tenant) was deleted meanwhile: nobody to answer.
		return store.Media{}, temporal.NewNonRetryableApplicationError("conversation no longer exists", ErrChannelGone, err)
	}
	if err != nil {
		return store.Media{}, fmt.Errorf("activities: fetch media: store: %w", err)
	}
	a.Logger.InfoContext(ctx, "media stored", "source", ref.Source, "file_id", ref.ID, "media_id", m.ID,
		"mime_type", mime, "bytes", len(data), "attempt", attemptOf(ctx))
	return m, nil
}

func (a *Conversation) mediaMaxBytes() int64 {
	if a.MediaMaxBytes > 0 {
		return a.MediaMaxBytes
	}
	return media.DefaultMaxBytes
}

// mediaConnection loads and opens the token of the connection the message
// came through. A connection that is gone refuses every file of the message.
func (a *Conversation) mediaConnection(ctx context.Context, tenantID uuid.UUID, in FetchMediaInput) (Connection, error) {
	connID := in.Address.TeamID
	if in.Channel == store.ChannelWhatsApp {
		connID = in.Address.PhoneNumberID
	}
	var c Connection
	err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		c.Row, err = tx.GetChannelByExternalID(ctx, in.Channel, connID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Connection{}, media.Refuse("the "+in.Channel+" connection was removed", err)
	}
	if err != nil {
		return Connection{}, fmt.Errorf("activities: fetch media: connection: %w", err)
	}
	token, err := a.Secrets.Open(c.Row.Secret, store.SecretAAD(tenantID, in.Channel, connID))
	if err != nil {
		return Connection{}, media.Refuse("the "+in.Channel+" connection's token cannot be read; an operator needs to reconnect it", err)
	}
	c.Token = string(token)
	return c, nil
}

// fetchSlack downloads a Slack file, asking files.info first when the event
// gave only its ID.
func (a *Conversation) fetchSlack(ctx context.Context, token string, ref MediaRef, limit int64) ([]byte, error) {
	if a.Slack == nil {
		return nil, media.Refuse("this server cannot read Slack files", nil)
	}
	u := ref.URL
	if u == "" {
		f, err := a.Slack.FileInfo(ctx, token, ref.ID)
		switch {
		case slack.ErrorCode(err) == "missing_scope":
			return nil, media.Refuse("Slack did not let me read it (the app needs the files:read permission)", err)
		case slack.IsPermanent(err):
			return nil, media.Refuse("Slack did not give me the file ("+slack.ErrorCode(err)+")", err)
		case err != nil:
			return nil, slackDownloadError(err)
		case !f.Downloadable():
			return nil, media.Refuse("Slack does not hold the file itself (it is a link, deleted, or hidden by the workspace's plan)", nil)
		case !media.Announced(f.MimeType):
			return nil, media.Refuse("it is not an image I can read (JPEG, PNG, WebP or GIF)", fmt.Errorf("files.info says %s", f.MimeType))
		case f.Size > limit:
			return nil, media.TooBig(f.Size, limit)
		}
		u = f.URL
	}
	data, err := a.Slack.DownloadFile(ctx, token, u, limit)
	if err != nil {
		if _, ok := media.AsRefused(err); ok {
			return nil, err
		}
		return nil, slackDownloadError(err)
	}
	return data, nil
}

// slackDownloadError is a retryable download failure, waiting as long as
// Slack asked when it throttled.
func slackDownloadError(err error) error {
	if d, ok := slack.RetryAfter(err); ok {
		return temporal.NewApplicationErrorWithOptions("slack asked us to slow down", "SlackRateLimited",
			temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: d})
	}
	return fmt.Errorf("activities: fetch media: %w", err)
}

// fetchWhatsApp downloads a WhatsApp media object with the number's token.
func (a *Conversation) fetchWhatsApp(ctx context.Context, token, phoneNumberID string, ref MediaRef, limit int64) ([]byte, error) {
	if a.WhatsAppMedia == nil {
		return nil, media.Refuse("this server cannot read WhatsApp media", nil)
	}
	f, err := a.WhatsAppMedia.Download(ctx, token, ref.ID, phoneNumberID, ref.SHA256, limit)
	if err != nil {
		if _, ok := media.AsRefused(err); ok {
			return nil, err
		}
		var me *whatsapp.MediaError
		if errors.As(err, &me) && me.RetryAfter > 0 {
			return nil, temporal.NewApplicationErrorWithOptions("whatsapp asked us to slow down", "WhatsAppRateLimited",
				temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: me.RetryAfter})
		}
		return nil, fmt.Errorf("activities: fetch media: %w", err)
	}
	if !f.Verified {
		a.Logger.WarnContext(ctx, "whatsapp media stored without a SHA-256 check: Meta gave none this client reads", "media_id", ref.ID)
	}
	return f.Data, nil
}

func attemptOf(ctx context.Context) int32 {
	if !activity.IsActivity(ctx) {
		return 0
	}
	return activity.GetInfo(ctx).Attempt
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
