package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/testkit"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestMigrateURLNeverMigratesAnotherDatabase(t *testing.T) {
	url, err := migrateURL(env(nil))
	require.NoError(t, err)
	require.Equal(t, defaultMigrateURL, url, "neither set: the local development pair")

	_, err = migrateURL(env(map[string]string{"KONSTRUCT_DATABASE_URL": "postgres://app:pw@db.internal:6543/prod?sslmode=require"}))
	require.ErrorContains(t, err, "KONSTRUCT_DATABASE_URL is set but KONSTRUCT_MIGRATE_DATABASE_URL is not")
	require.ErrorContains(t, err, "postgres://konstruct_owner:PASSWORD@db.internal:6543/prod", "the hint names the app's database")
	require.NotContains(t, err.Error(), "pw@", "the app role's password is not echoed")

	owner := "postgres://owner:pw@db.internal:6543/prod"
	url, err = migrateURL(env(map[string]string{"KONSTRUCT_DATABASE_URL": "postgres://app:x@db.internal:6543/prod", "KONSTRUCT_MIGRATE_DATABASE_URL": owner}))
	require.NoError(t, err)
	require.Equal(t, owner, url)

	_, err = migrateURL(env(map[string]string{"KONSTRUCT_DATABASE_URL": "postgres://app:x@db.internal:6543/other", "KONSTRUCT_MIGRATE_DATABASE_URL": owner}))
	require.ErrorContains(t, err, "names database db.internal:6543/prod but KONSTRUCT_DATABASE_URL names db.internal:6543/other")

	url, err = migrateURL(env(map[string]string{"KONSTRUCT_MIGRATE_DATABASE_URL": owner}))
	require.NoError(t, err)
	require.Equal(t, owner, url)
}

// Through the real command: only KONSTRUCT_DATABASE_URL set refuses, naming
// both variables; with both naming the test database it reads that one.
func TestMigrateCommandRefusesWithOnlyTheAppURL(t *testing.T) {
	db := testkit.NewDatabase(t)
	t.Setenv("KONSTRUCT_DATABASE_URL", db.AppURL)
	t.Setenv("KONSTRUCT_MIGRATE_DATABASE_URL", "")
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"migrate", "status"})
	err := root.ExecuteContext(context.Background())
	require.ErrorContains(t, err, "KONSTRUCT_MIGRATE_DATABASE_URL is not")
	require.Empty(t, out.String())

	t.Setenv("KONSTRUCT_MIGRATE_DATABASE_URL", db.OwnerURL)
	root = newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"migrate", "status"})
	require.NoError(t, root.ExecuteContext(context.Background()))
	require.Contains(t, out.String(), "00001_init.sql")
	require.NotContains(t, out.String(), "pending", "the test database is the migrated one")
}
