package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/activities"
)

func (f *fakeActs) FetchMedia(_ context.Context, in activities.FetchMediaInput) (activities.FetchMediaOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetched = append(f.fetched, in)
	if f.fetchErr != nil {
		return activities.FetchMediaOutput{}, f.fetchErr
	}
	return f.fetchOut(in), nil
}

func withMedia(id, text string, refs ...activities.MediaRef) Inbound {
	m := msg(id, text)
	m.Media = refs
	return m
}

var (
	photo = activities.MediaRef{Source: "slack", ID: "F1", Name: "photo.png", MimeType: "image/png"}
	pdf   = activities.MediaRef{Source: "slack", ID: "F2", Name: "invoice.pdf", MimeType: "application/pdf"}
)

// fetchAs answers like FetchMedia: photo stored, pdf refused.
func fetchAs(canSee bool) func(activities.FetchMediaInput) activities.FetchMediaOutput {
	return func(in activities.FetchMediaInput) activities.FetchMediaOutput {
		out := activities.FetchMediaOutput{CanSee: canSee}
		var notes []string
		for _, r := range in.Media {
			if r.ID == "F2" {
				out.Items = append(out.Items, activities.FetchedMedia{Marker: "[file invoice.pdf not read]", Refused: "not an image"})
				notes = append(notes, "I couldn't read invoice.pdf.")
				continue
			}
			out.Items = append(out.Items, activities.FetchedMedia{ID: "media-" + r.ID, Marker: activities.MediaMarker(r.Name, r.Caption)})
			if !canSee && !in.ForStaff {
				notes = append(notes, activities.NoVisionNotice)
			}
		}
		for i, n := range notes {
			if i > 0 {
				out.Notice += "\n"
			}
			out.Notice += n
		}
		return out
	}
}

// A message's files are fetched before its turn; the stored images go to
// every model call of the turn, the window keeps markers, and what was not
// read is told before the reply.
func TestMediaTurn(t *testing.T) {
	env, f := newEnv(t)
	f.fetchOut = fetchAs(true)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalMessage, withMedia("e1", "look", photo, pdf))
		env.SignalWorkflow(SignalMessage, msg("e2", "and?"))
	}, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())

	require.Len(t, f.fetched, 1, "only the message with files")
	in := f.fetched[0]
	require.Equal(t, 1, in.Turn)
	require.Equal(t, "U1", in.EndUserRef)
	require.Equal(t, "11111111-1111-1111-1111-111111111111", in.ConversationID)
	require.Equal(t, input().Address, in.Address)
	require.Equal(t, []activities.MediaRef{photo, pdf}, in.Media)

	require.Equal(t, []string{"media: I couldn't read invoice.pdf.",
		"reply: re: look\n[image: photo.png]\n[file invoice.pdf not read]",
		"reply: re: and?"}, f.texts())
	require.NotNil(t, f.delivered[0].User, "the user's message is recorded with the notice, before it")
	require.Equal(t, "look\n[image: photo.png]\n[file invoice.pdf not read]", f.delivered[0].User.Text)
	require.Equal(t, []string{"media-F1"}, f.responds[0].Media)
	require.Empty(t, f.responds[1].Media, "the next turn: a marker only")
	require.Equal(t, "look\n[image: photo.png]\n[file invoice.pdf not read]", f.remembered[0].User)
}

// No text and nothing a model can read: the notice is the answer, and no
// model is asked.
func TestMediaOnlyUnreadable(t *testing.T) {
	for name, tc := range map[string]struct {
		canSee bool
		refs   []activities.MediaRef
		notice string
	}{
		"refused":       {true, []activities.MediaRef{pdf}, "I couldn't read invoice.pdf."},
		"cannot see":    {false, []activities.MediaRef{photo}, activities.NoVisionNotice},
		"refused+blind": {false, []activities.MediaRef{photo, pdf}, activities.NoVisionNotice + "\nI couldn't read invoice.pdf."},
	} {
		t.Run(name, func(t *testing.T) {
			env, f := newEnv(t)
			f.fetchOut = fetchAs(tc.canSee)
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, withMedia("e1", "", tc.refs...)) }, time.Second)
			env.ExecuteWorkflow(ConversationWorkflow, input())
			require.NoError(t, env.GetWorkflowError())
			require.Len(t, f.delivered, 1)
			require.Equal(t, activities.KindMedia, f.delivered[0].Kind)
			require.NotNil(t, f.delivered[0].User)
			require.Empty(t, f.responds)
			require.Len(t, f.texts(), 1)
		})
	}
	// A chain that cannot see still answers the text.
	env, f := newEnv(t)
	f.fetchOut = fetchAs(false)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, withMedia("e1", "hi", photo)) }, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"media: " + activities.NoVisionNotice, "reply: re: hi\n[image: photo.png]"}, f.texts())
}

// Downloads that keep failing are retried for minutes, then the user is
// asked to send the files again; the text is still answered.
func TestMediaDownloadGivenUp(t *testing.T) {
	env, f := newEnv(t)
	f.fetchErr = errors.New("slack: files.download: 503 Service Unavailable")
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalMessage, withMedia("e1", "see attached", photo)) }, time.Second)
	env.ExecuteWorkflow(ConversationWorkflow, input())
	require.NoError(t, env.GetWorkflowError())
	require.Greater(t, len(f.fetched), 5, "retried with backoff")
	texts := f.texts()
	require.Len(t, texts, 2)
	require.Equal(t, "media: I couldn't download what you sent (photo.png), even after trying for several minutes, so I haven't seen it. Please send it again.", texts[0])
	require.Equal(t, "reply: re: see attached\n[file photo.png not downloaded]", texts[1])
	require.Empty(t, f.responds[0].Media)
}
