package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/server"
)

// auditBenchParallelism multiplies GOMAXPROCS to give the number of
// goroutines of the parallel benchmark, each with one call in flight, so
// that group commits have calls to share an fsync between.
const auditBenchParallelism = 8

// startAuditBenchServer serves the fixture's graph on 127.0.0.1 like
// startServer, with an audit log in a temporary directory when withAudit
// is set, and returns a client and the log (nil without auditing).
func startAuditBenchServer(b *testing.B, f *fixture, withAudit bool) (*authzed.Client, *audit.Log) {
	b.Helper()
	var log *audit.Log
	if withAudit {
		var err error
		if log, err = audit.Open(b.TempDir(), audit.Options{}); err != nil {
			b.Fatalf("open audit log: %v", err)
		}
		// Cleanups run last-in first-out, so the log closes after the
		// server has stopped.
		b.Cleanup(func() {
			if err := log.Close(); err != nil {
				b.Errorf("close audit log: %v", err)
			}
		})
	}
	srv, err := server.New(server.Config{
		Graph:        f.graph,
		PresharedKey: benchKey,
		Audit:        log,
		Logger:       zerolog.Nop(),
	})
	if err != nil {
		b.Fatalf("create server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("listen on 127.0.0.1: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			b.Errorf("serve: %v", err)
		}
	})

	client, err := authzed.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(benchKey))
	if err != nil {
		b.Fatalf("create client for %s: %v", lis.Addr(), err)
	}
	b.Cleanup(func() { client.Close() })
	return client, log
}

// BenchmarkCheckPermissionAudit sends CheckPermission for the five-folder
// arrow chain to a server on 127.0.0.1, with its audit log off and on,
// one call at a time and from GOMAXPROCS × 8 goroutines. With the log on,
// each response waits until its record is fsynced, and the record carries
// the granting path, so the difference is the whole cost of auditing.
// The audit=on runs report records/commit, the records written per
// fsync.
func BenchmarkCheckPermissionAudit(b *testing.B) {
	req := &v1.CheckPermissionRequest{
		Resource:   &v1.ObjectReference{ObjectType: "document", ObjectId: "chained"},
		Permission: "view",
		Subject:    &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "top"}},
	}
	ctx := context.Background()
	for _, withAudit := range []bool{false, true} {
		b.Run(fmt.Sprintf("audit=%v", withAudit), func(b *testing.B) {
			f := newFixture(b, folderChainRelationships())
			client, log := startAuditBenchServer(b, f, withAudit)
			resp, err := client.CheckPermission(ctx, req)
			if err != nil {
				b.Fatalf("check permission: %v", err)
			}
			if got := resp.GetPermissionship(); got != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
				b.Fatalf("check permission = %v, want PERMISSIONSHIP_HAS_PERMISSION", got)
			}

			b.Run("sequential", func(b *testing.B) {
				b.ReportAllocs()
				commits := countCommits(b, log)
				cpuBefore := processCPUTime(b)
				for b.Loop() {
					if _, err := client.CheckPermission(ctx, req); err != nil {
						b.Fatalf("check permission: %v", err)
					}
				}
				reportCPUTime(b, cpuBefore)
				commits.report(b)
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(auditBenchParallelism)
				commits := countCommits(b, log)
				cpuBefore := processCPUTime(b)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := client.CheckPermission(ctx, req); err != nil {
							b.Errorf("check permission: %v", err)
							return
						}
					}
				})
				reportCPUTime(b, cpuBefore)
				commits.report(b)
			})
		})
	}
}

// commitCounter measures the group commits of a log during a benchmark,
// from the number of signed tree heads: every commit stores one.
type commitCounter struct {
	log          *audit.Log
	heads, items uint64
}

func countCommits(b *testing.B, log *audit.Log) commitCounter {
	b.Helper()
	c := commitCounter{log: log}
	if log != nil {
		c.heads, c.items = headCount(b, log), log.Head().Size
	}
	return c
}

// report adds records/commit to the benchmark's metrics.
func (c commitCounter) report(b *testing.B) {
	b.Helper()
	if c.log == nil {
		return
	}
	heads, items := headCount(b, c.log)-c.heads, c.log.Head().Size-c.items
	if heads > 0 {
		b.ReportMetric(float64(items)/float64(heads), "records/commit")
	}
}

func headCount(b *testing.B, log *audit.Log) uint64 {
	b.Helper()
	heads, err := log.Heads()
	if err != nil {
		b.Fatalf("read tree heads: %v", err)
	}
	return uint64(len(heads))
}
