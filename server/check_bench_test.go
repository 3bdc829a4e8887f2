package server

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/mandate-iam/mandate/graph"
)

const handlerBenchSchema = `
definition user {}

definition folder {
	relation parent: folder
	relation viewer: user
	permission view = viewer + parent->view
}
`

// BenchmarkCheckPermissionHandler measures what the server does for one
// CheckPermission call without the gRPC transport: the logging and
// authentication interceptors with a preshared key, request validation,
// the consistency and schema lookup, the check and the response. The
// check follows two parent arrows to a folder with one viewer, so the
// walk itself is small.
func BenchmarkCheckPermissionHandler(b *testing.B) {
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		b.Fatalf("open graph: %v", err)
	}
	defer g.Close()
	_, err = g.Update(context.Background(), func(tx *graph.Tx) error {
		tx.SetSchema(handlerBenchSchema)
		for i := 1; i <= 2; i++ {
			tx.Touch(&graph.Relationship{Key: graph.Key{
				ResourceType: "folder", ResourceID: fmt.Sprintf("f%d", i), Relation: "parent",
				Subject: graph.SubjectRef{Type: "folder", ID: fmt.Sprintf("f%d", i+1)},
			}})
		}
		tx.Touch(&graph.Relationship{Key: graph.Key{
			ResourceType: "folder", ResourceID: "f3", Relation: "viewer",
			Subject: graph.SubjectRef{Type: "user", ID: "tom"},
		}})
		return nil
	})
	if err != nil {
		b.Fatalf("write schema and relationships: %v", err)
	}
	const key = "handler-bench-key"
	s, err := New(Config{Graph: g, PresharedKey: key, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatalf("create server: %v", err)
	}
	ps := &permissionsService{s: s}
	info := &grpc.UnaryServerInfo{FullMethod: v1.PermissionsService_CheckPermission_FullMethodName}
	handler := func(ctx context.Context, req any) (any, error) {
		return ps.CheckPermission(ctx, req.(*v1.CheckPermissionRequest))
	}
	call := func(ctx context.Context, req any) (any, error) {
		return s.logUnary(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			return s.authUnary(ctx, req, info, handler)
		})
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+key))
	req := &v1.CheckPermissionRequest{
		Resource:   &v1.ObjectReference{ObjectType: "folder", ObjectId: "f1"},
		Permission: "view",
		Subject:    &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "tom"}},
	}
	check := func() {
		resp, err := call(ctx, req)
		if err != nil {
			b.Fatalf("check permission: %v", err)
		}
		if got := resp.(*v1.CheckPermissionResponse).GetPermissionship(); got != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
			b.Fatalf("check permission = %v, want PERMISSIONSHIP_HAS_PERMISSION", got)
		}
	}
	check()

	b.ReportAllocs()
	cpuBefore := processCPUTime(b)
	for b.Loop() {
		check()
	}
	cpu := processCPUTime(b) - cpuBefore
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPUTime returns the user and system CPU time of the process.
func processCPUTime(b *testing.B) time.Duration {
	b.Helper()
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
