package app_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/store"
)

// The transcript shows which chunks a turn used, linked to the chunk while
// it exists and by title once its document is deleted.
func TestTranscriptShowsTheSourcesATurnUsed(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	b := h.browser()
	home := b.signUp("kb@acme.test", "Kay", "Acme")
	tenant := uuid.MustParse(strings.TrimPrefix(home, "/t/"))
	var conv store.Conversation
	var doc store.Document
	require.NoError(t, h.app.Store.WithTenant(ctx, tenant, func(tx *store.Tx) error {
		agent, err := tx.CreateAgent(ctx, store.Agent{Name: "Ada", Tools: []string{"kb_search"}})
		if err != nil {
			return err
		}
		if conv, err = tx.EnsureConversation(ctx, store.Conversation{AgentID: agent.ID, Channel: store.ChannelSlack,
			ExternalKey: "T1:C1:1.0", WorkflowID: "wf-" + uuid.NewString()}); err != nil {
			return err
		}
		for _, m := range []store.Message{{Turn: 1, Role: "user", Content: "warranty?", IdempotencyKey: "u"},
			{Turn: 1, Role: "assistant", Content: "37 months [Handbook §2]", IdempotencyKey: "a"}} {
			m.ConversationID = conv.ID
			if _, err := tx.AddMessage(ctx, m); err != nil {
				return err
			}
		}
		sum := sha256.Sum256([]byte("handbook"))
		if doc, _, err = tx.UpsertDocument(ctx, store.Document{Title: "Handbook", SourceType: "text", Content: []byte("handbook"), ContentHash: sum[:]}); err != nil {
			return err
		}
		if _, _, err = tx.ReplaceChunks(ctx, doc.ID, doc.Version, []store.NewChunk{{Ordinal: 0, Content: "intro", Hash: sum[:]},
			{Ordinal: 1, Content: "warranty 37 months", Hash: make([]byte, 32)}}, "openai/text-embedding-3-small"); err != nil {
			return err
		}
		chunks, err := tx.ListChunks(ctx, doc.ID)
		if err != nil {
			return err
		}
		return tx.AddSources(ctx, []store.Source{{ConversationID: conv.ID, Turn: 1, Rank: 1, ChunkID: &chunks[1].ID,
			DocumentID: &doc.ID, DocumentTitle: doc.Title, Ordinal: 1, Score: 0.0328}})
	}))
	path := home + "/conversations/" + conv.ID.String()
	pg := b.get(path)
	require.Equal(t, http.StatusOK, pg.Status)
	require.Contains(t, pg.Body, `data-testid="sources"`)
	require.Contains(t, pg.Body, "[Handbook §2]</a>")
	require.Contains(t, pg.Body, home+"/knowledge/"+doc.ID.String()+"#chunk-")

	// Deleted: the transcript still names what was cited.
	var user store.User
	require.NoError(t, h.app.Store.WithPlatform(ctx, func(tx *store.Tx) error {
		var err error
		user, err = tx.GetUserByEmail(ctx, "kb@acme.test")
		return err
	}))
	require.NoError(t, h.app.Knowledge.Delete(ctx, auth.PrincipalOf(user), tenant, doc.ID))
	pg = b.get(path)
	require.Contains(t, pg.Body, "[Handbook §2] <span class=\"faint\">(deleted)</span>")
	require.NotContains(t, pg.Body, "#chunk-")
}

// Tenant B's admin cannot see, search, retry or delete tenant A's documents
// through the portal, even with their IDs.
func TestKnowledgeOfTenantAIsInvisibleToTenantB(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	homeA := h.browser().signUp("ada@a.test", "Ada", "Alpha Ltd")
	tenantA := uuid.MustParse(strings.TrimPrefix(homeA, "/t/"))
	b := h.browser()
	homeB := b.signUp("bob@b.test", "Bob", "Beta Ltd")
	var doc store.Document
	require.NoError(t, h.app.Store.WithTenant(ctx, tenantA, func(tx *store.Tx) error {
		sum := sha256.Sum256([]byte("secret"))
		var err error
		if doc, _, err = tx.UpsertDocument(ctx, store.Document{Title: "Alpha secrets", SourceType: "text", Content: []byte("Zanzibar vault code"), ContentHash: sum[:]}); err != nil {
			return err
		}
		_, _, err = tx.ReplaceChunks(ctx, doc.ID, doc.Version, []store.NewChunk{{Content: "Zanzibar vault code", Hash: sum[:]}}, "openai/text-embedding-3-small")
		return err
	}))
	for _, path := range []string{homeA + "/knowledge", homeA + "/knowledge/" + doc.ID.String(), homeA + "/knowledge/status",
		homeB + "/knowledge/" + doc.ID.String()} {
		pg := b.get(path)
		require.Equal(t, http.StatusNotFound, pg.Status, path)
		require.NotContains(t, pg.Body, "Alpha secrets")
	}
	for _, path := range []string{homeB + "/knowledge/" + doc.ID.String() + "/delete", homeB + "/knowledge/" + doc.ID.String() + "/retry",
		homeA + "/knowledge/" + doc.ID.String() + "/delete"} {
		require.Equal(t, http.StatusNotFound, b.post(path, nil).Status, path)
	}
	pg := b.get(homeB + "/knowledge/search?q=Zanzibar+vault+code")
	require.Equal(t, http.StatusOK, pg.Status)
	require.NotContains(t, pg.Body, "Alpha secrets")
	require.Contains(t, pg.Body, "Nothing found")
	pg = b.get(homeB + "/knowledge/status")
	require.JSONEq(t, `{"documents":[]}`, pg.Body)
	_, chunks, err := h.app.Knowledge.Get(ctx, tenantA, doc.ID)
	require.NoError(t, err, "A's document is still there")
	require.Len(t, chunks, 1)
}
