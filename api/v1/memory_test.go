package v1_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/testimage"
)

func forgetPath(tenantID uuid.UUID, ref string) string {
	return tenantPath(tenantID) + "/end-users/" + url.PathEscape(ref) + "/memory"
}

// seedMemories gives an end user n embedded message memories and one summary.
func seedMemories(t *testing.T, s *apitest.Server, tenantID, agentID uuid.UUID, user string, n int) {
	t.Helper()
	ctx := context.Background()
	cv := s.SeedConversation(t, tenantID, agentID, 1)
	require.NoError(t, s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			if _, err := tx.AddMemory(ctx, store.Memory{AgentID: agentID, EndUserRef: user, ConversationID: cv.ID, Turn: 1,
				Kind: store.MemoryMessage, Role: "user", Content: "fact " + uuid.NewString(), IdempotencyKey: uuid.NewString()}); err != nil {
				return err
			}
		}
		if _, err := tx.AddMemory(ctx, store.Memory{AgentID: agentID, EndUserRef: user, ConversationID: cv.ID, Turn: 1,
			Kind: store.MemorySummary, Role: "system", Content: "a summary", IdempotencyKey: uuid.NewString()}); err != nil {
			return err
		}
		pending, err := tx.PendingMemories(ctx, agentID, user, nil, 0, 100, 5)
		if err != nil {
			return err
		}
		var ids []uuid.UUID
		var vecs [][]float32
		for _, m := range pending[:len(pending)/2] { // some embedded, some not: both go
			ids, vecs = append(ids, m.ID), append(vecs, fakellm.Embedding(m.Content, 1536))
		}
		if err := tx.SetMemoryEmbeddings(ctx, "openai/text-embedding-3-small", ids, vecs); err != nil {
			return err
		}
		// And an image they sent.
		img := testimage.PNG(2, 2, byte(n))
		sum := sha256.Sum256(img)
		_, err = tx.AddMedia(ctx, store.Media{ConversationID: cv.ID, EndUserRef: user, Source: store.SourceSlack,
			SourceID: "F" + uuid.NewString(), MimeType: "image/png", SHA256: sum[:], Data: img})
		return err
	}))
}

func memoryCount(t *testing.T, s *apitest.Server, tenantID uuid.UUID, user string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.Store.WithTenant(context.Background(), tenantID, func(tx *store.Tx) error {
		var err error
		n, err = tx.QueryInt(context.Background(), `SELECT count(*) FROM memories WHERE end_user_ref = $1`, user)
		return err
	}))
	return n
}

func mediaCount(t *testing.T, s *apitest.Server, tenantID uuid.UUID, user string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.Store.WithTenant(context.Background(), tenantID, func(tx *store.Tx) error {
		var err error
		n, err = tx.QueryInt(context.Background(), `SELECT count(*) FROM media WHERE end_user_ref = $1`, user)
		return err
	}))
	return n
}

func TestForgetEndUser(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	ten := s.CreateTenant(t, "Forgetful")
	other := s.CreateTenant(t, "Other")
	admin := s.NewUser(t, ten.ID, store.RoleCustomerAdmin)
	op := s.NewUser(t, ten.ID, store.RoleCustomerOperator)
	otherAdmin := s.NewUser(t, other.ID, store.RoleCustomerAdmin)
	ag := s.CreateAgent(t, admin.Token, ten.ID, "Ada")
	otherAg := s.CreateAgent(t, otherAdmin.Token, other.ID, "Ada")
	seedMemories(t, s, ten.ID, ag.ID, "U0ALICE", 4)
	seedMemories(t, s, ten.ID, ag.ID, "U0BOB", 2)
	seedMemories(t, s, other.ID, otherAg.ID, "U0ALICE", 3)

	// An operator may not; another tenant's admin cannot even see the tenant.
	s.Do(t, http.MethodDelete, forgetPath(ten.ID, "U0ALICE"), op.Token, nil).ExpectError(t, http.StatusForbidden, "forbidden", "")
	s.Do(t, http.MethodDelete, forgetPath(ten.ID, "U0ALICE"), otherAdmin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
	require.EqualValues(t, 5, memoryCount(t, s, ten.ID, "U0ALICE"))

	var out struct {
		UserRef          string `json:"user_ref"`
		DeletedMessages  int    `json:"deleted_messages"`
		DeletedSummaries int    `json:"deleted_summaries"`
		DeletedMedia     int    `json:"deleted_media"`
	}
	s.Do(t, http.MethodDelete, forgetPath(ten.ID, "U0ALICE"), admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &out)
	require.Equal(t, "U0ALICE", out.UserRef)
	require.Equal(t, 4, out.DeletedMessages, "embedded and pending alike")
	require.Equal(t, 1, out.DeletedSummaries)
	require.Equal(t, 1, out.DeletedMedia, "the images they sent go too")
	require.Zero(t, mediaCount(t, s, ten.ID, "U0ALICE"))
	require.EqualValues(t, 1, mediaCount(t, s, ten.ID, "U0BOB"))
	require.EqualValues(t, 1, mediaCount(t, s, other.ID, "U0ALICE"))
	require.Zero(t, memoryCount(t, s, ten.ID, "U0ALICE"))
	require.EqualValues(t, 3, memoryCount(t, s, ten.ID, "U0BOB"), "another end user keeps theirs")
	require.EqualValues(t, 4, memoryCount(t, s, other.ID, "U0ALICE"), "the same user ID in another tenant keeps theirs")

	// Audited, with who and how much.
	require.NoError(t, s.Store.WithTenant(context.Background(), ten.ID, func(tx *store.Tx) error {
		var actor, target, data string
		err := tx.QueryRowScan(context.Background(), `SELECT actor, target_id, data::text FROM audit_events WHERE action = 'memory.forget'`,
			nil, &actor, &target, &data)
		require.NoError(t, err)
		require.Equal(t, "user:"+admin.ID.String(), actor)
		require.Equal(t, "U0ALICE", target)
		require.JSONEq(t, `{"deleted_messages":4,"deleted_summaries":1,"deleted_media":1}`, data)
		return nil
	}))

	// Again: nothing left, still fine.
	s.Do(t, http.MethodDelete, forgetPath(ten.ID, "U0ALICE"), admin.Token, nil).Expect(t, http.StatusOK).JSON(t, &out)
	require.Zero(t, out.DeletedMessages)

	// A user reference that cannot be a channel's user ID is refused clearly.
	s.Do(t, http.MethodDelete, forgetPath(ten.ID, strings.Repeat("U", 301)), admin.Token, nil).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "user_ref")
	s.Do(t, http.MethodDelete, forgetPath(ten.ID, "U0\x01"), admin.Token, nil).
		ExpectError(t, http.StatusUnprocessableEntity, "validation_failed", "user_ref")
	s.Do(t, http.MethodDelete, forgetPath(uuid.New(), "U0ALICE"), admin.Token, nil).ExpectError(t, http.StatusNotFound, "not_found", "")
}
