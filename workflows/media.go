package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/konstruct/konstruct/activities"
)

// changeMedia names the change that fetches the files of a message before
// its turn (FetchMedia), tells the user about files that were not read, and
// gives the turn's images to the model. It is only asked for a message that
// carries media, so runs without any replay as before; a message with media
// received before it (none are: no webhook filled Inbound.Media) replays as
// text only.
const changeMedia = "media"

// fetchMediaOptions: FetchMedia is a regular activity, not a local one. A
// download may take seconds, and a failed one must be retried durably
// (backoff on the server's timers, surviving a worker restart) without
// holding the workflow task open; a 503 or a timeout fails the attempt, and
// Temporal retries it for up to ten minutes.
func fetchMediaOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: mediaRetryFor,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{"BadInput", activities.ErrChannelGone},
		},
	}
}

// mediaRetryFor is how long a message's files are retried before the user is
// asked to send them again.
const mediaRetryFor = 10 * time.Minute

// turnMedia is what became of a message's files.
type turnMedia struct {
	ids     []string // stored images, for the model
	markers []string // what the window holds in their place, in order
	notice  string   // for the user ("" when nothing to say)
	canSee  bool     // the agent's chain has a model that can see
}

// fetchMedia downloads and stores the files of m. It never fails the turn:
// files that could not be downloaded, even after retrying, are told to the
// user like files that were refused. forStaff: people own the conversation
// and get the files, not a model.
func (c *conversation) fetchMedia(ctx workflow.Context, m Inbound, forStaff bool) turnMedia {
	var out activities.FetchMediaOutput
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, fetchMediaOptions()), acts.FetchMedia,
		activities.FetchMediaInput{TenantID: c.in.TenantID, AgentID: c.in.AgentID, ConversationID: c.s.ConversationID,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Channel: c.in.Channel, Address: c.in.Address,
			EndUserRef: m.UserID, Turn: c.s.Turn, Media: m.Media, ForStaff: forStaff}).Get(ctx, &out)
	var tm turnMedia
	if err != nil {
		workflow.GetLogger(ctx).Warn("files of the message could not be downloaded", "turn", c.s.Turn, "error", err)
		var names []string
		for _, ref := range m.Media {
			label := ref.Name
			if label == "" {
				label = "an image"
			}
			names = append(names, label)
			tm.markers = append(tm.markers, "[file "+label+" not downloaded]")
		}
		tm.notice = "I couldn't download what you sent (" + strings.Join(names, ", ") + "), even after trying for " +
			"several minutes, so I haven't seen it. Please send it again."
		return tm
	}
	for _, it := range out.Items {
		tm.markers = append(tm.markers, it.Marker)
		if it.ID != "" {
			tm.ids = append(tm.ids, it.ID)
		}
	}
	tm.notice, tm.canSee = out.Notice, out.CanSee
	return tm
}

// answerable reports whether the model has anything to answer: text, or an
// image it can see.
func (tm turnMedia) answerable(text string) bool {
	return strings.TrimSpace(text) != "" || (len(tm.ids) > 0 && tm.canSee)
}

// withMarkers is the message as the window keeps it: the text, then a
// marker per file.
func withMarkers(text string, markers []string) string {
	parts := make([]string, 0, len(markers)+1)
	if strings.TrimSpace(text) != "" {
		parts = append(parts, text)
	}
	parts = append(parts, markers...)
	return strings.Join(parts, "\n")
}
