package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
	"github.com/konstruct/konstruct/internal/testkit/platform"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

// postWhatsAppImage sends user's image message (media m, with caption) to
// the tenant's number, signed as Meta signs it.
func postWhatsAppImage(t *testing.T, p *platform.Platform, tn platform.WhatsAppTenant, m fakewhatsapp.Media, user, caption string) fakewhatsapp.Msg {
	t.Helper()
	msg := m.Image(user, caption)
	status, body := p.PostWhatsApp(tn.Messages(msg))
	require.Equal(t, http.StatusOK, status, body)
	return msg
}

// Images sent on WhatsApp reach the agent's model as image content, through
// the real binary and the Graph API's media endpoints: the media ID is
// resolved with the number's token, the short-lived URL downloaded with the
// same token and checked against both of Meta's SHA-256s, and the model
// receives the very bytes in its vision wire format (OpenAI image_url,
// Anthropic image blocks); the reply goes out through the Graph API with the
// tenant's token, quoting the image. A first download answering 503 is
// retried, an expired URL is resolved again, and an image over WhatsApp's
// 5 MB gets a clear note on WhatsApp instead of silence.
func TestWhatsAppImagesReachTheModel(t *testing.T) {
	p := platform.Start(t, platform.Options{})
	p.LLM.SetHandler(seeingModel)
	tn := p.NewWhatsAppTenant("Photo shop", platform.AgentSpec{Name: "Iris"}) // openai/gpt-4o-mini sees

	t.Run("an image with a caption, after a 503 from Meta's CDN", func(t *testing.T) {
		const user = "447700900301"
		jpeg := testimage.JPEG(20, 20, 11)
		m := p.WhatsApp.AddMedia(tn.PhoneNumberID, "image/jpeg", jpeg)
		p.WhatsApp.Fail(fakewhatsapp.OpMediaDownload, fakewhatsapp.Failure{Status: http.StatusServiceUnavailable})
		before := p.LLM.Count()
		msg := postWhatsAppImage(t, p, tn, m, user, "is this scratch covered by the warranty?")

		sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 1, replyTimeout)
		reply := sent[0]
		require.Equal(t, `I see 1: image/jpeg `+sha8(jpeg)+` (you said "is this scratch covered by the warranty?")`, reply.Text)
		require.Equal(t, "text", reply.Type)
		require.Equal(t, "Bearer "+tn.Token, reply.Authorization, "sent with the tenant's token")
		require.Equal(t, msg.ID, reply.ReplyTo, "the reply quotes the image")

		require.Equal(t, 2, p.WhatsApp.MediaCalls(fakewhatsapp.OpMediaDownload, m.ID), "the 503 was retried")
		for _, r := range p.WhatsApp.Requests() {
			if strings.Contains(r.Path, m.ID) {
				require.Equal(t, "Bearer "+tn.Token, r.Authorization, "%s with the number's token", r.Path)
			}
		}
		chats, describes := imageRequests(p, before)
		require.Len(t, chats, 1)
		require.Empty(t, describes)
		img := chats[0].Images()[0]
		require.Equal(t, jpeg, img.Data, "the very bytes the user sent")
		require.Equal(t, "image/jpeg", img.MimeType)
		require.Equal(t, fakellm.OpenAI, chats[0].Wire)
		n, sizes := mediaRows(t, p, platform.Tenant{ID: tn.ID})
		require.Equal(t, 1, n)
		require.Equal(t, []int{len(jpeg)}, sizes)

		// The next turn has the image as a marker in the window, and nothing
		// is downloaded again.
		before = p.LLM.Count()
		sent = whatsAppBarrier(t, p, tn, user, "", 2)
		reqs := p.LLM.Requests()[before:]
		require.Len(t, reqs, 1)
		require.Empty(t, reqs[0].Images())
		require.Contains(t, reqs[0].Messages[0].Content, "[image: is this scratch covered by the warranty?]")
		require.Equal(t, 2, p.WhatsApp.MediaCalls(fakewhatsapp.OpMediaDownload, m.ID))
		require.Len(t, sent, 2)
	})

	t.Run("an expired download URL is resolved again", func(t *testing.T) {
		const user = "447700900302"
		png := testimage.PNG(16, 16, 12)
		m := p.WhatsApp.AddMedia(tn.PhoneNumberID, "image/png", png)
		p.WhatsApp.Fail(fakewhatsapp.OpMediaDownload, fakewhatsapp.Failure{Status: http.StatusNotFound})
		postWhatsAppImage(t, p, tn, m, user, "which model is this?")
		sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 1, replyTimeout)
		require.Equal(t, `I see 1: image/png `+sha8(png)+` (you said "which model is this?")`, sent[0].Text)
		require.Equal(t, 2, p.WhatsApp.MediaCalls(fakewhatsapp.OpMediaURL, m.ID), "resolved again after the 404")
		require.Equal(t, 2, p.WhatsApp.MediaCalls(fakewhatsapp.OpMediaDownload, m.ID))
	})

	t.Run("an Anthropic model gets an image block", func(t *testing.T) {
		claude := p.NewWhatsAppTenant("Claude shop", platform.AgentSpec{Name: "Cleo", Models: []string{"anthropic/claude-sonnet-4-5"}})
		const user = "447700900303"
		webp := testimage.WebP(13)
		m := p.WhatsApp.AddMedia(claude.PhoneNumberID, "image/webp", webp)
		before := p.LLM.Count()
		postWhatsAppImage(t, p, claude, m, user, "")
		sent := p.WhatsApp.WaitForSentTo(t, claude.PhoneNumberID, user, 1, replyTimeout)
		require.True(t, strings.HasPrefix(sent[0].Text, `I see 1: image/webp `+sha8(webp)), sent[0].Text)
		require.Equal(t, "Bearer "+claude.Token, sent[0].Authorization)
		chats, _ := imageRequests(p, before)
		require.Len(t, chats, 1)
		require.Equal(t, fakellm.Anthropic, chats[0].Wire)
		require.Equal(t, webp, chats[0].Images()[0].Data)
	})

	t.Run("an image over 5 MB gets a note on WhatsApp", func(t *testing.T) {
		const user = "447700900304"
		big := testimage.Sized(5<<20 + 256<<10)
		m := p.WhatsApp.AddMedia(tn.PhoneNumberID, "image/png", big)
		before := p.LLM.Count()
		postWhatsAppImage(t, p, tn, m, user, "my receipt")
		sent := p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, user, 2, replyTimeout)
		require.Equal(t, `I couldn't read the image "my receipt": it is larger than 5 MB (it is 5.3 MB).`, sent[0].Text)
		require.Equal(t, "Bearer "+tn.Token, sent[0].Authorization)
		require.Contains(t, sent[1].Text, "echo: my receipt", "the caption is still answered")
		require.Zero(t, p.WhatsApp.MediaCalls(fakewhatsapp.OpMediaDownload, m.ID), "refused on Meta's file_size, not downloaded")
		chats, _ := imageRequests(p, before)
		require.Empty(t, chats)

		// Without a caption, the note is the whole answer: no model is asked.
		const other = "447700900305"
		before = p.LLM.Count()
		postWhatsAppImage(t, p, tn, m, other, "")
		sent = p.WhatsApp.WaitForSentTo(t, tn.PhoneNumberID, other, 1, replyTimeout)
		require.Contains(t, sent[0].Text, "it is larger than 5 MB")
		sent = whatsAppBarrier(t, p, tn, other, "", 2)
		require.Len(t, sent, 2, "the note, then the barrier's echo")
		require.Equal(t, before+1, p.LLM.Count(), "only the barrier asked the model")
	})
}
