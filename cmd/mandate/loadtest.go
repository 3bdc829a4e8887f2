package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mandate-iam/mandate/loadtest"
)

type loadtestOptions struct {
	addr             string
	key              string
	scenario         string
	relationships    int
	batchSize        int
	mix              string
	bulkSize         int
	concurrency      int
	connections      int
	duration         time.Duration
	maxRequests      int64
	timeout          time.Duration
	seed             uint64
	consistency      string
	jsonOutput       bool
	reportFile       string
	skipLoad         bool
	loadOnly         bool
	progressInterval time.Duration
	serverPID        int
}

func newLoadtestCommand() *cobra.Command {
	var o loadtestOptions
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Load a generated data set into a v1 API server and measure it under a mix of calls",
		Long: `Load a generated data set into a server of SpiceDB's v1 gRPC API (Mandate
or SpiceDB), then send CheckPermission, CheckBulkPermissions, LookupResources
and WriteRelationships calls from concurrent workers until --duration has
passed or --max-requests calls have started. The final report gives calls
per second, p50/p95/p99/max latency per kind of call, failed calls by gRPC
code, and results that differ from the expected results that the
generator stores. A progress line goes to stderr every --progress-interval.

Scenarios: agents (departments, agents and datasets, with nested groups and
folder trees) and docs (documents shared through folders, nested groups and
public links). The same --schema, --relationships and --seed always give
the same data, so a run with --skip-load reuses what an earlier run loaded.

The connection is plaintext gRPC, for servers on this machine. Every flag
can also be set with an environment variable: --key is MANDATE_KEY,
--addr is MANDATE_ADDR.

The command exits with status 1 when any result was wrong.`,
		Example: `  mandate loadtest --addr 127.0.0.1:50051 --key secret --schema agents \
    --relationships 100000 --mix check=80,bulk=10,lookup=5,write=5 \
    --concurrency 16 --duration 60s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			return runLoadtest(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:50051", "host:port of the v1 gRPC server to test")
	f.StringVar(&o.key, "key", "", "preshared key sent as the bearer token; empty sends none")
	f.StringVar(&o.scenario, "schema", "agents", "scenario, a schema with its data set: "+strings.Join(loadtest.ScenarioNames(), " or "))
	f.IntVar(&o.relationships, "relationships", 100_000, "number of relationships in the data set")
	f.IntVar(&o.batchSize, "batch-size", 10_000, "relationships per ImportBulkRelationships call while loading")
	f.StringVar(&o.mix, "mix", loadtest.DefaultMix, "relative weights of the kinds of call: check, bulk, lookup, write")
	f.IntVar(&o.bulkSize, "bulk-size", 10, "checks per CheckBulkPermissions call")
	f.IntVar(&o.concurrency, "concurrency", 16, "number of workers, each with one call in flight")
	f.IntVar(&o.connections, "connections", 4, "number of gRPC connections the workers share")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "how long to send calls")
	f.Int64Var(&o.maxRequests, "max-requests", 10_000_000, "maximum number of calls to start; the run stops at this count or at --duration, whichever comes first")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of each call")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the data set and of the request sequence")
	f.StringVar(&o.consistency, "consistency", loadtest.ConsistencyAtLeastAsFresh,
		"consistency of reads: minimize_latency, at_least_as_fresh (the ZedToken of the loaded data) or fully_consistent")
	f.BoolVar(&o.jsonOutput, "json", false, "print the final report as JSON instead of a table")
	f.StringVar(&o.reportFile, "report-file", "", "also write the final report as JSON to this file")
	f.BoolVar(&o.skipLoad, "skip-load", false, "reuse a data set an earlier run loaded with the same --schema, --relationships and --seed")
	f.BoolVar(&o.loadOnly, "load-only", false, "load the data set and exit without running calls")
	f.IntVar(&o.serverPID, "server-pid", 0, "process ID of the server when it runs on this host, to report its CPU time and memory; 0 for none")
	f.DurationVar(&o.progressInterval, "progress-interval", 5*time.Second, "time between progress lines on stderr; 0 for none")

	cmd.AddCommand(newLoadtestCompareCommand())
	return cmd
}

func runLoadtest(parent context.Context, o loadtestOptions, stdout, stderr io.Writer) error {
	if o.skipLoad && o.loadOnly {
		return fmt.Errorf("--skip-load and --load-only exclude each other: pass one of them")
	}
	if o.connections <= 0 {
		return fmt.Errorf("invalid --connections %d: must be at least 1", o.connections)
	}
	mix, err := loadtest.ParseMix(o.mix)
	if err != nil {
		return fmt.Errorf("--mix: %w", err)
	}
	scenario, err := loadtest.NewScenario(o.scenario, o.relationships, o.seed)
	if err != nil {
		return fmt.Errorf("--schema: %w", err)
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	clients, err := dialClients(o.addr, o.key, o.connections)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	testClients := make([]loadtest.Client, len(clients))
	for i, c := range clients {
		testClients[i] = c
	}

	var load *loadtest.LoadReport
	if !o.skipLoad {
		fmt.Fprintf(stderr, "loadtest: loading %d relationships of scenario %s into %s\n", scenario.Count(), scenario.Name(), o.addr)
		load, err = loadtest.Load(ctx, clients[0], scenario, loadtest.LoadOptions{
			BatchSize:        o.batchSize,
			Progress:         stderr,
			ProgressInterval: o.progressInterval,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "loadtest: loaded %d relationships by %s in %.1fs\n", load.Relationships, load.Method, load.Seconds)
	}
	if o.loadOnly {
		if o.jsonOutput {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(load)
		}
		_, err := fmt.Fprintf(stdout, "loaded %d relationships by %s in %.1fs (%.0f/s)\n",
			load.Relationships, load.Method, load.Seconds, load.PerSecond)
		return err
	}

	consistency, err := loadtest.Prepare(ctx, clients[0], scenario, o.consistency)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "loadtest: running %s against %s for up to %s or %d calls\n", mix, o.addr, o.duration, o.maxRequests)
	report, err := loadtest.Run(ctx, testClients, loadtest.RunOptions{
		Target:           o.addr,
		Scenario:         scenario,
		Mix:              mix,
		Concurrency:      o.concurrency,
		Duration:         o.duration,
		MaxRequests:      o.maxRequests,
		BulkSize:         o.bulkSize,
		Seed:             o.seed,
		Consistency:      consistency,
		ConsistencyName:  o.consistency,
		Timeout:          o.timeout,
		ServerPID:        o.serverPID,
		Progress:         stderr,
		ProgressInterval: o.progressInterval,
	})
	if err != nil {
		return err
	}
	report.Load = load
	if o.reportFile != "" {
		if err := writeReportFile(o.reportFile, report); err != nil {
			return err
		}
	}
	if o.jsonOutput {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if n := report.Total.Mismatches; n > 0 {
		return fmt.Errorf("%d of %d verified results differ from the expected ones; see the mismatch lines of the report", n, report.Total.Verified)
	}
	return nil
}

func writeReportFile(path string, report *loadtest.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create --report-file: %w", err)
	}
	if err := report.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("write --report-file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write --report-file %s: %w", path, err)
	}
	return nil
}

// dialClients opens n plaintext connections to addr. gRPC connects
// lazily, so an unreachable address fails at the first call.
func dialClients(addr, key string, n int) ([]*authzed.Client, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if key != "" {
		opts = append(opts, grpcutil.WithInsecureBearerToken(key))
	}
	clients := make([]*authzed.Client, 0, n)
	for range n {
		c, err := authzed.NewClient(addr, opts...)
		if err != nil {
			for _, open := range clients {
				open.Close()
			}
			return nil, fmt.Errorf("create client for --addr %q: %w", addr, err)
		}
		clients = append(clients, c)
	}
	return clients, nil
}

func newLoadtestCompareCommand() *cobra.Command {
	var nameA, nameB string
	var filesA, filesB []string
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Compare JSON reports of repeated load test runs against two servers",
		Long: `Read the JSON reports (mandate loadtest --json) of repeated runs against two
servers and print, per kind of call, the median and range over runs of
throughput, p50 and p99 latency, the ratio of the medians, and the failed
calls and wrong results of each server.`,
		Example: `  mandate loadtest compare --a-name mandate --a m1.json,m2.json \
    --b-name spicedb --b s1.json,s2.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := readSeries(nameA, filesA)
			if err != nil {
				return err
			}
			b, err := readSeries(nameB, filesB)
			if err != nil {
				return err
			}
			return loadtest.Compare(cmd.OutOrStdout(), a, b)
		},
	}
	f := cmd.Flags()
	f.StringVar(&nameA, "a-name", "a", "name of the first server in the output")
	f.StringVar(&nameB, "b-name", "b", "name of the second server in the output")
	f.StringSliceVar(&filesA, "a", nil, "JSON reports of the first server, comma-separated")
	f.StringSliceVar(&filesB, "b", nil, "JSON reports of the second server, comma-separated")
	return cmd
}

func readSeries(name string, files []string) (loadtest.Series, error) {
	s := loadtest.Series{Name: name}
	for _, path := range files {
		r, err := loadtest.ReadReport(path)
		if err != nil {
			return s, err
		}
		s.Reports = append(s.Reports, r)
	}
	return s, nil
}
