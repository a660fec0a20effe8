package audit

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

func TestCursorRoundTrips(t *testing.T) {
	c := store.AuditCursor{CreatedAt: time.Date(2026, 11, 1, 9, 30, 0, 123456000, time.UTC), ID: 987654321}
	got, err := DecodeCursor(EncodeCursor(c))
	require.NoError(t, err)
	require.Equal(t, c, got)
	for _, bad := range []string{"", "!!", "MTIz", "MTIzLmFiYw", "LTEuLTE"} {
		_, err := DecodeCursor(bad)
		require.Error(t, err, bad)
	}
}

// What ParseQuery reads, Values writes back, so links keep the filters.
func TestParseQueryValuesRoundTrip(t *testing.T) {
	agent := uuid.New()
	q, err := ParseQuery(url.Values{"from": {"2026-01-01T00:00:00Z"}, "to": {"2026-02-01T00:00:00+01:00"},
		"type": {"llm.call,knowledge.*", "tool.call"}, "agent_id": {agent.String()}, "limit": {"7"}})
	require.NoError(t, err)
	require.Equal(t, []string{"llm.call", "knowledge.", "tool.call"}, q.Filter.Types)
	require.Equal(t, 7, q.Filter.Limit)
	again, err := ParseQuery(q.Values())
	require.NoError(t, err)
	again.Filter.Limit = q.Filter.Limit
	require.True(t, q.Filter.From.Equal(again.Filter.From) && q.Filter.To.Equal(again.Filter.To))
	again.Filter.From, again.Filter.To = q.Filter.From, q.Filter.To
	require.Equal(t, q, again)

	csv, err := ParseQuery(url.Values{"format": {"csv"}})
	require.NoError(t, err)
	require.Zero(t, csv.Filter.Limit, "an export has no limit unless asked")
	page, err := ParseQuery(url.Values{})
	require.NoError(t, err)
	require.Equal(t, DefaultLimit, page.Filter.Limit)
}

// Whatever the query string, ParseQuery either accepts it or names the
// parameter at fault with a 400.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"type=llm.", "from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", "cursor=MTIzLjQ1",
		"limit=0", "agent_id=x", "type=a.b.c.*&type=", "format=csv&limit=500", "type=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			e := apperr.From(err)
			require.Equal(t, 400, e.Status)
			require.Contains(t, []string{"from", "to", "type", "agent_id", "conversation_id", "cursor", "limit", "format"}, e.Field)
			return
		}
		require.LessOrEqual(t, q.Filter.Limit, MaxLimit)
		for _, typ := range q.Filter.Types {
			require.Regexp(t, `^[a-z0-9_.]+$`, typ)
		}
	})
}
