package config

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7233", c.TemporalAddress)
	require.Equal(t, "default", c.TemporalNamespace)
	require.Equal(t, "127.0.0.1:8080", c.HTTPAddr)
	require.Equal(t, []string{"openai/gpt-4o-mini"}, c.DefaultModels)
	require.Equal(t, int64(1<<20), c.MaxBodyBytes)
	require.Len(t, c.EncryptionKey, 32)
	require.False(t, c.SecureCookies())
	require.Equal(t, 12*time.Hour, c.SessionIdleTimeout)
	require.Equal(t, 7*24*time.Hour, c.SessionLifetime)
	require.Equal(t, 72*time.Hour, c.InvitationTTL)
	require.Empty(t, c.SMTPURL)
}

func TestLoadPortalSettings(t *testing.T) {
	c, err := Load(env(map[string]string{
		"KONSTRUCT_ENCRYPTION_KEY":       testKey,
		"KONSTRUCT_SESSION_IDLE_TIMEOUT": "30m",
		"KONSTRUCT_SESSION_LIFETIME":     "24h",
		"KONSTRUCT_INVITATION_TTL":       "48h",
		"KONSTRUCT_SMTP_URL":             "smtps://user:pass@mail.example.com:465",
		"KONSTRUCT_MAIL_FROM":            "Acme <ops@acme.test>",
	}))
	require.NoError(t, err)
	require.Equal(t, 30*time.Minute, c.SessionIdleTimeout)
	require.Equal(t, 24*time.Hour, c.SessionLifetime)
	require.Equal(t, 48*time.Hour, c.InvitationTTL)
	require.Equal(t, "smtps://user:pass@mail.example.com:465", c.SMTPURL)

	_, err = Load(env(map[string]string{
		"KONSTRUCT_ENCRYPTION_KEY":       testKey,
		"KONSTRUCT_SESSION_IDLE_TIMEOUT": "48h",
		"KONSTRUCT_SESSION_LIFETIME":     "24h",
		"KONSTRUCT_INVITATION_TTL":       "soon",
		"KONSTRUCT_SMTP_URL":             "http://mail.example.com",
		"KONSTRUCT_MAIL_FROM":            "not an address",
	}))
	require.ErrorContains(t, err, "KONSTRUCT_SESSION_IDLE_TIMEOUT: at most KONSTRUCT_SESSION_LIFETIME (24h0m0s)")
	require.ErrorContains(t, err, "KONSTRUCT_INVITATION_TTL: a positive duration")
	require.ErrorContains(t, err, "KONSTRUCT_SMTP_URL: a URL with scheme smtp or smtps")
	require.ErrorContains(t, err, "KONSTRUCT_MAIL_FROM: an address")

	_, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_SMTP_URL": "smtp://h:2525?tls=maybe"}))
	require.ErrorContains(t, err, "KONSTRUCT_SMTP_URL: tls=required")
	_, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_SMTP_URL": "smtp://h:99999"}))
	require.ErrorContains(t, err, "KONSTRUCT_SMTP_URL: a port between 1 and 65535")
}

func TestLoadReadsValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"KONSTRUCT_ENCRYPTION_KEY":           testKey,
		"KONSTRUCT_PUBLIC_URL":               "https://konstruct.example.com/",
		"KONSTRUCT_DEFAULT_MODELS":           "anthropic/claude-sonnet-4-5, openai/gpt-4o-mini",
		"KONSTRUCT_LLM_ATTEMPT_TIMEOUT":      "15s",
		"KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL":    "Admin@Example.com",
		"KONSTRUCT_BOOTSTRAP_ADMIN_PASSWORD": "correct horse battery",
		"KONSTRUCT_LOG_LEVEL":                "debug",
	}))
	require.NoError(t, err)
	require.Equal(t, "https://konstruct.example.com", c.PublicURL)
	require.True(t, c.SecureCookies())
	require.Equal(t, []string{"anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"}, c.DefaultModels)
	require.Equal(t, 15*time.Second, c.LLMAttemptTimeout)
	require.Equal(t, "admin@example.com", c.BootstrapAdminEmail)
	require.Equal(t, []string{"openai/text-embedding-3-small"}, c.EmbeddingModels, "the default embedding model")
}

func TestEmbeddingModel(t *testing.T) {
	c, err := Load(env(map[string]string{
		"KONSTRUCT_ENCRYPTION_KEY":  testKey,
		"KONSTRUCT_EMBEDDING_MODEL": "openai/text-embedding-3-small, ollama/nomic-embed-text",
	}))
	require.NoError(t, err)
	require.Equal(t, []string{"openai/text-embedding-3-small", "ollama/nomic-embed-text"}, c.EmbeddingModels)

	_, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_EMBEDDING_MODEL": "anthropic/claude-haiku-4-5"}))
	require.ErrorContains(t, err, "KONSTRUCT_EMBEDDING_MODEL: embedding models of provider openai or ollama")
	_, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_EMBEDDING_MODEL": "text-embedding-3-small"}))
	require.ErrorContains(t, err, "KONSTRUCT_EMBEDDING_MODEL: comma-separated provider/model names")
}

// One message names every bad variable, so an operator fixes them all at once.
func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := Load(env(map[string]string{
		"KONSTRUCT_DATABASE_URL":          "mysql://nope",
		"KONSTRUCT_TEMPORAL_ADDRESS":      "no-port",
		"KONSTRUCT_MAX_BODY_BYTES":        "lots",
		"KONSTRUCT_DEFAULT_MODELS":        "gpt-4o",
		"KONSTRUCT_LLM_ATTEMPT_TIMEOUT":   "-3s",
		"KONSTRUCT_SLACK_APP_TOKEN":       "xoxb-wrong-kind",
		"KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL": "not an email",
		"KONSTRUCT_LOG_FORMAT":            "xml",
	}))
	var cerr *Error
	require.True(t, errors.As(err, &cerr))
	msg := err.Error()
	for _, name := range []string{
		"KONSTRUCT_ENCRYPTION_KEY: required",
		"KONSTRUCT_DATABASE_URL: a URL with scheme postgres",
		"KONSTRUCT_TEMPORAL_ADDRESS: host:port",
		"KONSTRUCT_MAX_BODY_BYTES: an integer",
		"KONSTRUCT_DEFAULT_MODELS:",
		"KONSTRUCT_LLM_ATTEMPT_TIMEOUT: a positive duration",
		"KONSTRUCT_SLACK_APP_TOKEN: a token starting with \"xapp-\"",
		"KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL: a plain email address",
		"KONSTRUCT_LOG_FORMAT: one of json, text",
	} {
		require.Contains(t, msg, name)
	}
	require.Len(t, cerr.Problems, 9)
}

func TestEncryptionKeyMustBe32Bytes(t *testing.T) {
	_, err := Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString([]byte("short"))}))
	require.ErrorContains(t, err, "KONSTRUCT_ENCRYPTION_KEY: 32 bytes, base64 (decodes to 5 bytes)")

	_, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_OLD_ENCRYPTION_KEYS": testKey + ",%%%"}))
	require.ErrorContains(t, err, "KONSTRUCT_OLD_ENCRYPTION_KEYS: comma-separated 32-byte base64 keys (key 2: not base64)")
}

func TestBootstrapPasswordRules(t *testing.T) {
	_, err := Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL": "a@b.co"}))
	require.ErrorContains(t, err, "KONSTRUCT_BOOTSTRAP_ADMIN_PASSWORD: required when")
	_, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL": "a@b.co", "KONSTRUCT_BOOTSTRAP_ADMIN_PASSWORD": "short"}))
	require.ErrorContains(t, err, "at least 12 characters")
}

// FuzzLoad throws arbitrary values at every variable: Load must never panic,
// and it either succeeds or names at least one variable in its error.
func FuzzLoad(f *testing.F) {
	f.Add("postgres://u@h:5432/db", "127.0.0.1:7233", "openai/gpt-4o-mini", "30s", "1024", testKey)
	f.Add("", ":", ",,,", "0s", "-1", "====")
	f.Add("postgres://[::1", "host:99999", "ollama/", "1e9h", "99999999999999999999", "x")
	f.Fuzz(func(t *testing.T, dbURL, addr, models, dur, size, key string) {
		c, err := Load(env(map[string]string{
			"KONSTRUCT_DATABASE_URL":        dbURL,
			"KONSTRUCT_TEMPORAL_ADDRESS":    addr,
			"KONSTRUCT_DEFAULT_MODELS":      models,
			"KONSTRUCT_LLM_ATTEMPT_TIMEOUT": dur,
			"KONSTRUCT_MAX_BODY_BYTES":      size,
			"KONSTRUCT_ENCRYPTION_KEY":      key,
		}))
		if err != nil {
			require.True(t, strings.Contains(err.Error(), "KONSTRUCT_"), err.Error())
			return
		}
		require.Len(t, c.EncryptionKey, KeyLen)
		require.NotEmpty(t, c.DefaultModels)
		require.Positive(t, c.LLMAttemptTimeout)
	})
}

func TestWhatsAppSettings(t *testing.T) {
	c, err := Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey}))
	require.NoError(t, err)
	require.Equal(t, "https://graph.facebook.com/", c.WhatsAppAPIURL, "URLs are {API_URL}/{version}/...: the default names no version")
	require.Equal(t, "v25.0", c.WhatsAppAPIVersion)

	c, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_WHATSAPP_API_VERSION": "v26.1",
		"KONSTRUCT_WHATSAPP_API_URL": "http://127.0.0.1:9999", "KONSTRUCT_WHATSAPP_APP_SECRET": "s3cret",
		"KONSTRUCT_WHATSAPP_VERIFY_TOKEN": "verify-me"}))
	require.NoError(t, err)
	require.Equal(t, "v26.1", c.WhatsAppAPIVersion)
	require.Equal(t, "http://127.0.0.1:9999", c.WhatsAppAPIURL)
	require.Equal(t, "s3cret", c.WhatsAppAppSecret)
	require.Equal(t, "verify-me", c.WhatsAppVerifyToken)

	for _, bad := range []string{"25.0", "v25", "v25.0/", "latest"} {
		_, err := Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_WHATSAPP_API_VERSION": bad}))
		require.ErrorContains(t, err, "KONSTRUCT_WHATSAPP_API_VERSION: a Graph API version such as v25.0", bad)
	}
}
