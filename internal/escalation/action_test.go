package escalation

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/konstruct/konstruct/internal/inbox"
	"github.com/konstruct/konstruct/internal/store"
)

type fakeSignaler struct {
	err  error
	sent []Signal
	ids  []string
}

func (f *fakeSignaler) SignalWorkflow(_ context.Context, workflowID, _, name string, arg any) error {
	if name != SignalMessage {
		panic("wrong signal " + name)
	}
	f.ids = append(f.ids, workflowID)
	f.sent = append(f.sent, arg.(Signal))
	return f.err
}

// The inbox handler signals the action's conversation on its message signal;
// a payload that does not decode, names another tenant's conversation, or
// whose workflow is gone is rejected for good; other failures are retried.
func TestInboxHandler(t *testing.T) {
	tenant := uuid.New()
	wf := "conversation/" + tenant.String() + "/slack/T1:C1:1.0"
	ev := func(workflowID string) store.InboxEvent {
		raw, _ := json.Marshal(StaffEvent{WorkflowID: workflowID, Action: StaffAction{EventID: "portal:1", EscalationID: "e1", Kind: ActionReply, Text: "hi"}})
		return store.InboxEvent{ID: 7, TenantID: tenant, Source: store.SourceEscalation, Payload: raw}
	}
	f := &fakeSignaler{}
	require.NoError(t, InboxHandler{Client: f}.Deliver(context.Background(), ev(wf)))
	require.Equal(t, []string{wf}, f.ids)
	require.Equal(t, "portal:1", f.sent[0].EventID)
	require.Equal(t, "hi", f.sent[0].Staff.Text)

	err := InboxHandler{Client: f}.Deliver(context.Background(), ev("conversation/"+uuid.NewString()+"/slack/x"))
	require.True(t, inbox.IsPermanent(err), "another tenant's conversation")
	err = InboxHandler{Client: f}.Deliver(context.Background(), store.InboxEvent{TenantID: tenant, Payload: []byte(`{`)})
	require.True(t, inbox.IsPermanent(err), "an undecodable payload")
	require.Len(t, f.sent, 1)

	f.err = serviceerror.NewNotFound("workflow not found")
	require.True(t, inbox.IsPermanent(InboxHandler{Client: f}.Deliver(context.Background(), ev(wf))), "the conversation is gone")
	f.err = serviceerror.NewUnavailable("temporal down")
	err = InboxHandler{Client: f}.Deliver(context.Background(), ev(wf))
	require.Error(t, err)
	require.False(t, inbox.IsPermanent(err), "retried while Temporal is down")
}
