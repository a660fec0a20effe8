// Package testkit connects tests to the real services (Postgres, Redis,
// Temporal) that `make test` starts, and holds fakes of outside APIs in its
// subpackages.
//
// When a service is missing, a test skips with a message saying how to start
// it — except under CI=true, where it fails with the same message, so a CI run
// never passes by skipping.
package testkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/konstruct/konstruct/migrations"
)

// Unavailable fails (under CI=true) or skips the test because a service is missing.
func Unavailable(t testing.TB, service, howToStart string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not reachable (%v); start it with `%s` (or `make services` for everything)", service, err, howToStart)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// OwnerURL and AppURL are the roles scripts/db-setup.sh creates.
func OwnerURL() string {
	return getenv("KONSTRUCT_MIGRATE_DATABASE_URL", "postgres://konstruct_owner:konstruct@127.0.0.1:5432/konstruct?sslmode=disable")
}

// AppURL is the application role's URL for the shared dev database.
func AppURL() string {
	return getenv("KONSTRUCT_DATABASE_URL", "postgres://konstruct_app:konstruct@127.0.0.1:5432/konstruct?sslmode=disable")
}

// RedisURL is the Redis the tests use.
func RedisURL() string { return getenv("KONSTRUCT_REDIS_URL", "redis://127.0.0.1:6379/0") }

// TemporalAddress is the dev server the tests use.
func TemporalAddress() string { return getenv("KONSTRUCT_TEMPORAL_ADDRESS", "127.0.0.1:7233") }

func withDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(fmt.Sprintf("testkit: bad database URL %q: %v", raw, err))
	}
	u.Path = "/" + db
	return u.String()
}

// Database is a fresh, migrated database for one test.
type Database struct {
	Name     string
	OwnerURL string // migrations' role: owns the tables, still subject to forced RLS
	AppURL   string // the application role
}

var (
	templateMu   sync.Mutex
	templateName string
)

// migratedTemplate returns the template's name, building it the first time or,
// with rebuild, again: a test binary of a branch with other migrations drops
// the templates of schemas it does not know, even while this one uses it.
func migratedTemplate(ctx context.Context, admin *pgx.Conn, rebuild bool) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	if templateName == "" || rebuild {
		name, err := ensureTemplate(ctx, admin)
		if err != nil {
			return "", err
		}
		templateName = name
	}
	return templateName, nil
}

// migrationsHash names the template after the migrations' content, so a
// changed schema gets a fresh template instead of a stale one.
func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(migrations.Files, path)
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// ensureTemplate creates, once per schema version, a migrated template database.
// An advisory lock keeps parallel test binaries from building it twice.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	name := "konstruct_tmpl_" + migrationsHash()
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(727272)`); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer admin.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(727272)`) //nolint:errcheck
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("check template: %w", err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	_, _ = admin.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`)
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	m, err := migrations.Open(withDatabase(OwnerURL(), building), nil)
	if err != nil {
		return "", err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	// Templates of older schemas are dead weight now.
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'konstruct_tmpl_%' AND datname <> $1`, name)
	if err == nil {
		old, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, db := range old {
			_, _ = admin.Exec(ctx, `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
		}
	}
	return name, nil
}

// NewDatabase creates a database cloned from the migrated template and drops
// it when the test ends. Each test gets its own, so tests never share rows.
func NewDatabase(t testing.TB) Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, OwnerURL())
	if err != nil {
		Unavailable(t, "PostgreSQL (role konstruct_owner)", "scripts/postgres.sh && scripts/db-setup.sh", err)
	}
	defer admin.Close(context.Background())

	tmpl, err := migratedTemplate(ctx, admin, false)
	if err != nil {
		t.Fatalf("testkit: migrate template database: %v", err)
	}
	name := fmt.Sprintf("konstruct_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	// CREATE DATABASE ... TEMPLATE needs the template free of connections; retry
	// briefly when another test binary is cloning it at the same moment, and
	// rebuild the template when another binary dropped it.
	for attempt, rebuilds := 0, 0; ; attempt++ {
		_, err = admin.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+tmpl)
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && pgErr.Code == "3D000" && rebuilds < 3 { // invalid_catalog_name
			rebuilds++
			if tmpl, err = migratedTemplate(ctx, admin, true); err != nil {
				t.Fatalf("testkit: migrate template database: %v", err)
			}
			continue
		}
		if err == nil || attempt == 50 || !strings.Contains(err.Error(), "is being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testkit: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, OwnerURL())
		if err != nil {
			t.Logf("testkit: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Logf("testkit: drop %s: %v", name, err)
		}
	})
	return Database{Name: name, OwnerURL: withDatabase(OwnerURL(), name), AppURL: withDatabase(AppURL(), name)}
}

// NewRedis returns a client for the test Redis. Tests keep apart by using
// unique keys (random tenant and event IDs), not by flushing.
func NewRedis(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("testkit: KONSTRUCT_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		Unavailable(t, "Redis", "scripts/redis.sh", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// NewTemporal connects to the Temporal dev server.
func NewTemporal(t testing.TB) client.Client {
	t.Helper()
	addr := TemporalAddress()
	if conn, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		Unavailable(t, "Temporal dev server at "+addr, "scripts/temporal.sh", err)
	} else {
		conn.Close()
	}
	c, err := client.Dial(client.Options{
		HostPort:  addr,
		Namespace: getenv("KONSTRUCT_TEMPORAL_NAMESPACE", "default"),
		Logger:    quietLogger{},
	})
	if err != nil {
		Unavailable(t, "Temporal dev server at "+addr, "scripts/temporal.sh", err)
	}
	t.Cleanup(c.Close)
	return c
}

// quietLogger drops the SDK's chatter; failures surface through test assertions.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
