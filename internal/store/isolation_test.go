package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit"
)

// tenantTables lists, from the catalog, every table that has a tenant_id
// column, plus tenants itself (scoped by its id).
func tenantTables(t *testing.T, ctx context.Context, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(ctx, `
		SELECT c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
		WHERE c.relkind IN ('r', 'p')
		  AND (c.relname = 'tenants' OR EXISTS (
		        SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
		ORDER BY 1`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, names, "agents", "catalog query found the schema")
	return names
}

// A future table with a tenant_id column cannot forget row-level security:
// this test finds it in the catalog and fails unless RLS is enabled, forced
// and has a policy.
func TestEveryTenantTableHasForcedRLS(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	conn, err := pgx.Connect(ctx, db.OwnerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)

	for _, table := range tenantTables(t, ctx, conn) {
		var enabled, forced bool
		var policies int
		require.NoError(t, conn.QueryRow(ctx, `
			SELECT c.relrowsecurity, c.relforcerowsecurity,
			       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
			FROM pg_class c WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace`, table).
			Scan(&enabled, &forced, &policies))
		require.True(t, enabled, "%s: row-level security is not enabled", table)
		require.True(t, forced, "%s: row-level security is not forced", table)
		require.Positive(t, policies, "%s: no RLS policy", table)
	}
}

// The application role must not be able to step around RLS.
func TestAppRoleOwnsNothingAndCannotBypassRLS(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	conn, err := pgx.Connect(ctx, db.AppURL)
	require.NoError(t, err)
	defer conn.Close(ctx)

	var super, bypass bool
	var owned int
	require.NoError(t, conn.QueryRow(ctx, `
		SELECT r.rolsuper, r.rolbypassrls,
		       (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid)
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&super, &bypass, &owned))
	require.False(t, super, "app role is a superuser")
	require.False(t, bypass, "app role has BYPASSRLS")
	require.Zero(t, owned, "app role owns relations")
}

type seeded struct {
	tenant       store.Tenant
	user         store.User
	agent        store.Agent
	channel      store.ChannelConnection
	conversation store.Conversation
	handoff      store.Handoff
}

// seed writes one row of every tenant-scoped table for a new tenant.
func seed(t testing.TB, ctx context.Context, s *store.Store, label string) seeded {
	t.Helper()
	var out seeded
	id := uuid.New()
	require.NoError(t, s.WithTenant(ctx, id, func(tx *store.Tx) error {
		var err error
		if out.tenant, err = tx.CreateTenant(ctx, id, "Tenant "+label); err != nil {
			return err
		}
		if out.user, err = tx.CreateUser(ctx, store.User{Email: label + "@example.com", PasswordHash: "x", Role: store.RoleCustomerAdmin}); err != nil {
			return err
		}
		hash := sha256.Sum256([]byte("token-" + label + id.String()))
		if _, err = tx.CreateAPIToken(ctx, out.user, "cli", hash[:], nil); err != nil {
			return err
		}
		if out.agent, err = tx.CreateAgent(ctx, store.Agent{Name: "Ada " + label, Models: []string{"openai/gpt-4o-mini"}}); err != nil {
			return err
		}
		if out.channel, err = tx.UpsertChannelConnection(ctx, store.ChannelConnection{
			AgentID: out.agent.ID, Kind: store.ChannelSlack, ExternalID: "T" + label + id.String()[:8], Secret: []byte{1, 2, 3},
		}); err != nil {
			return err
		}
		if out.conversation, err = tx.EnsureConversation(ctx, store.Conversation{
			AgentID: out.agent.ID, Channel: store.ChannelSlack, ExternalKey: "k-" + label, WorkflowID: "wf-" + id.String(),
		}); err != nil {
			return err
		}
		if _, err = tx.AddMessage(ctx, store.Message{ConversationID: out.conversation.ID, Turn: 1, Role: "user",
			Content: "hello from " + label, IdempotencyKey: "m1"}); err != nil {
			return err
		}
		if err = tx.AddUsage(ctx, store.Usage{Provider: "openai", Model: "gpt-4o-mini", InputTokens: 3, IdempotencyKey: "u1"}); err != nil {
			return err
		}
		// Billing: the account, an applied Stripe event, a hard-stop budget
		// (its month row kept by the usage trigger), a reservation, a notice;
		// usage_counters is kept by the message and usage triggers.
		if err = tx.SetStripeIDs(ctx, id, "cus_"+label+id.String()[:8], "sub_"+label+id.String()[:8]); err != nil {
			return err
		}
		if _, err = tx.RecordStripeEvent(ctx, id, "evt_"+label, "invoice.paid", time.Now(), "applied"); err != nil {
			return err
		}
		if err = tx.PutBudget(ctx, id, nil, 1_000_000, true); err != nil {
			return err
		}
		if err = tx.AddUsage(ctx, store.Usage{Provider: "openai", Model: "gpt-4o-mini", InputTokens: 3, CostMicroUSD: 1, IdempotencyKey: "u2"}); err != nil {
			return err
		}
		if _, err = tx.ReserveBudget(ctx, id, "wf-"+label+":1:llm:0", &out.agent.ID, 10, time.Now(), time.Hour); err != nil {
			return err
		}
		if _, err = tx.ClaimNotice(ctx, id, time.Now(), "allowance:"+out.conversation.ID.String(), "wf:1"); err != nil {
			return err
		}
		if _, err = tx.ClaimOutbound(ctx, store.Outbound{Key: "wf:1:0", Channel: store.ChannelSlack}); err != nil {
			return err
		}
		if err = tx.TouchWhatsAppContact(ctx, store.WhatsAppContact{PhoneNumberID: "1065" + label, UserKey: "US.1" + label,
			WAID: "1555000" + label, LastInboundAt: time.Now()}); err != nil {
			return err
		}
		if _, err = tx.CreateHTTPTool(ctx, store.HTTPTool{ID: uuid.New(), AgentID: out.agent.ID, Name: "lookup_order",
			Description: "Looks up an order", Method: "GET", URLTemplate: "https://api.example.com/orders/{id}",
			Parameters: []byte(`{"type":"object"}`), Timeout: time.Second, Enabled: true}); err != nil {
			return err
		}
		if _, err = tx.ClaimToolCall(ctx, "wf-"+label+":1:tool:0", "lookup_order"); err != nil {
			return err
		}
		docHash := sha256.Sum256([]byte("doc-" + label))
		doc, _, err := tx.UpsertDocument(ctx, store.Document{Title: "Handbook " + label, SourceType: "text",
			Content: []byte("doc-" + label), ContentHash: docHash[:]})
		if err != nil {
			return err
		}
		if _, _, err = tx.ReplaceChunks(ctx, doc.ID, doc.Version, []store.NewChunk{
			{Ordinal: 0, Content: "doc-" + label, Hash: docHash[:]}}, "openai/text-embedding-3-small"); err != nil {
			return err
		}
		chunks, err := tx.ListChunks(ctx, doc.ID)
		if err != nil {
			return err
		}
		if err = tx.AddSources(ctx, []store.Source{{ConversationID: out.conversation.ID, Turn: 1, Call: 0, Rank: 1,
			ChunkID: &chunks[0].ID, DocumentID: &doc.ID, DocumentTitle: doc.Title, Score: 0.5}}); err != nil {
			return err
		}
		invHash := sha256.Sum256([]byte("invite-" + label + id.String()))
		if _, err = tx.CreateInvitation(ctx, store.Invitation{Email: "invitee-" + label + "@example.com",
			Role: store.RoleCustomerOperator, ExpiresAt: time.Now().Add(time.Hour)}, invHash[:]); err != nil {
			return err
		}
		if _, err = tx.AddMemory(ctx, store.Memory{AgentID: out.agent.ID, EndUserRef: "U" + label,
			ConversationID: out.conversation.ID, Turn: 1, Kind: store.MemoryMessage, Role: "user",
			Content: "hello from " + label, IdempotencyKey: "mem1"}); err != nil {
			return err
		}
		img := []byte("\x89PNG\r\n\x1a\n image of " + label)
		imgHash := sha256.Sum256(img)
		if _, err = tx.AddMedia(ctx, store.Media{ConversationID: out.conversation.ID, EndUserRef: "U" + label,
			Source: store.SourceSlack, SourceID: "F" + label, MimeType: "image/png", SHA256: imgHash[:], Data: img}); err != nil {
			return err
		}
		if err = tx.AppendAudit(ctx, store.AuditEvent{Actor: "test", Action: store.AuditLLMCall,
			AgentID: &out.agent.ID, ConversationID: &out.conversation.ID, WorkflowID: out.conversation.WorkflowID,
			IdempotencyKey: store.AuditKeyLLM(out.conversation.WorkflowID, 1, 0)}); err != nil {
			return err
		}
		out.handoff, err = tx.CreateHandoff(ctx, store.Handoff{ConversationID: out.conversation.ID, AgentID: out.agent.ID,
			WorkflowID: out.conversation.WorkflowID, IdempotencyKey: out.conversation.WorkflowID + ":escalation:1",
			Trigger: store.TriggerKeyword, Reason: "asked for " + label, Channel: store.ChannelSlack, UserRef: "U" + label})
		if err != nil {
			return err
		}
		if err = tx.SetHandoffSlack(ctx, out.handoff.ID, out.channel.ExternalID, "C0SUPPORT", "1700000000.000100"); err != nil {
			return err
		}
		if _, err = tx.PutSupportSettings(ctx, store.SupportSettings{SlackTeamID: out.channel.ExternalID, SlackChannelID: "C0SUPPORT",
			FirstResponse: time.Minute, HandBack: time.Hour}); err != nil {
			return err
		}
		if _, err = tx.RecordInbound(ctx, store.InboxEvent{Source: store.SourceSlack, EventID: "Ev-" + label,
			OrderingKey: "conversation/" + id.String(), Payload: []byte(`{"text":"hello from ` + label + `"}`)}); err != nil {
			return err
		}
		if _, _, err = tx.PutLLMKey(ctx, store.LLMKey{Provider: "openai", Secret: []byte("sealed-" + label), Last4: "abcd"}); err != nil {
			return err
		}
		if err = tx.UpdateOnboarding(ctx, id, store.OnboardingChange{AgentID: &out.agent.ID, Channel: store.ChannelPortal}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "test", Action: "seed"})
	}))
	return out
}

// Tenant B, holding tenant A's primary keys, can neither read, change, delete
// nor insert A's rows, in any tenant-scoped table, by raw SQL as the app role.
func TestTenantIsolationInEveryTable(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	require.NoError(t, err)
	defer owner.Close(ctx)

	a := seed(t, ctx, s, "a")
	b := seed(t, ctx, s, "b")
	tables := tenantTables(t, ctx, owner)
	scopeCol := func(table string) string {
		if table == "tenants" {
			return "id"
		}
		return "tenant_id"
	}

	for _, table := range tables {
		t.Run(table, func(t *testing.T) {
			col := scopeCol(table)
			// A seeded row exists, so the checks below are not vacuous. A new
			// table must get a row in seed().
			var rowJSON []byte
			require.NoError(t, s.WithPlatform(ctx, func(tx *store.Tx) error {
				n, err := tx.QueryInt(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s = $1`, table, col), a.tenant.ID)
				require.Positive(t, n, "seed() writes no %s row for tenant A: add one", table)
				if err != nil {
					return err
				}
				return tx.QueryRowScan(ctx, fmt.Sprintf(`SELECT row_to_json(x)::text FROM %s x WHERE %s = $1 LIMIT 1`, table, col),
					[]any{a.tenant.ID}, &rowJSON)
			}))

			require.NoError(t, s.WithTenant(ctx, b.tenant.ID, func(tx *store.Tx) error {
				n, err := tx.QueryInt(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s = $1`, table, col), a.tenant.ID)
				require.NoError(t, err)
				require.Zero(t, n, "B sees A's rows")

				n, err = tx.QueryInt(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s <> $1`, table, col), b.tenant.ID)
				require.NoError(t, err)
				require.Zero(t, n, "B sees rows of other tenants")
				return nil
			}))

			// Each write runs in its own transaction, since a refusal aborts it.
			write := func(sql string, args ...any) (int64, error) {
				var affected int64
				err := s.WithTenant(ctx, b.tenant.ID, func(tx *store.Tx) error {
					var err error
					affected, err = tx.Exec(ctx, sql, args...)
					return err
				})
				return affected, err
			}
			// Append-only records: the app role may not change or remove them at all.
			appendOnly := table == "audit_events" || table == "stripe_events"
			n, err := write(fmt.Sprintf(`UPDATE %s SET %s = %s WHERE %s = $1`, table, col, col, col), a.tenant.ID)
			if appendOnly {
				require.ErrorIs(t, err, store.ErrForbidden, "%s: the app role has no UPDATE", table)
			} else {
				require.NoError(t, err)
				require.Zero(t, n, "B updated A's rows")
			}
			n, err = write(fmt.Sprintf(`DELETE FROM %s WHERE %s = $1`, table, col), a.tenant.ID)
			if appendOnly {
				require.ErrorIs(t, err, store.ErrForbidden, "%s: the app role has no DELETE", table)
			} else {
				require.NoError(t, err)
				require.Zero(t, n, "B deleted A's rows")
			}
			// Moving one of B's own rows into A is refused too.
			_, err = write(fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s = $2`, table, col, col), a.tenant.ID, b.tenant.ID)
			require.Error(t, err, "B moved a row into A")

			// Inserting a copy of A's row (fresh primary key) is refused by WITH CHECK.
			_, err = write(fmt.Sprintf(`
				INSERT INTO %[1]s SELECT * FROM jsonb_populate_record(NULL::%[1]s,
					$1::jsonb || CASE WHEN $2 = 'id' OR jsonb_typeof($1::jsonb->'id') <> 'string' THEN '{}'::jsonb
					              ELSE jsonb_build_object('id', gen_random_uuid()) END)`, table),
				string(rowJSON), col)
			require.Error(t, err, "B inserted a row for A")
			require.NotErrorIs(t, err, store.ErrConflict, "refused by a unique key, not by RLS: make the copy unique")
		})
	}

	// Through the store's own methods, A's IDs are simply not found in B.
	var aMedia uuid.UUID
	require.NoError(t, s.WithTenant(ctx, b.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.GetAgent(ctx, a.agent.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = tx.GetConversation(ctx, a.conversation.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = tx.GetUser(ctx, a.user.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = tx.GetChannel(ctx, a.channel.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = tx.GetWhatsAppContact(ctx, "1065a", "US.1a")
		require.ErrorIs(t, err, store.ErrNotFound, "B reads A's WhatsApp user")
		_, found, err := tx.ApplyWhatsAppStatus(ctx, store.WhatsAppStatus{Key: "wf:1:0", WAMID: "wamid.x", Status: "read", Rank: 3})
		require.NoError(t, err)
		require.False(t, found, "a status in B's scope reaches only B's messages")
		_, err = tx.FindMedia(ctx, store.SourceSlack, "Fa")
		require.ErrorIs(t, err, store.ErrNotFound, "B finds A's image by its Slack file ID")
		return nil
	}))
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		m, err := tx.FindMedia(ctx, store.SourceSlack, "Fa")
		require.NoError(t, err)
		aMedia = m.ID
		return nil
	}))
	require.NoError(t, s.WithTenant(ctx, b.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.LoadMedia(ctx, []uuid.UUID{aMedia})
		require.ErrorIs(t, err, store.ErrNotFound, "B loads A's image bytes by its ID")
		listed, err := tx.ListConversationMedia(ctx, a.conversation.ID)
		require.NoError(t, err)
		require.Empty(t, listed, "B lists the images of A's conversation")
		_, err = tx.SetMediaDescription(ctx, aMedia, "defaced", "x/y")
		require.ErrorIs(t, err, store.ErrNotFound, "B describes A's image")
		n, err := tx.ForgetEndUserMedia(ctx, "Ua")
		require.NoError(t, err)
		require.Zero(t, n, "B forgets A's end user's images")
		// The same file ID arriving in B is B's own file, never A's row.
		img := []byte("GIF89a of b")
		sum := sha256.Sum256(img)
		mine, err := tx.AddMedia(ctx, store.Media{ConversationID: b.conversation.ID, EndUserRef: "Ub", Source: store.SourceSlack,
			SourceID: "Fa", MimeType: "image/gif", SHA256: sum[:], Data: img})
		require.NoError(t, err)
		require.NotEqual(t, aMedia, mine.ID)
		require.Equal(t, b.tenant.ID, mine.TenantID)
		msgs, err := tx.ListMessages(ctx, a.conversation.ID)
		require.NoError(t, err)
		require.Empty(t, msgs)
		agents, err := tx.ListAgents(ctx)
		require.NoError(t, err)
		require.Len(t, agents, 1)
		require.Equal(t, b.agent.ID, agents[0].ID)
		// Escalations: A's handoff is not found by its ID, and a thread in
		// the same channel and ts is B's own.
		_, err = tx.GetHandoff(ctx, a.handoff.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = tx.EndHandoff(ctx, a.handoff.ID, store.EscalationResolved, "b")
		require.ErrorIs(t, err, store.ErrNotFound, "B cannot end A's escalation")
		th, err := tx.HandoffByThread(ctx, "C0SUPPORT", "1700000000.000100")
		require.NoError(t, err, "B finds its own handoff thread")
		require.Equal(t, b.handoff.ID, th.ID)
		hs, err := tx.ListHandoffs(ctx, store.HandoffFilter{})
		require.NoError(t, err)
		require.Len(t, hs, 1)
		require.Equal(t, b.tenant.ID, hs[0].TenantID)
		_, err = tx.EndHandoff(ctx, hs[0].ID, store.EscalationResolved, "b")
		require.NoError(t, err)
		settings, err := tx.GetSupportSettings(ctx)
		require.NoError(t, err)
		require.Equal(t, b.channel.ExternalID, settings.SlackTeamID)
		events, err := tx.ListAuditEvents(ctx, store.AuditFilter{AgentID: &a.agent.ID})
		require.NoError(t, err)
		require.Empty(t, events, "B lists A's audit events by A's agent ID")
		events, err = tx.ListAuditEvents(ctx, store.AuditFilter{})
		require.NoError(t, err)
		require.Len(t, events, 2)
		for _, e := range events {
			require.Equal(t, b.tenant.ID, *e.TenantID)
		}
		keys, err := tx.ListLLMKeys(ctx)
		require.NoError(t, err)
		require.Len(t, keys, 1, "B lists only its own LLM key")
		require.Equal(t, b.tenant.ID, keys[0].TenantID)
		require.Equal(t, []byte("sealed-b"), keys[0].Secret)
		_, err = tx.DeleteLLMKey(ctx, "anthropic")
		require.ErrorIs(t, err, store.ErrNotFound)
		ob, err := tx.GetOnboarding(ctx, a.tenant.ID)
		require.NoError(t, err)
		require.Nil(t, ob.AgentID, "B does not see A's setup progress")
		return nil
	}))
	// B rotating "its" OpenAI key leaves A's untouched.
	require.NoError(t, s.WithTenant(ctx, b.tenant.ID, func(tx *store.Tx) error {
		k, created, err := tx.PutLLMKey(ctx, store.LLMKey{Provider: "openai", Secret: []byte("rotated-b"), Last4: "wxyz"})
		require.False(t, created)
		require.Equal(t, 2, k.Version)
		return err
	}))
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		keys, err := tx.ListLLMKeys(ctx)
		require.Len(t, keys, 1)
		require.Equal(t, []byte("sealed-a"), keys[0].Secret)
		require.Equal(t, 1, keys[0].Version)
		return err
	}))
	// B cannot point its channel at A's agent, even knowing its ID.
	err = s.WithTenant(ctx, b.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.UpsertChannelConnection(ctx, store.ChannelConnection{
			AgentID: a.agent.ID, Kind: store.ChannelSlack, ExternalID: "TNEW", Secret: []byte{1}})
		return err
	})
	require.ErrorIs(t, err, store.ErrReferenced)
	// Nor take over A's Slack workspace by connecting the same team ID.
	err = s.WithTenant(ctx, b.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.UpsertChannelConnection(ctx, store.ChannelConnection{
			AgentID: b.agent.ID, Kind: store.ChannelSlack, ExternalID: a.channel.ExternalID, Secret: []byte{9}})
		return err
	})
	require.ErrorIs(t, err, store.ErrConflict)
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		c, err := tx.GetChannel(ctx, a.channel.ID)
		require.NoError(t, err)
		require.Equal(t, a.agent.ID, c.AgentID, "A's connection unchanged")
		require.Equal(t, []byte{1, 2, 3}, c.Secret)
		return nil
	}))
}

// Outside WithTenant and WithPlatform, no tenant row is visible at all.
func TestNoScopeSeesNothing(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	require.NoError(t, err)
	defer owner.Close(ctx)
	seed(t, ctx, s, "a")

	for _, table := range tenantTables(t, ctx, owner) {
		require.NoError(t, s.WithNoScope(ctx, func(tx *store.Tx) error {
			n, err := tx.QueryInt(ctx, `SELECT count(*) FROM `+table)
			require.NoError(t, err)
			require.Zero(t, n, "%s: rows visible without a tenant", table)
			return nil
		}))
	}
	// The owner role is subject to the forced policies too.
	var n int
	require.NoError(t, owner.QueryRow(ctx, `SELECT count(*) FROM agents`).Scan(&n))
	require.Zero(t, n, "owner sees rows without a tenant: RLS not forced")
}

// A pooled connection never carries one tenant's setting to the next user.
func TestTenantSettingDoesNotLeakAcrossPooledConnections(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL+"&pool_max_conns=1")
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "a")

	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM agents`)
		require.Equal(t, int64(1), n)
		return err
	}))
	require.NoError(t, s.WithNoScope(ctx, func(tx *store.Tx) error {
		var setting *string
		require.NoError(t, tx.QueryRowScan(ctx, `SELECT current_setting('app.tenant_id', true)`, nil, &setting))
		require.True(t, setting == nil || *setting == "", "tenant setting survived the transaction: %v", setting)
		n, err := tx.QueryInt(ctx, `SELECT count(*) FROM agents`)
		require.Zero(t, n)
		return err
	}))
	// A failed transaction rolls back the setting as well.
	boom := errors.New("boom")
	require.ErrorIs(t, s.WithTenant(ctx, a.tenant.ID, func(*store.Tx) error { return boom }), boom)
	require.NoError(t, s.WithPlatform(ctx, func(tx *store.Tx) error {
		var setting *string
		require.NoError(t, tx.QueryRowScan(ctx, `SELECT current_setting('app.tenant_id', true)`, nil, &setting))
		require.True(t, setting == nil || *setting == "")
		return nil
	}))
}

// The audit trail is append-only, even for the owner role.
func TestAuditEventsRefuseUpdateAndDelete(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	a := seed(t, ctx, s, "a")

	err = s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE audit_events SET action = 'forged'`)
		return err
	})
	require.ErrorIs(t, err, store.ErrForbidden)
	err = s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM audit_events`)
		return err
	})
	require.ErrorIs(t, err, store.ErrForbidden)

	owner, err := pgx.Connect(ctx, db.OwnerURL)
	require.NoError(t, err)
	defer owner.Close(ctx)
	for _, sql := range []string{
		`UPDATE audit_events SET action = 'forged'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
	} {
		tx, err := owner.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `SELECT set_config('app.platform', 'on', true)`)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, sql)
		require.ErrorContains(t, err, "audit_events is append-only", sql)
		require.NoError(t, tx.Rollback(ctx))
	}
	require.NoError(t, s.WithTenant(ctx, a.tenant.ID, func(tx *store.Tx) error {
		events, err := tx.ListAudit(ctx, 10)
		require.Len(t, events, 2)
		require.Equal(t, "seed", events[0].Action)
		require.Equal(t, store.AuditLLMCall, events[1].Action)
		return err
	}))
}

// The dispatcher's scope opens the inbox of every tenant and nothing else:
// no other table shows a row, it cannot insert an event, and it cannot change
// what a recorded event is — only its delivery state.
func TestDispatcherScopeSeesOnlyTheInbox(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewDatabase(t)
	s, err := store.Open(ctx, db.AppURL)
	require.NoError(t, err)
	defer s.Close()
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	require.NoError(t, err)
	defer owner.Close(ctx)
	a := seed(t, ctx, s, "a")
	b := seed(t, ctx, s, "b")

	for _, table := range tenantTables(t, ctx, owner) {
		require.NoError(t, s.WithDispatcher(ctx, func(tx *store.Tx) error {
			n, err := tx.QueryInt(ctx, `SELECT count(*) FROM `+table)
			require.NoError(t, err)
			if table == "inbox" {
				require.EqualValues(t, 2, n, "the dispatcher sees both tenants' events")
			} else {
				require.Zero(t, n, "%s: rows visible in dispatcher scope", table)
			}
			return nil
		}))
	}
	err = s.WithDispatcher(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO inbox (tenant_id, source, event_id, ordering_key, payload)
			VALUES ($1, 'slack', 'Ev-forged', 'k', '{}')`, a.tenant.ID)
		return err
	})
	require.ErrorIs(t, err, store.ErrForbidden, "the dispatcher cannot record an event")
	for _, change := range []string{"tenant_id = '" + b.tenant.ID.String() + "'", "payload = '{\"text\":\"forged\"}'", "event_id = 'Ev-x'"} {
		err = s.WithDispatcher(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE inbox SET `+change+` WHERE tenant_id = $1`, a.tenant.ID)
			return err
		})
		require.ErrorIs(t, err, store.ErrForbidden, "the dispatcher changed an event: %s", change)
	}
	// The dispatcher's own operations work across tenants.
	claimed, err := s.ClaimInbox(ctx, "test", time.Minute, 10, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	require.NoError(t, s.SettleInbox(ctx, "test", []int64{claimed[0].ID, claimed[1].ID}, nil, nil))
	backlog, err := s.InboxBacklog(ctx)
	require.NoError(t, err)
	require.Zero(t, backlog.Pending)
}
