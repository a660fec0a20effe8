// Package audit is the read side of the audit trail, shared by the REST API
// (GET /api/v1/tenants/{id}/audit) and the portal's Activity page: the query
// parameters and their validation, the opaque paging cursor, and the CSV
// export format. The write side is store.(*Tx).AppendAudit.
package audit

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	maxTypes     = 20
)

// Formats of an answer.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Query is a parsed request for events.
type Query struct {
	Filter store.AuditFilter // Limit is the page size (0 for an unlimited CSV export)
	Format string
}

// InvalidParam is the error for a bad query parameter: 400, naming it.
func InvalidParam(field, message string) *apperr.Error {
	e := apperr.BadRequest("invalid_parameter", field+": "+message)
	e.Field = field
	return e
}

// typePattern is an action ("llm.call") or a family of them ("llm." or "llm.*").
var typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.|\.\*)?$`)

// ParseQuery reads from, to, type (repeatable), agent_id, conversation_id,
// cursor, limit and format. A CSV export without an explicit limit has none.
func ParseQuery(q url.Values) (Query, error) {
	out := Query{Format: FormatJSON}
	var f store.AuditFilter
	for _, name := range []string{"from", "to"} {
		s := strings.TrimSpace(q.Get(name))
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Query{}, InvalidParam(name, "must be an RFC 3339 timestamp such as 2026-01-31T09:00:00Z")
		}
		if name == "from" {
			f.From = t
		} else {
			f.To = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return Query{}, InvalidParam("to", "must be later than from")
	}
	for _, raw := range q["type"] {
		for _, typ := range strings.Split(raw, ",") {
			typ = strings.TrimSpace(typ)
			if typ == "" {
				continue
			}
			if len(typ) > 100 || !typePattern.MatchString(typ) {
				return Query{}, InvalidParam("type", "must be an action such as llm.call or a prefix such as knowledge.")
			}
			f.Types = append(f.Types, strings.TrimSuffix(typ, "*"))
		}
	}
	if len(f.Types) > maxTypes {
		return Query{}, InvalidParam("type", fmt.Sprintf("at most %d types", maxTypes))
	}
	for _, p := range []struct {
		name string
		dst  **uuid.UUID
	}{{"agent_id", &f.AgentID}, {"conversation_id", &f.ConversationID}} {
		s := strings.TrimSpace(q.Get(p.name))
		if s == "" {
			continue
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return Query{}, InvalidParam(p.name, "must be a UUID")
		}
		*p.dst = &id
	}
	if s := q.Get("cursor"); s != "" {
		c, err := DecodeCursor(s)
		if err != nil {
			return Query{}, InvalidParam("cursor", "is not a cursor this API returned")
		}
		f.After = &c
	}
	switch s := q.Get("format"); s {
	case "", FormatJSON:
	case FormatCSV:
		out.Format = FormatCSV
	default:
		return Query{}, InvalidParam("format", "must be json or csv")
	}
	f.Limit = DefaultLimit
	if out.Format == FormatCSV {
		f.Limit = 0
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return Query{}, InvalidParam("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxLimit))
		}
		f.Limit = n
	}
	out.Filter = f
	return out, nil
}

// Values is the inverse of ParseQuery, without cursor and format: links that
// keep the current filters (the next page, the export) add those.
func (q Query) Values() url.Values {
	v := url.Values{}
	f := q.Filter
	if !f.From.IsZero() {
		v.Set("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		v.Set("to", f.To.UTC().Format(time.RFC3339))
	}
	for _, t := range f.Types {
		v.Add("type", t)
	}
	if f.AgentID != nil {
		v.Set("agent_id", f.AgentID.String())
	}
	if f.ConversationID != nil {
		v.Set("conversation_id", f.ConversationID.String())
	}
	return v
}

// EncodeCursor makes the opaque cursor of a position.
func EncodeCursor(c store.AuditCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "." + strconv.FormatInt(c.ID, 10)))
}

// DecodeCursor reads a cursor EncodeCursor made.
func DecodeCursor(s string) (store.AuditCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.AuditCursor{}, fmt.Errorf("audit: cursor: %w", err)
	}
	ts, id, ok := strings.Cut(string(b), ".")
	if !ok {
		return store.AuditCursor{}, fmt.Errorf("audit: cursor: no separator")
	}
	micro, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return store.AuditCursor{}, fmt.Errorf("audit: cursor time: %w", err)
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n < 0 {
		return store.AuditCursor{}, fmt.Errorf("audit: cursor id: %q", id)
	}
	return store.AuditCursor{CreatedAt: time.UnixMicro(micro).UTC(), ID: n}, nil
}

// List returns one page of tenantID's events and the cursor of the next page
// ("" when this is the last).
func List(ctx context.Context, st *store.Store, tenantID uuid.UUID, f store.AuditFilter) ([]store.AuditEvent, string, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxLimit {
		limit = DefaultLimit
	}
	f.Limit = limit + 1 // one more tells whether a next page exists
	var events []store.AuditEvent
	err := st.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		events, err = tx.ListAuditEvents(ctx, f)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("audit: list: %w", err)
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		next = EncodeCursor(store.CursorOf(events[limit-1]))
	}
	return events, next, nil
}

// CSVColumns is the header row of an export.
var CSVColumns = []string{"id", "created_at", "type", "actor", "agent_id", "conversation_id", "workflow_id",
	"target_type", "target_id", "data"}

// CSVRecord is one event as a CSV row (data as JSON).
func CSVRecord(e store.AuditEvent) ([]string, error) {
	data := []byte("{}")
	if e.Data != nil {
		var err error
		if data, err = json.Marshal(e.Data); err != nil {
			return nil, fmt.Errorf("audit: csv data of event %d: %w", e.ID, err)
		}
	}
	return []string{strconv.FormatInt(e.ID, 10), e.CreatedAt.UTC().Format(time.RFC3339Nano), e.Action, e.Actor,
		uuidString(e.AgentID), uuidString(e.ConversationID), e.WorkflowID, e.TargetType, e.TargetID, string(data)}, nil
}

func uuidString(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

// flushEvery bounds how many rows wait in the CSV writer's buffer.
const flushEvery = 100

// ExportCSV streams tenantID's events selected by f to w as CSV, row by row
// as Postgres returns them. begin runs just before the first byte, once the
// query has started without error, so a caller can still answer an error
// properly until then; after it, a failure can only cut the stream short.
func ExportCSV(ctx context.Context, st *store.Store, tenantID uuid.UUID, f store.AuditFilter, w io.Writer, begin func()) error {
	cw := csv.NewWriter(w)
	started := false
	start := func() error {
		if started {
			return nil
		}
		started = true
		begin()
		return cw.Write(CSVColumns)
	}
	n := 0
	err := st.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		err := tx.EachAuditEvent(ctx, f, func(e store.AuditEvent) error {
			if err := start(); err != nil {
				return err
			}
			rec, err := CSVRecord(e)
			if err != nil {
				return err
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
			if n++; n%flushEvery == 0 {
				cw.Flush()
				if fl, ok := w.(http.Flusher); ok {
					fl.Flush()
				}
				return cw.Error()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return start() // an empty export still has its header
	})
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	cw.Flush()
	return cw.Error()
}
