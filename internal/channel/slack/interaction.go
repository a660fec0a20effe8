package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	slackapi "github.com/slack-go/slack"
)

// Interaction types Konstruct acts on.
const InteractionBlockActions = "block_actions"

// ButtonClick is one button click of a block_actions interaction.
type ButtonClick struct {
	TeamID    string
	UserID    string
	UserName  string
	ChannelID string
	MessageTS string // the message the button is on
	ActionID  string
	Value     string
	ActionTS  string // when it was clicked: identifies the click
}

// Interaction is a parsed interactivity payload.
type Interaction struct {
	Type   string // "block_actions", "view_submission", ...
	Clicks []ButtonClick
}

// ErrNoPayload is a body without the payload form field.
var ErrNoPayload = errors.New("no payload field")

// ParseInteraction decodes a request to the interactivity Request URL: a
// form-encoded body whose payload field is the JSON interaction (slack-go's
// InteractionCallback). Call it only on a body that Verify accepted.
func ParseInteraction(body []byte) (Interaction, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return Interaction{}, fmt.Errorf("slack: parse interaction form: %w", err)
	}
	raw := form.Get("payload")
	if raw == "" {
		return Interaction{}, fmt.Errorf("slack: parse interaction: %w", ErrNoPayload)
	}
	return ParseInteractionPayload([]byte(raw))
}

// ParseInteractionPayload decodes the JSON of an interaction: the payload
// field of a request to the interactivity URL, or the payload of a Socket
// Mode "interactive" envelope.
func ParseInteractionPayload(raw []byte) (Interaction, error) {
	var cb slackapi.InteractionCallback
	if err := json.Unmarshal(raw, &cb); err != nil {
		return Interaction{}, fmt.Errorf("slack: parse interaction payload: %w", err)
	}
	out := Interaction{Type: string(cb.Type)}
	if out.Type != InteractionBlockActions {
		return out, nil
	}
	name := cb.User.Name
	if cb.User.Profile.DisplayName != "" {
		name = cb.User.Profile.DisplayName
	}
	for _, a := range cb.ActionCallback.BlockActions {
		ts := a.ActionTs
		if ts == "" {
			ts = cb.ActionTs
		}
		out.Clicks = append(out.Clicks, ButtonClick{TeamID: cb.Team.ID, UserID: cb.User.ID, UserName: name,
			ChannelID: firstNonEmpty(cb.Container.ChannelID, cb.Channel.ID), MessageTS: firstNonEmpty(cb.Container.MessageTs, cb.Message.Timestamp),
			ActionID: a.ActionID, Value: a.Value, ActionTS: ts})
	}
	return out, nil
}
