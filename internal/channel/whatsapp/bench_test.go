package whatsapp_test

import (
	"net/http"
	"testing"

	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/testkit/fakewhatsapp"
)

// The webhook's work before the database: verify and parse a delivery of
// one text message (Meta's usual batch), on the hot path of every ack.
func BenchmarkVerifyAndParse(b *testing.B) {
	m := fakewhatsapp.Text("16505551234", "Does it come in another color?")
	m.UserID = "US.13491208655302741918"
	body := fakewhatsapp.Messages("106540352242922", m)
	h := http.Header{}
	h.Set(whatsapp.HeaderSignature, fakewhatsapp.Signature("app-secret", body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := whatsapp.Verify(h, body, "app-secret"); err != nil {
			b.Fatal(err)
		}
		w, err := whatsapp.ParseWebhook(body)
		if err != nil || len(w.Changes[0].Messages) != 1 {
			b.Fatal(err)
		}
	}
}
