package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

// The images an end user sent are in the portal's transcripts, under the
// message they came with — the conversation's page, the escalation's page
// and its live feed — and are served to whoever may read the tenant's
// conversations, as images only: with the type sniffed when they were
// stored, nosniff, and a CSP under which nothing in them can run. Another
// tenant's admin gets a 404 for them, whatever path they try.
func TestPortalShowsTheImagesUsersSent(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.browser()
	home := admin.signUp("ada@images.test", "Ada", "Images Ltd")
	tenantID := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	sc := seedShowcase(t, h, tenantID, "images")
	ctx := context.Background()

	jpeg := testimage.JPEG(24, 16, 3)
	var m store.Media
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		sum := sha256.Sum256(jpeg)
		var err error
		m, err = tx.AddMedia(ctx, store.Media{ConversationID: sc.Escalation.ConversationID, EndUserRef: "Katherine Johnson",
			Source: store.SourceWhatsApp, SourceID: "1000000000000042", MimeType: "image/jpeg", SHA256: sum[:], Data: jpeg,
			Caption: "the label on the <parcel>", Turn: 1})
		return err
	}))
	src := home + "/media/" + m.ID.String()

	conv := admin.get(home + "/conversations/" + sc.Escalation.ConversationID.String())
	require.Equal(t, http.StatusOK, conv.Status)
	require.Contains(t, conv.Body, `<img src="`+src+`" alt="the label on the &lt;parcel&gt;"`)
	esc := admin.get(home + "/escalations/" + sc.Escalation.ID.String())
	require.Equal(t, http.StatusOK, esc.Status)
	require.Contains(t, esc.Body, `<img src="`+src+`"`)
	require.Equal(t, 1, strings.Count(esc.Body, `data-testid="msg-images"`), "under the user's message of its turn only")
	var live struct {
		Messages []struct {
			Role   string `json:"role"`
			Turn   int    `json:"turn"`
			Images []struct{ URL, Alt string }
		} `json:"messages"`
	}
	p := admin.get(home + "/escalations/" + sc.Escalation.ID.String() + "/live")
	require.NoError(t, json.Unmarshal([]byte(p.Body), &live))
	var withImages int
	for _, msg := range live.Messages {
		if len(msg.Images) > 0 {
			withImages++
			require.Equal(t, "user", msg.Role)
			require.Equal(t, 1, msg.Turn)
			require.Equal(t, src, msg.Images[0].URL)
			require.Equal(t, "the label on the <parcel>", msg.Images[0].Alt)
		}
	}
	require.Equal(t, 1, withImages)

	img := admin.get(src)
	require.Equal(t, http.StatusOK, img.Status)
	require.Equal(t, string(jpeg), img.Body)
	require.Equal(t, "image/jpeg", img.Header.Get("Content-Type"))
	require.Equal(t, "nosniff", img.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "default-src 'none'; sandbox", img.Header.Get("Content-Security-Policy"))

	// An operator reads conversations, so sees the image too.
	setPassword(t, h, sc.Operator.ID, "Operator-Pass-Word-9")
	op := h.browser()
	op.signIn(sc.Operator.Email, "Operator-Pass-Word-9")
	require.Equal(t, http.StatusOK, op.get(src).Status)

	// Another organisation's admin: not under their tenant, not under ours.
	other := h.browser()
	otherHome := other.signUp("eve@other.test", "Eve", "Other Ltd")
	require.Equal(t, http.StatusNotFound, other.get(otherHome+"/media/"+m.ID.String()).Status, "A's image under B's path")
	require.NotEqual(t, http.StatusOK, other.get(src).Status, "B in A's tenant")
	require.NotContains(t, other.get(src).Body, string(jpeg[:32]))
	require.Equal(t, http.StatusNotFound, admin.get(home+"/media/"+uuid.NewString()).Status)
	require.Equal(t, http.StatusNotFound, admin.get(home+"/media/not-a-uuid").Status)
}
