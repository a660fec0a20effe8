package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spf13/cobra"

	"github.com/konstruct/konstruct/migrations"
)

// defaultMigrateURL is the owner role of the local development database
// (scripts/db-setup.sh), the partner of config's default KONSTRUCT_DATABASE_URL.
const defaultMigrateURL = "postgres://konstruct_owner:konstruct@127.0.0.1:5432/konstruct?sslmode=disable"

// migrateURL picks the database migrations run against. Migrations need the
// owner role, whose credentials cannot be derived from the application
// role's URL, so when only KONSTRUCT_DATABASE_URL is set it refuses instead of
// falling back to the default owner URL — which would migrate a different
// database than the one the server then opens. Both set but naming different
// databases is refused too.
func migrateURL(getenv func(string) string) (string, error) {
	appURL, ownerURL := getenv("KONSTRUCT_DATABASE_URL"), getenv("KONSTRUCT_MIGRATE_DATABASE_URL")
	switch {
	case ownerURL == "" && appURL == "":
		return defaultMigrateURL, nil
	case ownerURL == "":
		hint := "postgres://OWNER:PASSWORD@HOST:PORT/DATABASE"
		if host, db, err := databaseOf(appURL); err == nil {
			hint = "postgres://konstruct_owner:PASSWORD@" + host + "/" + db
		}
		return "", fmt.Errorf("migrate: KONSTRUCT_DATABASE_URL is set but KONSTRUCT_MIGRATE_DATABASE_URL is not: "+
			"migrations run as the owner role of the same database, so set KONSTRUCT_MIGRATE_DATABASE_URL (e.g. %s)", hint)
	case appURL == "":
		return ownerURL, nil
	}
	appDB, err := databaseKey(appURL)
	if err != nil {
		return "", fmt.Errorf("migrate: KONSTRUCT_DATABASE_URL: %w", err)
	}
	ownerDB, err := databaseKey(ownerURL)
	if err != nil {
		return "", fmt.Errorf("migrate: KONSTRUCT_MIGRATE_DATABASE_URL: %w", err)
	}
	if appDB != ownerDB {
		return "", fmt.Errorf("migrate: KONSTRUCT_MIGRATE_DATABASE_URL names database %s but KONSTRUCT_DATABASE_URL names %s: "+
			"they must be the same database (the owner role and the application role)", ownerDB, appDB)
	}
	return ownerURL, nil
}

// databaseOf returns host:port and the database name of a Postgres URL.
func databaseOf(raw string) (hostPort, db string, err error) {
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		return "", "", fmt.Errorf("parse database URL: %w", err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), cfg.Database, nil
}

func databaseKey(raw string) (string, error) {
	hp, db, err := databaseOf(raw)
	return hp + "/" + db, err
}

func newMigrate() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply or inspect database migrations (as KONSTRUCT_MIGRATE_DATABASE_URL, the owner role)",
		Long: `Apply or inspect the embedded SQL migrations. Migrations run as the owner role
named by KONSTRUCT_MIGRATE_DATABASE_URL; the server connects as the application role
(KONSTRUCT_DATABASE_URL), which owns nothing and cannot bypass row-level security.
With neither set, both default to the local development database. With only
KONSTRUCT_DATABASE_URL set, migrate refuses rather than guess the owner's
credentials; both set must name the same host, port and database.`,
	}
	open := func() (*migrations.Migrator, error) {
		url, err := migrateURL(os.Getenv)
		if err != nil {
			return nil, err
		}
		return migrations.Open(url, nil)
	}
	cmd.AddCommand(&cobra.Command{
		Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := open()
			if err != nil {
				return err
			}
			defer m.Close()
			res, err := m.Up(cmd.Context())
			for _, r := range res {
				fmt.Fprintf(cmd.OutOrStdout(), "applied %s (%s)\n", r.Source.Path, r.Duration)
			}
			if err == nil && len(res) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "database is up to date")
			}
			return err
		},
	}, &cobra.Command{
		Use: "down", Short: "Roll back the most recent migration", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := open()
			if err != nil {
				return err
			}
			defer m.Close()
			r, err := m.Down(cmd.Context())
			if r != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "rolled back %s\n", r.Source.Path)
			}
			return err
		},
	}, &cobra.Command{
		Use: "status", Short: "List migrations and whether each is applied", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := open()
			if err != nil {
				return err
			}
			defer m.Close()
			st, err := m.Status(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tSTATE\tAPPLIED AT\tFILE")
			for _, s := range st {
				at := "-"
				if !s.AppliedAt.IsZero() {
					at = s.AppliedAt.Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, at, s.Source.Path)
			}
			return w.Flush()
		},
	})
	return cmd
}
