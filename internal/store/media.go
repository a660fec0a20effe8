package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Media is an image an end user sent, stored once per tenant, source and
// source ID. Data is loaded only by LoadMedia.
type Media struct {
	ID               uuid.UUID
	TenantID         uuid.UUID
	ConversationID   uuid.UUID
	EndUserRef       string
	Source           string // SourceSlack | SourceWhatsApp
	SourceID         string // Slack file ID or WhatsApp media ID
	MimeType         string
	Size             int
	SHA256           []byte
	Data             []byte
	Name             string
	Caption          string
	Description      string // "" until a vision model described it
	DescriptionModel string
	// Turn is the conversation's turn whose message brought the file (0:
	// stored before turns were recorded).
	Turn      int
	CreatedAt time.Time
}

const mediaCols = `id, tenant_id, conversation_id, end_user_ref, source, source_id, mime_type, size_bytes, sha256,
	name, caption, coalesce(description, ''), coalesce(description_model, ''), coalesce(turn, 0), created_at`

func scanMedia(row pgx.Row, withData bool) (Media, error) {
	var m Media
	dest := []any{&m.ID, &m.TenantID, &m.ConversationID, &m.EndUserRef, &m.Source, &m.SourceID, &m.MimeType, &m.Size,
		&m.SHA256, &m.Name, &m.Caption, &m.Description, &m.DescriptionModel, &m.Turn, &m.CreatedAt}
	if withData {
		dest = append(dest, &m.Data)
	}
	return m, mapErr(row.Scan(dest...))
}

// FindMedia returns the stored file of source and sourceID (without its
// bytes), or ErrNotFound: whether it was downloaded already.
func (t *Tx) FindMedia(ctx context.Context, source, sourceID string) (Media, error) {
	m, err := scanMedia(t.tx.QueryRow(ctx, `SELECT `+mediaCols+` FROM media WHERE source = $1 AND source_id = $2`,
		source, sourceID), false)
	if err != nil {
		return Media{}, fmt.Errorf("store: find media %s/%s: %w", source, sourceID, err)
	}
	return m, nil
}

// AddMedia stores a downloaded file, once per source and source ID: when
// the file is stored already (an earlier attempt, another worker), that row
// is returned and nothing is written. The returned Media has no Data.
func (t *Tx) AddMedia(ctx context.Context, m Media) (Media, error) {
	out, err := scanMedia(t.tx.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO media (tenant_id, conversation_id, end_user_ref, source, source_id, mime_type, size_bytes, sha256, data, name, caption, turn)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, nullif($12, 0))
			ON CONFLICT (tenant_id, source, source_id) DO NOTHING
			RETURNING `+mediaCols+`)
		SELECT * FROM ins
		UNION ALL
		SELECT `+mediaCols+` FROM media WHERE source = $4 AND source_id = $5 AND NOT EXISTS (SELECT 1 FROM ins)`,
		t.scope(m.TenantID), m.ConversationID, m.EndUserRef, m.Source, m.SourceID, m.MimeType, len(m.Data), m.SHA256,
		m.Data, m.Name, m.Caption, m.Turn), false)
	if errors.Is(err, ErrNotFound) {
		// Another transaction stored it while this statement ran: the
		// insert waited for it and did nothing, and the statement's snapshot
		// predates it. A new statement sees it.
		return t.FindMedia(ctx, m.Source, m.SourceID)
	}
	if err != nil {
		return Media{}, fmt.Errorf("store: add media %s/%s: %w", m.Source, m.SourceID, err)
	}
	return out, nil
}

// LoadMedia returns the files ids, with their bytes, in the order given; an
// ID not visible in this tenant is ErrNotFound.
func (t *Tx) LoadMedia(ctx context.Context, ids []uuid.UUID) ([]Media, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT `+mediaCols+`, data FROM media WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: load media: %w", mapErr(err))
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Media, error) { return scanMedia(r, true) })
	if err != nil {
		return nil, fmt.Errorf("store: load media: %w", mapErr(err))
	}
	byID := make(map[uuid.UUID]Media, len(got))
	for _, m := range got {
		byID[m.ID] = m
	}
	out := make([]Media, 0, len(ids))
	for _, id := range ids {
		m, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("store: load media %s: %w", id, ErrNotFound)
		}
		out = append(out, m)
	}
	return out, nil
}

// ListConversationMedia returns the files of a conversation (without their
// bytes), oldest first: what the portal shows with its transcript.
func (t *Tx) ListConversationMedia(ctx context.Context, conversationID uuid.UUID) ([]Media, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+mediaCols+` FROM media WHERE conversation_id = $1 ORDER BY created_at, id`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("store: list conversation media: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Media, error) { return scanMedia(r, false) })
	if err != nil {
		return nil, fmt.Errorf("store: list conversation media: %w", mapErr(err))
	}
	return out, nil
}

// SetMediaDescription records what a vision model (provider/model) wrote
// about the file. A description already recorded is kept: the first one
// written is the one every later call reads.
func (t *Tx) SetMediaDescription(ctx context.Context, id uuid.UUID, description, model string) (string, error) {
	var kept string
	err := t.tx.QueryRow(ctx, `
		UPDATE media SET description = coalesce(description, $2), description_model = coalesce(description_model, $3)
		WHERE id = $1 RETURNING description`, id, description, model).Scan(&kept)
	if err != nil {
		return "", fmt.Errorf("store: describe media %s: %w", id, mapErr(err))
	}
	return kept, nil
}

// ForgetEndUserMedia deletes every file an end user sent in this tenant and
// says how many went.
func (t *Tx) ForgetEndUserMedia(ctx context.Context, endUserRef string) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM media WHERE tenant_id = $1 AND end_user_ref = $2`, t.tenantID, endUserRef)
	if err != nil {
		return 0, fmt.Errorf("store: forget end user media: %w", mapErr(err))
	}
	return int(tag.RowsAffected()), nil
}
