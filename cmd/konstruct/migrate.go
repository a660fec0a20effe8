package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/konstruct/konstruct/migrations"
)

func migrateURL() string {
	if v := os.Getenv("KONSTRUCT_MIGRATE_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://konstruct_owner:konstruct@127.0.0.1:5432/konstruct?sslmode=disable"
}

func newMigrate() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply or inspect database migrations (as KONSTRUCT_MIGRATE_DATABASE_URL, the owner role)",
		Long: `Apply or inspect the embedded SQL migrations. Migrations run as the owner role
named by KONSTRUCT_MIGRATE_DATABASE_URL; the server connects as the application role
(KONSTRUCT_DATABASE_URL), which owns nothing and cannot bypass row-level security.`,
	}
	open := func() (*migrations.Migrator, error) { return migrations.Open(migrateURL(), nil) }
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
