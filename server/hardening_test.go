package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
)

// startHardened runs a server with a preshared key and an audit log, and
// returns a connection that sends the key.
func startHardened(t *testing.T) (*grpc.ClientConn, *graph.Graph, *audit.Log) {
	t.Helper()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(t.TempDir(), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Graph: g, PresharedKey: "key", Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InstallDefaultSchema(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpcutil.WithInsecureBearerToken("key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
		log.Close()
	})
	return conn, g, log
}

func TestExpirationBefore1970Rejected(t *testing.T) {
	conn, g, _ := startHardened(t)
	client := v1.NewPermissionsServiceClient(conn)
	before := g.Head()
	for _, ts := range []*timestamppb.Timestamp{
		timestamppb.New(time.Time{}),
		{Seconds: 253402300900},
		{Seconds: 10, Nanos: 2_000_000_000},
	} {
		_, err := client.WriteRelationships(context.Background(), &v1.WriteRelationshipsRequest{
			Updates: []*v1.RelationshipUpdate{{
				Operation: v1.RelationshipUpdate_OPERATION_TOUCH,
				Relationship: &v1.Relationship{
					Resource:          &v1.ObjectReference{ObjectType: "dataset", ObjectId: "d1"},
					Relation:          "reader",
					Subject:           &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "u1"}},
					OptionalExpiresAt: ts,
				},
			}},
		})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("expiration %v: got %v, want InvalidArgument", ts, err)
		}
	}
	if after := g.Head(); after != before {
		t.Errorf("head moved from %d to %d", before, after)
	}
}

func TestRefusedCallAudited(t *testing.T) {
	conn, _, log := startHardened(t)
	bad, err := grpc.NewClient(conn.Target(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpcutil.WithInsecureBearerToken("wrong"))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = v1.NewSchemaServiceClient(bad).ReadSchema(context.Background(), &v1.ReadSchemaRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ReadSchema with a wrong key: got %v, want Unauthenticated", err)
	}
	var refused []*audit.Record
	if err := log.Scan(audit.Query{Kind: audit.KindRefused}, func(r *audit.Record) bool {
		refused = append(refused, r)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 {
		t.Fatalf("got %d refused records, want 1", len(refused))
	}
	if r := refused[0]; r.Principal != "unauthenticated" || r.Result != "Unauthenticated" ||
		r.Detail["method"] != "/authzed.api.v1.SchemaService/ReadSchema" {
		t.Errorf("refused record = %+v", r)
	}
}

func TestRejectedTokenReasonAudited(t *testing.T) {
	conn, _, log := startHardened(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	token, err := identity.SignToken(key, "ghost", identity.DefaultAudience, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ghost, err := grpc.NewClient(conn.Target(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpcutil.WithInsecureBearerToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer ghost.Close()

	_, err = v1.NewSchemaServiceClient(ghost).ReadSchema(context.Background(), &v1.ReadSchemaRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ReadSchema as an unknown agent: got %v, want Unauthenticated", err)
	}
	if msg := status.Convert(err).Message(); strings.Contains(msg, "unknown agent") {
		t.Errorf("the caller learns that the agent is unknown: %q", msg)
	}
	var why []string
	if err := log.Scan(audit.Query{Kind: audit.KindRefused}, func(r *audit.Record) bool {
		why = append(why, r.Why)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(why) != 1 || !strings.Contains(why[0], `agent "ghost": unknown agent`) {
		t.Errorf("refused records give %q, want one naming the unknown agent ghost", why)
	}
}
