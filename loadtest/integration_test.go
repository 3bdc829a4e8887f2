package loadtest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	authzed "github.com/authzed/authzed-go/v1"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/server"
)

// startMandate serves an empty in-memory graph on a free port of
// 127.0.0.1 and returns its address.
func startMandate(t *testing.T) string {
	t.Helper()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	srv, err := server.New(server.Config{Graph: g, InsecureNoAuth: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("create server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	})
	return lis.Addr().String()
}

func TestRunAgainstMandate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a load test for seconds")
	}
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			addr := startMandate(t)
			client, err := authzed.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatalf("create client for %s: %v", addr, err)
			}
			t.Cleanup(func() { client.Close() })

			scenario, err := NewScenario(name, 5000, 7)
			if err != nil {
				t.Fatalf("new scenario: %v", err)
			}
			ctx := context.Background()
			load, err := Load(ctx, client, scenario, LoadOptions{BatchSize: 2000})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if load.Relationships != scenario.Count() {
				t.Errorf("loaded %d relationships, want %d", load.Relationships, scenario.Count())
			}
			if load.Method != "import" {
				t.Errorf("load method = %q, want import", load.Method)
			}
			consistency, err := Prepare(ctx, client, scenario, ConsistencyAtLeastAsFresh)
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			mix, err := ParseMix("check=60,bulk=15,lookup=10,write=15")
			if err != nil {
				t.Fatalf("parse mix: %v", err)
			}

			report, err := Run(ctx, []Client{client}, RunOptions{
				Target:          addr,
				Scenario:        scenario,
				Mix:             mix,
				Concurrency:     4,
				Duration:        2 * time.Second,
				MaxRequests:     1_000_000,
				BulkSize:        5,
				Seed:            7,
				Consistency:     consistency,
				ConsistencyName: ConsistencyAtLeastAsFresh,
				Timeout:         10 * time.Second,
			})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if report.Total.PerSecond <= 0 {
				t.Errorf("throughput = %v calls/s, want above 0", report.Total.PerSecond)
			}
			if report.Total.Mismatches != 0 {
				t.Errorf("mismatches = %d, want 0; samples: %q", report.Total.Mismatches, report.MismatchSamples)
			}
			for _, k := range report.Kinds {
				if k.Calls == 0 {
					t.Errorf("%s: no calls finished", k.Kind)
				}
				if len(k.Errors) > 0 || len(k.ItemErrors) > 0 {
					t.Errorf("%s: errors %v, item errors %v, want none", k.Kind, k.Errors, k.ItemErrors)
				}
				if k.Kind != "write" && k.Verified == 0 {
					t.Errorf("%s: no results verified", k.Kind)
				}
			}
			if report.StoppedBy != "duration" {
				t.Errorf("stopped by %q, want duration", report.StoppedBy)
			}
		})
	}
}

func TestRunStopsAtMaxRequests(t *testing.T) {
	addr := startMandate(t)
	client, err := authzed.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("create client for %s: %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })

	scenario, err := NewScenario("agents", 500, 3)
	if err != nil {
		t.Fatalf("new scenario: %v", err)
	}
	ctx := context.Background()
	if _, err := Load(ctx, client, scenario, LoadOptions{BatchSize: 1000}); err != nil {
		t.Fatalf("load: %v", err)
	}
	consistency, err := Prepare(ctx, client, scenario, ConsistencyFully)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}

	report, err := Run(ctx, []Client{client}, RunOptions{
		Scenario:    scenario,
		Mix:         Mix{KindCheck: 1},
		Concurrency: 3,
		Duration:    time.Minute,
		MaxRequests: 50,
		BulkSize:    1,
		Consistency: consistency,
		Timeout:     10 * time.Second,
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if report.Total.Calls != 50 {
		t.Errorf("calls = %d, want 50", report.Total.Calls)
	}
	if report.StoppedBy != "max-requests" {
		t.Errorf("stopped by %q, want max-requests", report.StoppedBy)
	}
	if report.Total.Mismatches != 0 {
		t.Errorf("mismatches = %d, want 0; samples: %q", report.Total.Mismatches, report.MismatchSamples)
	}
}

func TestLoadTwiceFails(t *testing.T) {
	addr := startMandate(t)
	client, err := authzed.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("create client for %s: %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })

	scenario, err := NewScenario("docs", 300, 1)
	if err != nil {
		t.Fatalf("new scenario: %v", err)
	}
	ctx := context.Background()
	if _, err := Load(ctx, client, scenario, LoadOptions{BatchSize: 1000}); err != nil {
		t.Fatalf("first load: %v", err)
	}
	if _, err := Load(ctx, client, scenario, LoadOptions{BatchSize: 1000}); err == nil {
		t.Errorf("second load succeeded, want an error that the data set exists")
	}
}
