package activities

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/konstruct/konstruct/internal/channel/slack"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/secrets"
	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/fakeslack"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

// mediaRig is a tenant with an agent, a conversation, and Slack and WhatsApp
// connections whose tokens are sealed as the API seals them.
type mediaRig struct {
	st       *store.Store
	acts     *Conversation
	env      *testsuite.TestActivityEnvironment
	tenantID uuid.UUID
	agent    store.Agent
	conv     store.Conversation
}

func newMediaRig(t *testing.T, models []string, slackClient *slack.Client, wa *whatsapp.MediaClient) *mediaRig {
	t.Helper()
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	st, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	r := &mediaRig{st: st, tenantID: uuid.New()}
	require.NoError(t, st.WithTenant(ctx, r.tenantID, func(tx *store.Tx) error {
		if _, err := tx.CreateTenant(ctx, r.tenantID, "T"); err != nil {
			return err
		}
		if r.agent, err = tx.CreateAgent(ctx, store.Agent{Name: "A", Status: store.AgentActive, Models: models}); err != nil {
			return err
		}
		for kind, ext := range map[string]string{store.ChannelSlack: "T1", store.ChannelWhatsApp: "PN1"} {
			secret, err := box.Seal([]byte("token-"+ext), store.SecretAAD(r.tenantID, kind, ext))
			if err != nil {
				return err
			}
			if _, err := tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: r.agent.ID, Kind: kind, ExternalID: ext, Secret: secret}); err != nil {
				return err
			}
		}
		r.conv, err = tx.EnsureConversation(ctx, store.Conversation{AgentID: r.agent.ID, Channel: store.ChannelWhatsApp,
			ExternalKey: "PN1:U1", WorkflowID: "wf-media"})
		return err
	}))
	r.acts = &Conversation{Store: st, Secrets: box, Slack: slackClient, WhatsAppMedia: wa, MediaMaxBytes: 64 << 10,
		DefaultModels: []string{"openai/gpt-4o-mini"}, Logger: slog.New(slog.DiscardHandler)}
	var suite testsuite.WorkflowTestSuite
	r.env = suite.NewTestActivityEnvironment()
	r.env.RegisterActivity(r.acts)
	return r
}

func (r *mediaRig) fetch(t *testing.T, channel string, addr Address, refs ...MediaRef) (FetchMediaOutput, error) {
	t.Helper()
	v, err := r.env.ExecuteActivity(r.acts.FetchMedia, FetchMediaInput{TenantID: r.tenantID.String(), AgentID: r.agent.ID.String(),
		ConversationID: r.conv.ID.String(), WorkflowID: "wf-media", Channel: channel, Address: addr, EndUserRef: "U1", Turn: 1, Media: refs})
	if err != nil {
		return FetchMediaOutput{}, err
	}
	var out FetchMediaOutput
	require.NoError(t, v.Get(&out))
	return out, nil
}

// FetchMedia dispatches a WhatsApp media ID to the Graph API with the token
// of the number named by Address.PhoneNumberID, checks and stores the image
// once, and reports files it cannot read.
func TestFetchMediaFromWhatsApp(t *testing.T) {
	jpeg := testimage.JPEG(16, 16, 3)
	sum := sha256.Sum256(jpeg)
	var resolves, downloads atomic.Int32
	var graph *httptest.Server
	graph = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token-PN1" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"Invalid OAuth access token","type":"OAuthException","code":190}}`))
			return
		}
		switch {
		case r.URL.Path == "/v25.0/wamedia1" && r.URL.Query().Get("phone_number_id") == "PN1":
			resolves.Add(1)
			_, _ = w.Write([]byte(`{"messaging_product":"whatsapp","url":"` + graph.URL + `/dl/1","mime_type":"image/jpeg","sha256":"` +
				base64.StdEncoding.EncodeToString(sum[:]) + `","file_size":` + strconv.Itoa(len(jpeg)) + `,"id":"wamedia1"}`))
		case r.URL.Path == "/dl/1":
			downloads.Add(1)
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write(jpeg)
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100}}`))
		}
	}))
	t.Cleanup(graph.Close)
	wa, err := whatsapp.NewMediaClient(whatsapp.MediaConfig{BaseURL: graph.URL})
	require.NoError(t, err)
	r := newMediaRig(t, nil, nil, wa)
	addr := Address{PhoneNumberID: "PN1", Recipient: "15551234567"}

	photo := MediaRef{Source: store.SourceWhatsApp, ID: "wamedia1", MimeType: "image/jpeg", SHA256: base64.StdEncoding.EncodeToString(sum[:]), Caption: "my broken screen"}
	out, err := r.fetch(t, store.ChannelWhatsApp, addr, photo,
		MediaRef{Source: store.SourceWhatsApp, ID: "wamedia2", MimeType: "application/pdf"},
		MediaRef{Source: store.SourceWhatsApp, ID: "gone", MimeType: "image/png"})
	require.NoError(t, err)
	require.True(t, out.CanSee)
	require.Len(t, out.Items, 3)
	require.NotEmpty(t, out.Items[0].ID)
	require.Equal(t, "[image: my broken screen]", out.Items[0].Marker)
	require.Empty(t, out.Items[1].ID)
	require.Contains(t, out.Items[1].Refused, "not an image")
	require.Contains(t, out.Items[2].Refused, "no longer available")
	require.Equal(t, "I couldn't read the file you sent: it is not an image I can read (JPEG, PNG, WebP or GIF).\n"+
		"I couldn't read the image you sent: WhatsApp says the file is no longer available.", out.Notice)

	var stored []store.Media
	require.NoError(t, r.st.WithTenant(context.Background(), r.tenantID, func(tx *store.Tx) error {
		stored, err = tx.LoadMedia(context.Background(), []uuid.UUID{uuid.MustParse(out.Items[0].ID)})
		return err
	}))
	require.Equal(t, jpeg, stored[0].Data)
	require.Equal(t, "image/jpeg", stored[0].MimeType)
	require.Equal(t, "U1", stored[0].EndUserRef)
	require.Equal(t, sum[:], stored[0].SHA256)
	require.Equal(t, 1, stored[0].Turn, "the turn it came with, for the portal's transcript")

	// A retry (or the same media in a later message) is not downloaded again.
	again, err := r.fetch(t, store.ChannelWhatsApp, addr, photo)
	require.NoError(t, err)
	require.Equal(t, out.Items[0].ID, again.Items[0].ID)
	require.EqualValues(t, 1, downloads.Load())
	require.EqualValues(t, 1, resolves.Load(), "resolved once")
}

// Files for people (the conversation is with staff) are fetched and stored
// the same way; that the assistant's models cannot see is no news to them.
func TestFetchMediaForStaff(t *testing.T) {
	graph := fakewhatsapp.New(t)
	graph.AddNumber("PN1", "token-PN1", "+1 555-0100", "T")
	wa, err := whatsapp.NewMediaClient(whatsapp.MediaConfig{BaseURL: graph.URL()})
	require.NoError(t, err)
	r := newMediaRig(t, []string{"openai/gpt-3.5-turbo"}, nil, wa) // cannot see
	m := graph.AddMedia("PN1", "image/png", testimage.PNG(8, 8, 5))
	ref := MediaRef{Source: store.SourceWhatsApp, ID: m.ID, MimeType: m.MimeType, SHA256: m.SHA256, Caption: "the dent"}
	v, err := r.env.ExecuteActivity(r.acts.FetchMedia, FetchMediaInput{TenantID: r.tenantID.String(), AgentID: r.agent.ID.String(),
		ConversationID: r.conv.ID.String(), WorkflowID: "wf-media", Channel: store.ChannelWhatsApp,
		Address: Address{PhoneNumberID: "PN1", Recipient: "15551234567"}, EndUserRef: "U1", Turn: 4, Media: []MediaRef{ref}, ForStaff: true})
	require.NoError(t, err)
	var out FetchMediaOutput
	require.NoError(t, v.Get(&out))
	require.False(t, out.CanSee)
	require.NotEmpty(t, out.Items[0].ID, "stored for staff to see in the portal")
	require.Equal(t, "[image: the dent]", out.Items[0].Marker)
	require.Empty(t, out.Notice, "no \"I can't see images\" for a message people read")

	out, err = r.fetch(t, store.ChannelWhatsApp, Address{PhoneNumberID: "PN1", Recipient: "15551234567"}, ref)
	require.NoError(t, err)
	require.Equal(t, NoVisionNotice, out.Notice, "for the agent, the user is told")
}

// A failed download fails the activity (Temporal retries it); nothing is
// recorded until one succeeds.
func TestFetchMediaFailsRetryablyThenStores(t *testing.T) {
	fs := fakeslack.New(t)
	fs.AddWorkspace("T1", "token-T1", "UBOT")
	png := testimage.PNG(8, 8, 1)
	f := fs.AddFile("T1", "U1", "photo.png", "image/png", png)
	r := newMediaRig(t, []string{"openai/gpt-3.5-turbo"}, slack.NewClient(fs.URL(), nil), nil)
	addr := Address{TeamID: "T1", ChannelID: "D1", ThreadTS: "1.0"}
	ref := MediaRef{Source: store.SourceSlack, ID: f.ID, URL: f.URLPrivateDownload, MimeType: "image/png", Name: "photo.png"}

	fs.FailNextWithStatus(fakeslack.FilesDownload, 1, http.StatusServiceUnavailable)
	_, err := r.fetch(t, store.ChannelSlack, addr, ref)
	require.Error(t, err)
	require.Contains(t, err.Error(), "503")
	require.NoError(t, r.st.WithTenant(context.Background(), r.tenantID, func(tx *store.Tx) error {
		_, err := tx.FindMedia(context.Background(), store.SourceSlack, f.ID)
		require.ErrorIs(t, err, store.ErrNotFound, "no dedupe key before a successful download")
		return nil
	}))

	out, err := r.fetch(t, store.ChannelSlack, addr, ref)
	require.NoError(t, err)
	require.NotEmpty(t, out.Items[0].ID)
	require.False(t, out.CanSee, "gpt-3.5-turbo cannot see")
	require.Equal(t, NoVisionNotice, out.Notice)

	// A file Slack describes only by ID is looked up with files.info.
	g := fs.AddFile("T1", "U1", "second.png", "image/png", testimage.PNG(8, 8, 2))
	out, err = r.fetch(t, store.ChannelSlack, addr, MediaRef{Source: store.SourceSlack, ID: g.ID})
	require.NoError(t, err)
	require.NotEmpty(t, out.Items[0].ID, out.Notice)
	require.Equal(t, "[image]", out.Items[0].Marker)
	require.Equal(t, 1, fs.Calls("files.info"))
}

func TestMediaMarker(t *testing.T) {
	require.Equal(t, "[image: photo.png]", MediaMarker("photo.png", ""))
	require.Equal(t, "[image: a cat on a mat]", MediaMarker("IMG_1.jpg", "a cat\n on a   mat"))
	require.Equal(t, "[image]", MediaMarker("", " "))
	long := MediaMarker("", strings.Repeat("é", 300))
	require.True(t, strings.HasSuffix(long, "…]"))
}

// What the user is told a file is, when it could not be read: its name, its
// caption, or what the channel said it is (a WhatsApp image or voice note
// has neither name nor caption).
func TestFileLabel(t *testing.T) {
	require.Equal(t, "invoice.pdf", fileLabel(MediaRef{Name: "invoice.pdf", MimeType: "application/pdf", Caption: "mine"}))
	require.Equal(t, `the image "my receipt"`, fileLabel(MediaRef{MimeType: "image/png", Caption: "my receipt"}))
	require.Equal(t, "the image you sent", fileLabel(MediaRef{MimeType: "image/jpeg"}))
	require.Equal(t, "the audio message you sent", fileLabel(MediaRef{MimeType: "audio/ogg; codecs=opus"}))
	require.Equal(t, "the file you sent", fileLabel(MediaRef{MimeType: "application/octet-stream"}))
}
