package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/graph/sqlstore"
)

// datastoreEmbedded is the --datastore value of the bbolt store in
// --data-dir.
const datastoreEmbedded = "embedded"

// datastoreOptions are the flags that choose and tune the datastore, shared
// by serve and migrate.
type datastoreOptions struct {
	kind         string
	uri          string
	pollInterval time.Duration
}

func (o *datastoreOptions) bind(f *pflag.FlagSet) {
	f.StringVar(&o.kind, "datastore", datastoreEmbedded,
		"datastore: embedded (a local file under --data-dir), postgres or cockroachdb")
	f.StringVar(&o.uri, "datastore-uri", "",
		"connection URI of a postgres or cockroachdb datastore, such as postgres://user:password@host:5432/mandate")
}

// bindServe binds the flags that only a serving process uses.
func (o *datastoreOptions) bindServe(f *pflag.FlagSet) {
	o.bind(f)
	f.DurationVar(&o.pollInterval, "datastore-poll-interval", 0,
		"how often a server reads the change log of a postgres or cockroachdb datastore when no notification woke it (default 1s for postgres, 200ms for cockroachdb)")
}

// sqlConfig returns the SQL store configuration, or ok false for the
// embedded datastore.
func (o *datastoreOptions) sqlConfig(log zerolog.Logger) (cfg sqlstore.Config, ok bool, err error) {
	if o.kind == datastoreEmbedded {
		if o.uri != "" {
			return sqlstore.Config{}, false, fmt.Errorf("--datastore-uri is set, but --datastore is %s; pass --datastore postgres or --datastore cockroachdb", datastoreEmbedded)
		}
		return sqlstore.Config{}, false, nil
	}
	dialect, err := sqlstore.ParseDialect(o.kind)
	if err != nil {
		return sqlstore.Config{}, false, fmt.Errorf("invalid --datastore %q: use embedded, postgres or cockroachdb", o.kind)
	}
	if o.uri == "" {
		return sqlstore.Config{}, false, fmt.Errorf("--datastore %s needs --datastore-uri (or MANDATE_DATASTORE_URI)", dialect)
	}
	if o.pollInterval < 0 {
		return sqlstore.Config{}, false, fmt.Errorf("invalid --datastore-poll-interval %s: must not be negative", o.pollInterval)
	}
	return sqlstore.Config{Dialect: dialect, URI: o.uri, PollInterval: o.pollInterval, Logger: log}, true, nil
}

// openStore opens the datastore that the flags choose.
func (o *datastoreOptions) openStore(ctx context.Context, dataDir string, log zerolog.Logger) (graph.Store, error) {
	cfg, isSQL, err := o.sqlConfig(log)
	if err != nil {
		return nil, err
	}
	if !isSQL {
		return graph.OpenBolt(dataDir)
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return sqlstore.Open(openCtx, cfg)
}
