package store_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

func TestMediaIsStoredOncePerFile(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	sd := seed(t, ctx, s, "m")

	png, gif := testimage.PNG(4, 4, 1), testimage.GIF(4, 4, 2)
	add := func(sourceID string, data []byte, mime string, turn int) store.Media {
		sum := sha256.Sum256(data)
		var out store.Media
		require.NoError(t, s.WithTenant(ctx, sd.tenant.ID, func(tx *store.Tx) error {
			var err error
			out, err = tx.AddMedia(ctx, store.Media{ConversationID: sd.conversation.ID, EndUserRef: "U0ALICE",
				Source: store.SourceWhatsApp, SourceID: sourceID, MimeType: mime, SHA256: sum[:], Data: data,
				Name: "photo", Caption: "look", Turn: turn})
			return err
		}))
		return out
	}
	first := add("1001", png, "image/png", 3)
	require.Equal(t, len(png), first.Size)
	require.Equal(t, "look", first.Caption)
	require.Nil(t, first.Data, "metadata only")
	again := add("1001", gif, "image/gif", 4) // a retried activity: the stored file stays
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, "image/png", again.MimeType)
	second := add("1002", gif, "image/gif", 0)
	require.Equal(t, 3, first.Turn)
	require.Equal(t, 3, again.Turn, "the turn that brought it first")
	require.Zero(t, second.Turn, "no turn recorded")

	require.NoError(t, s.WithTenant(ctx, sd.tenant.ID, func(tx *store.Tx) error {
		got, err := tx.LoadMedia(ctx, []uuid.UUID{second.ID, first.ID})
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, gif, got[0].Data, "in the order asked")
		require.Equal(t, png, got[1].Data)
		sum := sha256.Sum256(png)
		require.Equal(t, sum[:], got[1].SHA256)

		// The first description written is kept.
		d, err := tx.SetMediaDescription(ctx, first.ID, "a green square", "openai/gpt-4o")
		require.NoError(t, err)
		require.Equal(t, "a green square", d)
		d, err = tx.SetMediaDescription(ctx, first.ID, "something else", "anthropic/claude-sonnet-4-5")
		require.NoError(t, err)
		require.Equal(t, "a green square", d)
		m, err := tx.FindMedia(ctx, store.SourceWhatsApp, "1001")
		require.NoError(t, err)
		require.Equal(t, "openai/gpt-4o", m.DescriptionModel)

		// The portal lists a conversation's files, oldest first, without bytes.
		list, err := tx.ListConversationMedia(ctx, sd.conversation.ID)
		require.NoError(t, err)
		require.Len(t, list, 3, "the seed's, and these two")
		list = list[1:]
		require.Equal(t, []uuid.UUID{first.ID, second.ID}, []uuid.UUID{list[0].ID, list[1].ID})
		require.Equal(t, 3, list[0].Turn)
		require.Nil(t, list[0].Data)
		list, err = tx.ListConversationMedia(ctx, uuid.New())
		require.NoError(t, err)
		require.Empty(t, list)

		_, err = tx.LoadMedia(ctx, []uuid.UUID{first.ID, uuid.New()})
		require.ErrorIs(t, err, store.ErrNotFound)
		return nil
	}))
	// A type that is not an accepted image, or bytes that do not match
	// their recorded size, are refused by the database itself.
	for _, bad := range []string{`UPDATE media SET mime_type = 'application/pdf' WHERE id = $1`,
		`UPDATE media SET data = data || '\x00'::bytea WHERE id = $1`} {
		err := s.WithTenant(ctx, sd.tenant.ID, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, bad, first.ID)
			return err
		})
		require.ErrorIs(t, err, store.ErrInvalid, bad)
	}
	require.NoError(t, s.WithTenant(ctx, sd.tenant.ID, func(tx *store.Tx) error {
		n, err := tx.ForgetEndUserMedia(ctx, "U0ALICE")
		require.NoError(t, err)
		require.Equal(t, 2, n)
		n, err = tx.ForgetEndUserMedia(ctx, "Um") // seed()'s file, another end user
		require.NoError(t, err)
		require.Equal(t, 1, n)
		return nil
	}))

	// Deleting the tenant deletes its images.
	add("1003", png, "image/png", 5)
	require.NoError(t, s.WithPlatform(ctx, func(tx *store.Tx) error { return tx.DeleteTenant(ctx, sd.tenant.ID) }))
	require.NoError(t, s.WithPlatform(ctx, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM media WHERE tenant_id = $1`, sd.tenant.ID)
		require.NoError(t, err)
		require.Zero(t, n)
		return nil
	}))
}
