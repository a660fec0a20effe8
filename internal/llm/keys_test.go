package llm

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit/fakellm"
)

// keysOf returns the bearer keys a fake received on its chat endpoints.
func keysOf(s *fakellm.Server) []string {
	var out []string
	for _, r := range s.Requests() {
		k := r.Header.Get("X-Api-Key")
		if k == "" {
			k = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		out = append(out, k)
	}
	return out
}

// A tenant's own key is used before the platform's, by that tenant only:
// two tenants calling one pool at once each reach their own server with
// their own key, and the platform's server hears nothing.
func TestPoolUsesEachTenantsOwnKey(t *testing.T) {
	platform := fakellm.New(t, fakellm.WithAPIKey("platform-key"))
	serverA := fakellm.New(t, fakellm.WithAPIKey("key-of-a"), fakellm.WithHandler(func(r fakellm.Request) fakellm.Reply {
		return fakellm.Text("A heard: " + r.LastUserText())
	}))
	serverB := fakellm.New(t, fakellm.WithAPIKey("key-of-b"), fakellm.WithHandler(func(r fakellm.Request) fakellm.Reply {
		return fakellm.Text("B heard: " + r.LastUserText())
	}))
	pool := NewPool([]Provider{
		NewOpenAI(OpenAIConfig{APIKey: "platform-key", BaseURL: platform.OpenAIBaseURL()}),
		NewAnthropic(AnthropicConfig{APIKey: "platform-key", BaseURL: platform.AnthropicBaseURL()}),
	}, PoolConfig{})
	keysA := Keys{TenantID: "tenant-a", Own: map[string]Credentials{
		ProviderOpenAI: {Provider: ProviderOpenAI, APIKey: "key-of-a", BaseURL: serverA.OpenAIBaseURL(), Version: 1}}}
	keysB := Keys{TenantID: "tenant-b", Own: map[string]Credentials{
		ProviderAnthropic: {Provider: ProviderAnthropic, APIKey: "key-of-b", BaseURL: serverB.AnthropicBaseURL(), Version: 1}}}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			keys, chain, want := keysA, []string{"openai/gpt-4o-mini"}, "A heard: from a"
			if i%2 == 1 {
				keys, chain, want = keysB, []string{"anthropic/claude-haiku-4-5"}, "B heard: from b"
			}
			resp, err := pool.CompleteWith(context.Background(), keys, chain, userSays("from "+strings.TrimPrefix(keys.TenantID, "tenant-")))
			if !assertNoError(t, err) {
				return
			}
			if resp.Content != want || resp.KeySource != KeyTenant || resp.Attempts[0].KeySource != KeyTenant {
				t.Errorf("tenant %s got %q from %s", keys.TenantID, resp.Content, resp.KeySource)
			}
		})
	}
	wg.Wait()
	require.Zero(t, platform.Count(), "the platform's keys were not used")
	for _, k := range keysOf(serverA) {
		require.Equal(t, "key-of-a", k)
	}
	for _, r := range serverA.Requests() {
		require.Equal(t, "from a", r.LastUserText(), "A's server only hears A")
	}
	for _, k := range keysOf(serverB) {
		require.Equal(t, "key-of-b", k)
	}
	require.Equal(t, 10, serverA.Count())
	require.Equal(t, 10, serverB.Count())

	// A tenant without its own key for the model's provider uses the
	// platform's, and says so.
	resp, err := pool.CompleteWith(context.Background(), keysA, []string{"anthropic/claude-haiku-4-5"}, userSays("hi"))
	require.NoError(t, err)
	require.Equal(t, KeyPlatform, resp.KeySource)
	require.Equal(t, []string{"platform-key"}, keysOf(platform))
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("complete: %v", err)
		return false
	}
	return true
}

// Where the plan forbids the platform's keys, a tenant without its own key
// gets no model, with a message saying how to add one; with its own key it
// is answered. A failing own key falls back to the platform's key only when
// the plan allows it.
func TestPoolPlatformKeysOnlyWhereThePlanAllows(t *testing.T) {
	platform := fakellm.New(t, fakellm.WithAPIKey("platform-key"))
	own := fakellm.New(t, fakellm.WithAPIKey("own-key"))
	pool := NewPool([]Provider{NewOpenAI(OpenAIConfig{APIKey: "platform-key", BaseURL: platform.OpenAIBaseURL()})}, PoolConfig{})
	chain := []string{"openai/gpt-4o-mini"}

	_, err := pool.CompleteWith(context.Background(), Keys{TenantID: "t1", NoPlatform: true}, chain, userSays("hi"))
	require.Error(t, err)
	require.Equal(t, KindNotConfigured, KindOf(err))
	require.Contains(t, err.Error(), "add your own OpenAI key in the portal (Settings)")
	require.NotContains(t, err.Error(), "KONSTRUCT_", "a tenant without platform keys is not told to set the platform's variables")
	require.Zero(t, platform.Count())

	withOwn := Keys{TenantID: "t1", NoPlatform: true, Own: map[string]Credentials{
		ProviderOpenAI: {Provider: ProviderOpenAI, APIKey: "own-key", BaseURL: own.OpenAIBaseURL(), Version: 1}}}
	resp, err := pool.CompleteWith(context.Background(), withOwn, chain, userSays("hi"))
	require.NoError(t, err)
	require.Equal(t, KeyTenant, resp.KeySource)

	// The tenant's key is revoked at the provider: with the plan's consent
	// the platform's key answers; without it, nothing does.
	revoked := Keys{TenantID: "t2", Own: map[string]Credentials{
		ProviderOpenAI: {Provider: ProviderOpenAI, APIKey: "revoked", BaseURL: own.OpenAIBaseURL(), Version: 1}}}
	resp, err = pool.CompleteWith(context.Background(), revoked, chain, userSays("hi"))
	require.NoError(t, err)
	require.Equal(t, KeyPlatform, resp.KeySource)
	require.Len(t, resp.Attempts, 2)
	require.Equal(t, OutcomeAuth, resp.Attempts[0].Outcome)
	require.Equal(t, KeyTenant, resp.Attempts[0].KeySource)
	require.Equal(t, OutcomeOK, resp.Attempts[1].Outcome)

	revoked.NoPlatform = true
	_, err = pool.CompleteWith(context.Background(), revoked, chain, userSays("hi"))
	require.Equal(t, KindAuth, KindOf(err))
	require.Equal(t, 1, platform.Count(), "only the allowed fallback reached the platform")

	// A key that cannot be opened is skipped with its reason.
	broken := Keys{TenantID: "t3", NoPlatform: true, Own: map[string]Credentials{
		ProviderOpenAI: {Provider: ProviderOpenAI, Unusable: "the stored OpenAI key cannot be decrypted: enter it again in Settings"}}}
	_, err = pool.CompleteWith(context.Background(), broken, chain, userSays("hi"))
	require.Equal(t, KindNotConfigured, KindOf(err))
	require.Contains(t, err.(*Error).Attempts[0].Err, "cannot be decrypted")

	// Own keys without a tenant cannot be cached safely: refused.
	_, err = pool.CompleteWith(context.Background(), Keys{Own: withOwn.Own}, chain, userSays("hi"))
	require.Equal(t, KindRequest, KindOf(err))
}

// A rotated key is used from the next call: the cached client is keyed by
// the key's version.
func TestPoolRotatedTenantKeyIsUsedAtOnce(t *testing.T) {
	own := fakellm.New(t, fakellm.WithAPIKey(""))
	pool := NewPool(nil, PoolConfig{})
	keys := func(key string, version int) Keys {
		return Keys{TenantID: "t1", NoPlatform: true, Own: map[string]Credentials{
			ProviderOpenAI: {Provider: ProviderOpenAI, APIKey: key, BaseURL: own.OpenAIBaseURL(), Version: version}}}
	}
	for _, k := range []Keys{keys("first", 1), keys("first", 1), keys("second", 2), keys("third", 3)} {
		_, err := pool.CompleteWith(context.Background(), k, []string{"openai/gpt-4o-mini"}, userSays("hi"))
		require.NoError(t, err)
	}
	require.Equal(t, []string{"first", "first", "second", "third"}, keysOf(own))
	require.Len(t, pool.tenants, 1, "one client per tenant and provider, the latest version")
}

// A tenant's own endpoint failing opens that tenant's circuit only: the
// platform's circuit for the same provider, and another tenant's, stay
// closed and keep answering.
func TestPoolTenantCircuitIsItsOwn(t *testing.T) {
	platform := fakellm.New(t)
	healthy := fakellm.New(t, fakellm.WithAPIKey(""))
	pool := NewPool([]Provider{NewOpenAI(OpenAIConfig{APIKey: platform.APIKey(), BaseURL: platform.OpenAIBaseURL()})},
		PoolConfig{BreakerFailures: 2, BreakerCooldown: time.Minute})
	chain := []string{"openai/gpt-4o-mini"}
	dead := Keys{TenantID: "dead", NoPlatform: true, Own: map[string]Credentials{
		ProviderOpenAI: {Provider: ProviderOpenAI, APIKey: "k", BaseURL: fakellm.RefusedURL(t) + "/v1", Version: 1}}}
	other := Keys{TenantID: "other", NoPlatform: true, Own: map[string]Credentials{
		ProviderOpenAI: {Provider: ProviderOpenAI, APIKey: "k", BaseURL: healthy.OpenAIBaseURL(), Version: 1}}}

	var last *Error
	for range 4 {
		_, err := pool.CompleteWith(context.Background(), dead, chain, userSays("hi"))
		require.Equal(t, KindUnavailable, KindOf(err))
		last = err.(*Error)
	}
	require.Equal(t, OutcomeCircuitOpen, last.Attempts[0].Outcome, "the dead endpoint's circuit opened")

	resp, err := pool.Complete(context.Background(), chain, userSays("hi"))
	require.NoError(t, err, "the platform's circuit is closed")
	require.Equal(t, OutcomeOK, resp.Attempts[0].Outcome)
	resp, err = pool.CompleteWith(context.Background(), other, chain, userSays("hi"))
	require.NoError(t, err, "another tenant's circuit is closed")
	require.Equal(t, KeyTenant, resp.KeySource)
}

// Checking credentials lists the provider's models: a right key gets the
// list, a wrong one is an auth error, a URL that is no such API a request
// error, and a server that is not there is unavailable.
func TestListModelsWith(t *testing.T) {
	s := fakellm.New(t, fakellm.WithAPIKey("right"))
	s.SetModels(fakellm.OpenAI, "gpt-4o-mini", "gpt-4.1")
	ctx := context.Background()
	hc := &http.Client{Timeout: 5 * time.Second}

	models, err := ListModelsWith(ctx, Credentials{Provider: ProviderOpenAI, APIKey: "right", BaseURL: s.OpenAIBaseURL()}, hc)
	require.NoError(t, err)
	require.Equal(t, []string{"gpt-4o-mini", "gpt-4.1"}, models)
	models, err = ListModelsWith(ctx, Credentials{Provider: ProviderAnthropic, APIKey: "right", BaseURL: s.AnthropicBaseURL()}, hc)
	require.NoError(t, err)
	require.Equal(t, []string{"claude-sonnet-4-5", "claude-haiku-4-5"}, models)
	models, err = ListModelsWith(ctx, Credentials{Provider: ProviderOllama, BaseURL: s.OllamaURL()}, hc)
	require.NoError(t, err)
	require.Contains(t, models, "llama3.2:latest")
	lists := s.ModelListRequests()
	require.Len(t, lists, 3)
	require.Equal(t, "/v1/models", lists[0].Path)
	require.Equal(t, "Bearer right", lists[0].Header.Get("Authorization"))
	require.NotEmpty(t, lists[1].Header.Get("Anthropic-Version"))
	require.Equal(t, "/api/tags", lists[2].Path)

	_, err = ListModelsWith(ctx, Credentials{Provider: ProviderOpenAI, APIKey: "wrong", BaseURL: s.OpenAIBaseURL()}, hc)
	require.Equal(t, KindAuth, KindOf(err))
	require.Contains(t, err.Error(), "Incorrect API key")
	_, err = ListModelsWith(ctx, Credentials{Provider: ProviderAnthropic, APIKey: "wrong", BaseURL: s.AnthropicBaseURL()}, hc)
	require.Equal(t, KindAuth, KindOf(err))

	_, err = ListModelsWith(ctx, Credentials{Provider: ProviderOllama, BaseURL: s.URL + "/nothing-here"}, hc)
	require.Equal(t, KindRequest, KindOf(err))
	_, err = ListModelsWith(ctx, Credentials{Provider: ProviderOpenAI, APIKey: "k", BaseURL: fakellm.RefusedURL(t) + "/v1"}, hc)
	require.Equal(t, KindUnavailable, KindOf(err))
}
