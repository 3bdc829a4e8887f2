package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/server"
)

type serveOptions struct {
	grpcAddr       string
	presharedKey   string
	insecureNoAuth bool
	dataDir        string
	datastore      datastoreOptions
	retention      time.Duration
	freshness      time.Duration
	maxDepth       int
	defaultSchema  bool
	audit          bool
	auditDir       string
	auditFailOpen  bool
	tokenAudience  string
	logLevel       string
	logFormat      string
	metricsAddr    string
}

func newServeCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the SpiceDB v1 gRPC API",
		Long: `Serve the SpiceDB v1 gRPC API (schema and permissions services, gRPC
health and reflection) from Mandate's engine. By default relationships are
stored in an embedded, crash-safe database under --data-dir. With
--datastore postgres or cockroachdb, several servers share one database:
run 'mandate migrate' on it first, and start each server with the same
--datastore-uri.

Every flag can also be set with an environment variable: --grpc-addr is
MANDATE_GRPC_ADDR, --grpc-preshared-key is MANDATE_GRPC_PRESHARED_KEY.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			return runServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:50051", "address the gRPC server listens on")
	f.StringVar(&o.presharedKey, "grpc-preshared-key", "", "bearer token that callers must send (required unless --insecure-no-auth)")
	f.BoolVar(&o.insecureNoAuth, "insecure-no-auth", false, "serve every call without authentication; for local development only")
	f.StringVar(&o.dataDir, "data-dir", "./mandate-data", "directory of the embedded store and the audit log, created on first start")
	o.datastore.bindServe(f)
	f.DurationVar(&o.retention, "revision-retention", 24*time.Hour,
		"how long old revisions stay readable with at_exact_snapshot; a shared datastore's change log is trimmed after the same time")
	f.DurationVar(&o.freshness, "freshness-timeout", 5*time.Second,
		"how long an at_least_as_fresh, at_exact_snapshot or fully_consistent request waits for this server to apply the requested revision from a shared datastore")
	f.IntVar(&o.maxDepth, "max-depth", 50, "deepest chain of relations one check may follow")
	f.BoolVar(&o.defaultSchema, "default-schema", true, "install the Agent IAM schema when the store has no schema")
	f.StringVar(&o.tokenAudience, "token-audience", "mandate", "audience that agent tokens must name")
	f.BoolVar(&o.audit, "audit", true, "record every decision and event in the tamper-evident audit log")
	f.StringVar(&o.auditDir, "audit-dir", "", "directory of the audit log (default DATA_DIR/audit)")
	f.BoolVar(&o.auditFailOpen, "audit-fail-open", false, "answer decisions even when the audit log cannot record them")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "json", "log format: json or console")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "address to serve Prometheus metrics on at /metrics, such as 127.0.0.1:9090 (off when empty)")
	return cmd
}

func runServe(parent context.Context, o serveOptions) error {
	log, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if o.presharedKey == "" && !o.insecureNoAuth {
		return fmt.Errorf("--grpc-preshared-key is required (or MANDATE_GRPC_PRESHARED_KEY); pass --insecure-no-auth to serve without authentication")
	}
	if o.maxDepth <= 0 {
		return fmt.Errorf("invalid --max-depth %d: must be at least 1", o.maxDepth)
	}
	if o.retention <= 0 {
		return fmt.Errorf("invalid --revision-retention %s: must be positive", o.retention)
	}
	if o.freshness <= 0 {
		return fmt.Errorf("invalid --freshness-timeout %s: must be positive", o.freshness)
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	store, err := o.datastore.openStore(ctx, o.dataDir, log)
	if err != nil {
		return err
	}
	g, err := graph.Open(store, graph.Options{
		RetentionWindow:  o.retention,
		FreshnessTimeout: o.freshness,
		Logger:           log,
	})
	if err != nil {
		store.Close()
		return err
	}
	defer func() {
		if err := g.Close(); err != nil {
			log.Error().Err(err).Str("datastore", o.datastore.kind).Msg("close datastore")
		}
	}()
	storeLog := log.Info().Str("datastore", o.datastore.kind).Uint64("head_revision", uint64(g.Head())).
		Dur("revision_retention", o.retention)
	if o.datastore.kind == datastoreEmbedded {
		storeLog = storeLog.Str("data_dir", o.dataDir)
	} else {
		storeLog = storeLog.Dur("freshness_timeout", o.freshness)
	}
	storeLog.Msg("configured datastore")

	if o.defaultSchema {
		installed, err := server.InstallDefaultSchema(ctx, g)
		if err != nil {
			return err
		}
		log.Info().Bool("installed_now", installed).Msg("configured default agent schema")
	}

	var auditLog *audit.Log
	if o.audit {
		dir := o.auditDir
		if dir == "" {
			dir = filepath.Join(o.dataDir, "audit")
		}
		if auditLog, err = audit.Open(dir, audit.Options{}); err != nil {
			return err
		}
		defer func() {
			if err := auditLog.Close(); err != nil {
				log.Error().Err(err).Msg("close audit log")
			}
		}()
		mode := "fail closed: decisions are withheld when the log cannot record them"
		if o.auditFailOpen {
			mode = "fail open: decisions are answered even when the log cannot record them"
		}
		head := auditLog.Head()
		log.Info().Str("audit_dir", dir).Uint64("records", head.Size).Str("mode", mode).
			Str("public_key", hex.EncodeToString(auditLog.PublicKey())).Msg("configured audit log")
	} else {
		log.Warn().Msg("configured audit log: OFF, decisions are not recorded")
	}

	limits := engine.Limits{MaxDepth: o.maxDepth}
	log.Info().Int("max_depth", limits.MaxDepth).Msg("configured engine")

	srv, err := server.New(server.Config{
		Graph:          g,
		PresharedKey:   o.presharedKey,
		InsecureNoAuth: o.insecureNoAuth,
		TokenAudience:  o.tokenAudience,
		Audit:          auditLog,
		AuditFailOpen:  o.auditFailOpen,
		Limits:         limits,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", o.grpcAddr)
	if err != nil {
		return fmt.Errorf("listen on --grpc-addr %q: %w", o.grpcAddr, err)
	}
	auth := "preshared key"
	if o.insecureNoAuth {
		auth = "none"
	}
	log.Info().Str("addr", lis.Addr().String()).Str("auth", auth).Msg("configured grpc server")

	if o.metricsAddr != "" {
		metricsLis, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			return fmt.Errorf("listen on --metrics-addr %q: %w", o.metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", srv.MetricsHandler())
		metricsServer := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := metricsServer.Serve(metricsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Msg("metrics server stopped")
			}
		}()
		defer metricsServer.Close()
		log.Info().Str("addr", metricsLis.Addr().String()).Msg("configured metrics")
	} else {
		log.Info().Msg("configured metrics: off (set --metrics-addr to serve /metrics)")
	}

	err = srv.Serve(ctx, lis)
	log.Info().Msg("stopped")
	return err
}
