package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

func TestAuthPresharedKey(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	tests := []struct {
		name      string
		opts      []grpc.DialOption
		header    string
		wantCode  codes.Code
		fragments []string
	}{
		{name: "valid key", opts: []grpc.DialOption{grpcutil.WithInsecureBearerToken(testPresharedKey)}, wantCode: codes.OK},
		{name: "missing key", wantCode: codes.Unauthenticated, fragments: []string{"missing authorization"}},
		{
			name:      "wrong key",
			opts:      []grpc.DialOption{grpcutil.WithInsecureBearerToken("not-the-key")},
			wantCode:  codes.Unauthenticated,
			fragments: []string{"invalid preshared key"},
		},
		{
			name:      "empty key",
			opts:      []grpc.DialOption{grpcutil.WithInsecureBearerToken("")},
			wantCode:  codes.Unauthenticated,
			fragments: []string{"preshared key"},
		},
		{
			name:      "not bearer",
			header:    "Basic " + testPresharedKey,
			wantCode:  codes.Unauthenticated,
			fragments: []string{"Bearer"},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := dialClient(t, ts.addr, tc.opts...)
			ctx := testContext(t)
			if tc.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.header)
			}
			calls := []struct {
				method string
				call   func(context.Context) error
			}{
				{"ReadSchema", func(ctx context.Context) error {
					_, err := client.ReadSchema(ctx, &v1.ReadSchemaRequest{})
					return err
				}},
				{"WriteRelationships", func(ctx context.Context) error {
					_, err := client.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{
						Updates: []*v1.RelationshipUpdate{touchString(t, fmt.Sprintf("document:readme#viewer@user:case%d", i))},
					})
					return err
				}},
				{"CheckPermission", func(ctx context.Context) error {
					_, err := client.CheckPermission(ctx, &v1.CheckPermissionRequest{
						Resource: objectRef("document", "readme"), Permission: "view", Subject: subjectRef(t, "user:alice"),
					})
					return err
				}},
				{"ReadRelationships", func(ctx context.Context) error {
					stream, err := client.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
						RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"},
					})
					if err != nil {
						return err
					}
					_, err = stream.Recv()
					return err
				}},
			}
			for _, c := range calls {
				err := c.call(ctx)
				if tc.wantCode == codes.OK {
					if err != nil {
						t.Errorf("%s: %v", c.method, err)
					}
					continue
				}
				requireStatus(t, err, tc.wantCode, tc.fragments...)
			}
		})
	}
	// Only the call with the valid key, the first case, wrote.
	if got, want := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"}), []string{"document:readme#viewer@user:case0"}; !slices.Equal(got, want) {
		t.Errorf("relationships: got %q, want %q", got, want)
	}
}

func TestAuthInsecureNoAuth(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, serverOptions{insecureNoAuth: true})
	client := dialClient(t, ts.addr)
	_, err := client.WriteSchema(testContext(t), &v1.WriteSchemaRequest{Schema: testSchema})
	if err != nil {
		t.Fatalf("WriteSchema without a key on a server with authentication off: %v", err)
	}
}

// Health checking and reflection are served without a key, so probes and
// tools such as grpcurl work without the secret.
func TestHealthWithoutKey(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", ts.addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	health := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", "authzed.api.v1.PermissionsService", "authzed.api.v1.SchemaService"} {
		resp, err := health.Check(testContext(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health check of %q: %v", service, err)
		}
		if got, want := resp.GetStatus(), healthpb.HealthCheckResponse_SERVING; got != want {
			t.Errorf("health of %q: got %s, want %s", service, got, want)
		}
	}
	_, err = health.Check(testContext(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	requireStatus(t, err, codes.NotFound)
}

func TestReflectionWithoutKey(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", ts.addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(testContext(t))
	if err != nil {
		t.Fatalf("open reflection stream: %v", err)
	}
	err = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""},
	})
	if err != nil {
		t.Fatalf("send list services: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("receive list services: %v", err)
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{
		"authzed.api.v1.PermissionsService",
		"authzed.api.v1.SchemaService",
		"grpc.health.v1.Health",
	} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %q, want it to include %s", services, want)
		}
	}

	err = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
			FileContainingSymbol: "authzed.api.v1.PermissionsService",
		},
	})
	if err != nil {
		t.Fatalf("send file containing symbol: %v", err)
	}
	resp, err = stream.Recv()
	if err != nil {
		t.Fatalf("receive file containing symbol: %v", err)
	}
	if n := len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()); n == 0 {
		t.Errorf("no file descriptors for authzed.api.v1.PermissionsService: %v", resp.GetErrorResponse())
	}
}
