// Package config turns KONSTRUCT_* environment variables into one validated Config.
//
// Every variable is read in one pass and every problem is collected, so a
// misconfigured process stops once with a message naming each bad variable and
// what it expects, instead of failing on the first and hiding the rest.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/konstruct/konstruct/internal/llm"
)

// Prefix is put in front of every variable name.
const Prefix = "KONSTRUCT_"

// Config is the whole process configuration. Field comments name the variable.
type Config struct {
	DatabaseURL        string // DATABASE_URL: the application role (owns nothing, RLS applies)
	MigrateDatabaseURL string // MIGRATE_DATABASE_URL: the owner role that runs migrations
	RedisURL           string // REDIS_URL

	TemporalAddress   string // TEMPORAL_ADDRESS
	TemporalNamespace string // TEMPORAL_NAMESPACE
	TemporalTaskQueue string // TEMPORAL_TASK_QUEUE
	TemporalUIURL     string // TEMPORAL_UI_URL: links from the portal to workflows

	HTTPAddr     string // HTTP_ADDR
	WorkerAddr   string // WORKER_ADDR: the worker's own /metrics and /healthz ("" disables)
	PublicURL    string // PUBLIC_URL: how browsers and Slack reach this server
	MaxBodyBytes int64  // MAX_BODY_BYTES
	// MaxUploadBytes bounds a knowledge-base document upload (MAX_UPLOAD_BYTES);
	// the database refuses documents over 16 MiB.
	MaxUploadBytes int64

	EncryptionKey     []byte   // ENCRYPTION_KEY: 32 bytes, base64
	OldEncryptionKeys [][]byte // OLD_ENCRYPTION_KEYS: comma-separated, still accepted for decryption

	BootstrapAdminEmail    string // BOOTSTRAP_ADMIN_EMAIL
	BootstrapAdminPassword string // BOOTSTRAP_ADMIN_PASSWORD

	SlackSigningSecret string // SLACK_SIGNING_SECRET
	SlackClientID      string // SLACK_CLIENT_ID
	SlackClientSecret  string // SLACK_CLIENT_SECRET
	SlackAppToken      string // SLACK_APP_TOKEN: xapp- token for Socket Mode
	SlackAPIURL        string // SLACK_API_URL

	WhatsAppAppSecret   string // WHATSAPP_APP_SECRET: verifies X-Hub-Signature-256
	WhatsAppVerifyToken string // WHATSAPP_VERIFY_TOKEN: Meta's webhook handshake
	WhatsAppAPIURL      string // WHATSAPP_API_URL: Graph API base; URLs are {API_URL}/{API_VERSION}/...
	WhatsAppAPIVersion  string // WHATSAPP_API_VERSION, e.g. v25.0

	OpenAIAPIKey     string   // OPENAI_API_KEY
	OpenAIBaseURL    string   // OPENAI_BASE_URL
	AnthropicAPIKey  string   // ANTHROPIC_API_KEY
	AnthropicBaseURL string   // ANTHROPIC_BASE_URL
	OllamaURL        string   // OLLAMA_URL
	DefaultModels    []string // DEFAULT_MODELS: comma-separated provider/model chain
	EmbeddingModels  []string // EMBEDDING_MODEL: embedding model, or a comma-separated fallback chain

	LLMAttemptTimeout      time.Duration // LLM_ATTEMPT_TIMEOUT: one model attempt
	LLMUnavailableNotice   time.Duration // LLM_UNAVAILABLE_NOTICE: tell the user after this long without a provider
	LLMBreakerFailures     int           // LLM_BREAKER_FAILURES: consecutive failures that open a provider's circuit
	LLMBreakerCooldown     time.Duration // LLM_BREAKER_COOLDOWN: how long an open circuit skips its provider
	ConversationIdle       time.Duration // CONVERSATION_IDLE_TIMEOUT: an idle conversation workflow ends
	InboxLease             time.Duration // INBOX_LEASE: how long a dispatcher's claim on inbox events lasts (a dead process's claim is taken over after it)
	InboxDegradedAfter     time.Duration // INBOX_DEGRADED_AFTER: /readyz says degraded while the oldest inbox event is older
	TenantRatePerMinute    int           // RATE_LIMIT_TENANT_PER_MINUTE: default for tenants without their own
	ChannelRatePerMinute   int           // RATE_LIMIT_CHANNEL_PER_MINUTE: default per Slack channel / WhatsApp number
	LoginAttemptsPerMinute int           // RATE_LIMIT_LOGIN_PER_MINUTE: per email and per client IP

	StripeSecretKey     string // STRIPE_SECRET_KEY
	StripeWebhookSecret string // STRIPE_WEBHOOK_SECRET
	StripeAPIURL        string // STRIPE_API_URL
	// StripePrices maps each paid plan (the plans table) to its Stripe price
	// ID: STRIPE_PRICE_<PLAN>, e.g. KONSTRUCT_STRIPE_PRICE_STARTER=price_...
	StripePrices map[string]string
	BillingGrace time.Duration // BILLING_GRACE_PERIOD: a past_due subscription keeps its plan this long

	SMTPURL  string // SMTP_URL: smtp:// or smtps://user:pass@host:port; empty logs mail instead
	MailFrom string // MAIL_FROM

	SessionIdleTimeout time.Duration // SESSION_IDLE_TIMEOUT: a portal session unused this long ends
	SessionLifetime    time.Duration // SESSION_LIFETIME: a portal session ends this long after sign-in, used or not
	InvitationTTL      time.Duration // INVITATION_TTL: how long an invitation link works

	LogLevel  slog.Level // LOG_LEVEL
	LogFormat string     // LOG_FORMAT: json or text

	HTTPToolAllowCIDRs       []netip.Prefix // HTTP_TOOL_ALLOW_CIDRS: internal networks HTTP tools may reach (default none)
	HTTPToolMaxResponseBytes int64          // HTTP_TOOL_MAX_RESPONSE_BYTES: an HTTP tool's response is cut here

	MediaMaxBytes int64 // MEDIA_MAX_BYTES: the largest image an end user may send (Slack or WhatsApp)
}

// Error lists every variable that is missing or malformed.
type Error struct {
	Problems []string // "KONSTRUCT_X: what it expects"
}

func (e *Error) Error() string {
	return "config: " + strconv.Itoa(len(e.Problems)) + " invalid setting(s):\n  " + strings.Join(e.Problems, "\n  ")
}

// FromEnv reads the process environment.
func FromEnv() (Config, error) { return Load(os.LookupEnv) }

// Load reads variables through lookup (os.LookupEnv in production, a map in tests).
func Load(lookup func(string) (string, bool)) (Config, error) {
	l := &loader{lookup: lookup}
	c := Config{
		DatabaseURL:        l.url("DATABASE_URL", "postgres://konstruct_app:konstruct@127.0.0.1:5432/konstruct?sslmode=disable", "postgres", "postgresql"),
		MigrateDatabaseURL: l.url("MIGRATE_DATABASE_URL", "postgres://konstruct_owner:konstruct@127.0.0.1:5432/konstruct?sslmode=disable", "postgres", "postgresql"),
		RedisURL:           l.url("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss"),

		TemporalAddress:   l.hostPort("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace: l.str("TEMPORAL_NAMESPACE", "default"),
		TemporalTaskQueue: l.str("TEMPORAL_TASK_QUEUE", "konstruct"),
		TemporalUIURL:     l.url("TEMPORAL_UI_URL", "http://127.0.0.1:8233", "http", "https"),

		HTTPAddr:       l.hostPort("HTTP_ADDR", "127.0.0.1:8080"),
		WorkerAddr:     l.optionalHostPort("WORKER_ADDR", "127.0.0.1:9091"),
		PublicURL:      strings.TrimRight(l.url("PUBLIC_URL", "http://127.0.0.1:8080", "http", "https"), "/"),
		MaxBodyBytes:   int64(l.intRange("MAX_BODY_BYTES", 1<<20, 1024, 64<<20)),
		MaxUploadBytes: int64(l.intRange("MAX_UPLOAD_BYTES", 8<<20, 1024, 16<<20)),

		EncryptionKey:     l.key("ENCRYPTION_KEY"),
		OldEncryptionKeys: l.keys("OLD_ENCRYPTION_KEYS"),

		BootstrapAdminEmail:    l.email("BOOTSTRAP_ADMIN_EMAIL"),
		BootstrapAdminPassword: l.str("BOOTSTRAP_ADMIN_PASSWORD", ""),

		SlackSigningSecret: l.str("SLACK_SIGNING_SECRET", ""),
		SlackClientID:      l.str("SLACK_CLIENT_ID", ""),
		SlackClientSecret:  l.str("SLACK_CLIENT_SECRET", ""),
		SlackAppToken:      l.prefixed("SLACK_APP_TOKEN", "xapp-"),
		SlackAPIURL:        l.url("SLACK_API_URL", "https://slack.com/api/", "http", "https"),

		WhatsAppAppSecret:   l.str("WHATSAPP_APP_SECRET", ""),
		WhatsAppVerifyToken: l.str("WHATSAPP_VERIFY_TOKEN", ""),
		WhatsAppAPIURL:      l.url("WHATSAPP_API_URL", "https://graph.facebook.com/", "http", "https"),
		WhatsAppAPIVersion:  l.graphVersion("WHATSAPP_API_VERSION", "v25.0"),

		OpenAIAPIKey:     l.str("OPENAI_API_KEY", ""),
		OpenAIBaseURL:    l.url("OPENAI_BASE_URL", "", "http", "https"),
		AnthropicAPIKey:  l.str("ANTHROPIC_API_KEY", ""),
		AnthropicBaseURL: l.url("ANTHROPIC_BASE_URL", "", "http", "https"),
		OllamaURL:        l.url("OLLAMA_URL", "", "http", "https"),
		DefaultModels:    l.models("DEFAULT_MODELS", "openai/gpt-4o-mini"),
		EmbeddingModels:  l.embeddingModels("EMBEDDING_MODEL", "openai/text-embedding-3-small"),

		LLMAttemptTimeout:      l.duration("LLM_ATTEMPT_TIMEOUT", 60*time.Second),
		LLMUnavailableNotice:   l.duration("LLM_UNAVAILABLE_NOTICE", 2*time.Minute),
		LLMBreakerFailures:     l.intRange("LLM_BREAKER_FAILURES", 5, 1, 1000),
		LLMBreakerCooldown:     l.duration("LLM_BREAKER_COOLDOWN", 30*time.Second),
		ConversationIdle:       l.duration("CONVERSATION_IDLE_TIMEOUT", 24*time.Hour),
		InboxLease:             l.duration("INBOX_LEASE", 30*time.Second),
		InboxDegradedAfter:     l.duration("INBOX_DEGRADED_AFTER", time.Minute),
		TenantRatePerMinute:    l.intRange("RATE_LIMIT_TENANT_PER_MINUTE", 600, 1, 1_000_000),
		ChannelRatePerMinute:   l.intRange("RATE_LIMIT_CHANNEL_PER_MINUTE", 60, 1, 1_000_000),
		LoginAttemptsPerMinute: l.intRange("RATE_LIMIT_LOGIN_PER_MINUTE", 10, 1, 10_000),

		StripeSecretKey:     l.str("STRIPE_SECRET_KEY", ""),
		StripeWebhookSecret: l.str("STRIPE_WEBHOOK_SECRET", ""),
		StripeAPIURL:        l.url("STRIPE_API_URL", "", "http", "https"),
		StripePrices:        l.stripePrices(),
		BillingGrace:        l.duration("BILLING_GRACE_PERIOD", 7*24*time.Hour),

		SMTPURL:  l.url("SMTP_URL", "", "smtp", "smtps"),
		MailFrom: l.str("MAIL_FROM", "Konstruct <no-reply@konstruct.local>"),

		SessionIdleTimeout: l.duration("SESSION_IDLE_TIMEOUT", 12*time.Hour),
		SessionLifetime:    l.duration("SESSION_LIFETIME", 7*24*time.Hour),
		InvitationTTL:      l.duration("INVITATION_TTL", 72*time.Hour),

		LogLevel:  l.level("LOG_LEVEL", slog.LevelInfo),
		LogFormat: l.oneOf("LOG_FORMAT", "json", "json", "text"),

		HTTPToolAllowCIDRs:       l.cidrs("HTTP_TOOL_ALLOW_CIDRS"),
		HTTPToolMaxResponseBytes: int64(l.intRange("HTTP_TOOL_MAX_RESPONSE_BYTES", 64<<10, 1024, 16<<20)),

		MediaMaxBytes: int64(l.intRange("MEDIA_MAX_BYTES", 5<<20, 1024, 20<<20)),
	}
	if c.BootstrapAdminEmail != "" && c.BootstrapAdminPassword == "" {
		l.fail("BOOTSTRAP_ADMIN_PASSWORD", "required when KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL is set")
	}
	if c.BootstrapAdminPassword != "" && len(c.BootstrapAdminPassword) < 12 {
		l.fail("BOOTSTRAP_ADMIN_PASSWORD", "at least 12 characters")
	}
	if (c.SlackClientID == "") != (c.SlackClientSecret == "") {
		l.fail("SLACK_CLIENT_SECRET", "KONSTRUCT_SLACK_CLIENT_ID and KONSTRUCT_SLACK_CLIENT_SECRET are set together or not at all")
	}
	if c.StripeSecretKey != "" && c.StripeWebhookSecret == "" {
		l.fail("STRIPE_WEBHOOK_SECRET", "required with KONSTRUCT_STRIPE_SECRET_KEY: without the webhook, subscriptions never reach Konstruct")
	}
	if c.SessionIdleTimeout > c.SessionLifetime {
		l.fail("SESSION_IDLE_TIMEOUT", "at most KONSTRUCT_SESSION_LIFETIME ("+c.SessionLifetime.String()+")")
	}
	if c.SMTPURL != "" {
		u, _ := url.Parse(c.SMTPURL)
		switch u.Query().Get("tls") {
		case "", "required", "mandatory", "opportunistic", "none", "off":
		default:
			l.fail("SMTP_URL", "tls=required, tls=opportunistic (the default) or tls=none")
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				l.fail("SMTP_URL", "a port between 1 and 65535")
			}
		}
	}
	if c.MailFrom != "" {
		if _, err := mail.ParseAddress(c.MailFrom); err != nil {
			l.fail("MAIL_FROM", "an address such as Konstruct <no-reply@example.com>")
		}
	}
	if len(l.problems) > 0 {
		sort.Strings(l.problems)
		return Config{}, &Error{Problems: l.problems}
	}
	return c, nil
}

// SecureCookies reports whether browsers reach the server over HTTPS.
func (c Config) SecureCookies() bool { return strings.HasPrefix(c.PublicURL, "https://") }

type loader struct {
	lookup   func(string) (string, bool)
	problems []string
}

func (l *loader) fail(name, expect string) {
	l.problems = append(l.problems, Prefix+name+": "+expect)
}

func (l *loader) raw(name string) (string, bool) {
	v, ok := l.lookup(Prefix + name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

func (l *loader) str(name, def string) string {
	if v, ok := l.raw(name); ok {
		return v
	}
	return def
}

func (l *loader) prefixed(name, prefix string) string {
	v := l.str(name, "")
	if v != "" && !strings.HasPrefix(v, prefix) {
		l.fail(name, fmt.Sprintf("a token starting with %q", prefix))
		return ""
	}
	return v
}

// graphVersion reads a Graph API version such as v25.0.
func (l *loader) graphVersion(name, def string) string {
	v := l.str(name, def)
	if !graphVersionRE.MatchString(v) {
		l.fail(name, "a Graph API version such as "+def)
		return def
	}
	return v
}

var graphVersionRE = regexp.MustCompile(`^v[0-9]{1,3}\.[0-9]{1,3}$`)

func (l *loader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(l.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	l.fail(name, "one of "+strings.Join(allowed, ", "))
	return def
}

func (l *loader) url(name, def string, schemes ...string) string {
	v := l.str(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		l.fail(name, "an absolute URL ("+strings.Join(schemes, "://, ")+"://host...)")
		return ""
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	l.fail(name, "a URL with scheme "+strings.Join(schemes, " or "))
	return ""
}

func (l *loader) hostPort(name, def string) string {
	v := l.str(name, def)
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		l.fail(name, "host:port")
		return ""
	}
	if p, err := strconv.Atoi(v[i+1:]); err != nil || p < 0 || p > 65535 {
		l.fail(name, "host:port with a port between 0 and 65535")
		return ""
	}
	return v
}

// optionalHostPort is hostPort where "off" disables the listener.
func (l *loader) optionalHostPort(name, def string) string {
	if v, _ := l.raw(name); strings.EqualFold(v, "off") {
		return ""
	}
	return l.hostPort(name, def)
}

func (l *loader) intRange(name string, def, lo, hi int) int {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		l.fail(name, fmt.Sprintf("an integer between %d and %d", lo, hi))
		return def
	}
	return n
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.fail(name, "a positive duration such as 30s, 5m or 24h")
		return def
	}
	return d
}

func (l *loader) level(name string, def slog.Level) slog.Level {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(v)); err != nil {
		l.fail(name, "one of debug, info, warn, error")
		return def
	}
	return lv
}

func (l *loader) email(name string) string {
	v := l.str(name, "")
	if v == "" {
		return ""
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v {
		l.fail(name, "a plain email address such as admin@example.com")
		return ""
	}
	return strings.ToLower(v)
}

// KeyLen is the AES-256 key size that ENCRYPTION_KEY must decode to.
const KeyLen = 32

func decodeKey(v string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		k, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	}
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(k) != KeyLen {
		return nil, fmt.Errorf("decodes to %d bytes", len(k))
	}
	return k, nil
}

func (l *loader) key(name string) []byte {
	v, ok := l.raw(name)
	if !ok {
		l.fail(name, "required: 32 random bytes, base64 (generate with: openssl rand -base64 32)")
		return nil
	}
	k, err := decodeKey(v)
	if err != nil {
		l.fail(name, "32 bytes, base64 ("+err.Error()+")")
		return nil
	}
	return k
}

func (l *loader) keys(name string) [][]byte {
	v, ok := l.raw(name)
	if !ok {
		return nil
	}
	var out [][]byte
	for i, part := range strings.Split(v, ",") {
		k, err := decodeKey(strings.TrimSpace(part))
		if err != nil {
			l.fail(name, fmt.Sprintf("comma-separated 32-byte base64 keys (key %d: %v)", i+1, err))
			return nil
		}
		out = append(out, k)
	}
	return out
}

func (l *loader) models(name, def string) []string {
	v := l.str(name, def)
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, _, err := llm.ParseModel(part); err != nil {
			l.fail(name, "comma-separated provider/model names: "+strings.TrimPrefix(err.Error(), "llm: "))
			return nil
		}
		out = append(out, part)
	}
	if len(out) == 0 {
		l.fail(name, "at least one provider/model name")
	}
	return out
}

// PaidPlans are the paid plans of the plans table (migrations/00011), whose
// Stripe prices come from KONSTRUCT_STRIPE_PRICE_<PLAN>.
var PaidPlans = []string{"starter", "pro"}

func (l *loader) stripePrices() map[string]string {
	out := map[string]string{}
	for _, plan := range PaidPlans {
		name := "STRIPE_PRICE_" + strings.ToUpper(plan)
		v := l.str(name, "")
		if v == "" {
			continue
		}
		if !strings.HasPrefix(v, "price_") {
			l.fail(name, "a Stripe price ID starting with price_")
			continue
		}
		out[plan] = v
	}
	return out
}

// cidrs reads comma-separated networks (a bare address is its own /32 or /128).
func (l *loader) cidrs(name string) []netip.Prefix {
	v, ok := l.raw(name)
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				l.fail(name, "comma-separated CIDRs such as 10.1.2.0/24,127.0.0.1/32 (bad: "+part+")")
				return nil
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// embeddingModels is models restricted to the providers that serve
// embeddings (Anthropic has no embedding API).
func (l *loader) embeddingModels(name, def string) []string {
	out := l.models(name, def)
	for _, m := range out {
		if p, _, _ := llm.ParseModel(m); p != llm.ProviderOpenAI && p != llm.ProviderOllama {
			l.fail(name, fmt.Sprintf("embedding models of provider openai or ollama (%q: %s has no embedding API)", m, p))
			return nil
		}
	}
	return out
}
