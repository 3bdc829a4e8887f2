package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/mandate-iam/mandate/graph/sqlstore"
)

func newMigrateCommand() *cobra.Command {
	var o datastoreOptions
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the tables of a postgres or cockroachdb datastore",
		Long: `Create or upgrade the tables that Mandate keeps in a PostgreSQL or
CockroachDB database. Run it once before the first 'mandate serve' on a new
database, and after each upgrade of Mandate; serve refuses to start on a
database that lacks a migration. Running it again is safe, and on
PostgreSQL concurrent runs wait for each other.

The embedded datastore needs no migration: serve creates its files.

Every flag can also be set with an environment variable: --datastore is
MANDATE_DATASTORE, --datastore-uri is MANDATE_DATASTORE_URI.`,
		Example: "  mandate migrate --datastore postgres --datastore-uri postgres://mandate@db:5432/mandate",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			cfg, isSQL, err := o.sqlConfig(zerolog.Nop())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !isSQL {
				fmt.Fprintln(out, "the embedded datastore needs no migration; mandate serve creates its files")
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			applied, err := sqlstore.Migrate(ctx, cfg)
			if err != nil {
				return err
			}
			for _, m := range applied {
				fmt.Fprintf(out, "applied migration %d: %s\n", m.Version, m.Name)
			}
			fmt.Fprintf(out, "%s datastore is at schema version %d\n", cfg.Dialect, sqlstore.SchemaVersion)
			return nil
		},
	}
	o.bind(cmd.Flags())
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "time limit of the whole migration")
	return cmd
}
