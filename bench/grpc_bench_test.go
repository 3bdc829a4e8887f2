package bench

import (
	"context"
	"errors"
	"net"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mandate-iam/mandate/server"
)

const benchKey = "bench-key"

// startServer serves the fixture's graph on a free port of 127.0.0.1 with
// a preshared key, and returns an authzed-go client connected to it.
func startServer(b *testing.B, f *fixture) *authzed.Client {
	b.Helper()
	srv, err := server.New(server.Config{
		Graph:        f.graph,
		PresharedKey: benchKey,
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

	client, err := authzed.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(benchKey))
	if err != nil {
		cancel()
		b.Fatalf("create client for %s: %v", lis.Addr(), err)
	}
	// Cleanups run last-in first-out: close the client, then stop the
	// server, before the fixture closes the graph.
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			b.Errorf("serve: %v", err)
		}
	})
	b.Cleanup(func() { client.Close() })
	return client
}

// BenchmarkCheckPermissionGRPC sends CheckPermission for the five-folder
// arrow chain to a server on 127.0.0.1 through the authzed-go client, one
// call at a time and from parallel goroutines.
func BenchmarkCheckPermissionGRPC(b *testing.B) {
	f := newFixture(b, folderChainRelationships())
	client := startServer(b, f)
	req := &v1.CheckPermissionRequest{
		Resource:   &v1.ObjectReference{ObjectType: "document", ObjectId: "chained"},
		Permission: "view",
		Subject:    &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "top"}},
	}
	ctx := context.Background()
	resp, err := client.CheckPermission(ctx, req)
	if err != nil {
		b.Fatalf("check permission: %v", err)
	}
	if got := resp.GetPermissionship(); got != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
		b.Fatalf("check permission = %v, want PERMISSIONSHIP_HAS_PERMISSION", got)
	}

	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		cpuBefore := processCPUTime(b)
		for b.Loop() {
			if _, err := client.CheckPermission(ctx, req); err != nil {
				b.Fatalf("check permission: %v", err)
			}
		}
		reportCPUTime(b, cpuBefore)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
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
	})
}
