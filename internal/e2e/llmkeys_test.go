package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
	"github.com/konstruct/konstruct/internal/testkit/fakellm"
	"github.com/konstruct/konstruct/internal/testkit/platform"
)

// bearerKeys lists the key each chat request to s carried, and the text
// each asked about.
func bearerKeys(s *fakellm.Server) (keys, texts []string) {
	for _, r := range s.Requests() {
		keys = append(keys, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		texts = append(texts, r.LastUserText())
	}
	return keys, texts
}

// Two tenants bring their own OpenAI keys, each to its own provider (two
// fake servers that accept only their key); a third uses the platform's.
// Their conversations run at once in the real worker: each provider hears
// only its tenant's messages with its tenant's key, the platform's only the
// third tenant's, and the usage records say whose key paid. A rotated key
// is used from the next message.
func TestTenantKeysAreUsedForTheirTenantOnly(t *testing.T) {
	p := platform.Start(t, platform.Options{Env: map[string]string{
		"KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS": "127.0.0.1/32", // the tenants' fake providers listen on loopback
	}})
	const keyA, keyB = "sk-tenant-a-0000aaaa", "sk-tenant-b-1111bbbb"
	answer := func(who string) fakellm.Handler {
		return func(r fakellm.Request) fakellm.Reply { return fakellm.Text(who + " answers: " + r.LastUserText()) }
	}
	provA := fakellm.New(t, fakellm.WithAPIKey(keyA), fakellm.WithHandler(answer("provider A")))
	provB := fakellm.New(t, fakellm.WithAPIKey(keyB), fakellm.WithHandler(answer("provider B")))
	p.LLM.SetHandler(answer("the platform"))

	spec := platform.AgentSpec{Name: "Ada", Models: []string{"openai/gpt-4o-mini"}}
	tenA, tenB, tenC := p.NewTenant("A", spec), p.NewTenant("B", spec), p.NewTenant("C", spec)
	p.MustDo(http.MethodPut, "/api/v1/tenants/"+tenA.ID+"/llm-keys/openai", p.AdminToken,
		map[string]string{"api_key": keyA, "base_url": provA.OpenAIBaseURL()}, http.StatusCreated, nil)
	p.MustDo(http.MethodPut, "/api/v1/tenants/"+tenB.ID+"/llm-keys/openai", p.AdminToken,
		map[string]string{"api_key": keyB, "base_url": provB.OpenAIBaseURL()}, http.StatusCreated, nil)
	// A's key checked against B's provider is refused there, and not saved.
	status, body := p.Do(http.MethodPut, "/api/v1/tenants/"+tenA.ID+"/llm-keys/openai", p.AdminToken,
		map[string]string{"api_key": keyA, "base_url": provB.OpenAIBaseURL()})
	require.Equal(t, http.StatusUnprocessableEntity, status, string(body))

	// Each tenant's users mention its bot, all at once.
	tenants := map[string]platform.Tenant{"A": tenA, "B": tenB, "C": tenC}
	var wg sync.WaitGroup
	for name, tn := range tenants {
		for i := range 3 {
			wg.Go(func() {
				body, _ := tn.Mention("C0"+name, "U0"+name, "question "+string(rune('1'+i))+" from tenant "+name, platform.NewTS(), "")
				status, _ := p.PostEvent(body, 0)
				if status != http.StatusOK {
					t.Errorf("tenant %s: event answered %d", name, status)
				}
			})
		}
	}
	wg.Wait()
	for name := range tenants {
		msgs := p.Slack.WaitForMessages(t, "C0"+name, 3, replyTimeout)
		for _, m := range msgs {
			require.Contains(t, m.Text, "from tenant "+name)
		}
	}

	// Each provider heard its own tenant only, with its own tenant's key.
	for _, c := range []struct {
		prov    *fakellm.Server
		key     string
		tenant  string
		replyBy string
	}{{provA, keyA, "A", "provider A"}, {provB, keyB, "B", "provider B"}, {p.LLM, p.LLM.APIKey(), "C", "the platform"}} {
		keys, texts := bearerKeys(c.prov)
		require.Len(t, keys, 3, "%s heard tenant %s's three messages", c.replyBy, c.tenant)
		for i := range keys {
			require.Equal(t, c.key, keys[i], "%s received another key", c.replyBy)
			require.Contains(t, texts[i], "from tenant "+c.tenant, "%s heard another tenant's message", c.replyBy)
		}
		for _, m := range p.Slack.Messages("C0" + c.tenant) {
			require.True(t, strings.HasPrefix(m.Text, c.replyBy+" answers:"), m.Text)
		}
	}

	// The usage records say whose key paid.
	st, err := store.Open(context.Background(), p.DB.AppURL)
	require.NoError(t, err)
	defer st.Close()
	keySources := func(tenant string) map[string]int64 {
		out := map[string]int64{}
		require.NoError(t, st.WithTenant(context.Background(), uuid.MustParse(tenant), func(tx *store.Tx) error {
			for _, src := range []string{store.KeyPlatform, store.KeyTenant} {
				n, err := tx.QueryInt(context.Background(), `SELECT count(*) FROM llm_usage WHERE key_source = $1`, src)
				if err != nil {
					return err
				}
				out[src] = n
			}
			return nil
		}))
		return out
	}
	require.Equal(t, map[string]int64{store.KeyPlatform: 0, store.KeyTenant: 3}, keySources(tenA.ID))
	require.Equal(t, map[string]int64{store.KeyPlatform: 0, store.KeyTenant: 3}, keySources(tenB.ID))
	require.Equal(t, map[string]int64{store.KeyPlatform: 3, store.KeyTenant: 0}, keySources(tenC.ID))

	// A rotates its key to another provider: the worker uses it from the next message.
	const keyA2 = "sk-tenant-a-2222cccc"
	provA2 := fakellm.New(t, fakellm.WithAPIKey(keyA2), fakellm.WithHandler(answer("provider A2")))
	p.MustDo(http.MethodPut, "/api/v1/tenants/"+tenA.ID+"/llm-keys/openai", p.AdminToken,
		map[string]string{"api_key": keyA2, "base_url": provA2.OpenAIBaseURL()}, http.StatusOK, nil)
	body, _ = tenA.Mention("C0A", "U0A", "after the rotation", platform.NewTS(), "")
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs := p.Slack.WaitForMessages(t, "C0A", 4, replyTimeout)
	require.Equal(t, "provider A2 answers: after the rotation", msgs[3].Text)
	keys, _ := bearerKeys(provA2)
	require.Equal(t, []string{keyA2}, keys)
	require.Equal(t, 3, provA.Count(), "the old key is not used again")

	// A removes its key: its agent is answered with the platform's key again.
	p.MustDo(http.MethodDelete, "/api/v1/tenants/"+tenA.ID+"/llm-keys/openai", p.AdminToken, nil, http.StatusNoContent, nil)
	body, _ = tenA.Mention("C0A", "U0A", "after removing the key", platform.NewTS(), "")
	status, _ = p.PostEvent(body, 0)
	require.Equal(t, http.StatusOK, status)
	msgs = p.Slack.WaitForMessages(t, "C0A", 5, replyTimeout)
	require.Equal(t, "the platform answers: after removing the key", msgs[4].Text)
}
