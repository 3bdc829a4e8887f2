package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/server"
)

// The integration tests start the real gRPC server on a loopback port with
// an embedded bbolt store in a temporary directory, and call it through the
// authzed-go client, as an existing SpiceDB client would.

const testPresharedKey = "integration-test-key"

// testSchema exercises every rewrite the tests check: union, intersection,
// exclusion, arrows, nested groups, wildcards, caveats and expiration.
const testSchema = `use expiration

caveat has_clearance(level int, required int) {
  level >= required
}

definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation owner: user
  relation viewer: user | group#member
  permission view = viewer + owner
}

definition document {
  relation parent: folder
  relation owner: user
  relation editor: user | group#member
  relation viewer: user | user:* | group#member | user with has_clearance | user with expiration
  relation auditor: user
  relation banned: user
  permission edit = owner + editor
  permission view = (viewer + edit + parent->view) - banned
  permission audit = edit & auditor
}
`

// testServer is one running server and a client connected to it with the
// preshared key.
type testServer struct {
	addr   string
	client *authzed.Client
	stop   func()
}

// serverOptions adjusts the configuration of a test server.
type serverOptions struct {
	insecureNoAuth bool
	// dataDir is the directory of the embedded store; empty means a new
	// temporary directory.
	dataDir string
}

// startServer starts a server with a fresh embedded store and returns a
// connected client. Both stop when the test ends.
func startServer(t *testing.T) *testServer {
	t.Helper()
	return startServerWith(t, serverOptions{})
}

func startServerWith(t *testing.T, opts serverOptions) *testServer {
	t.Helper()
	if opts.dataDir == "" {
		opts.dataDir = t.TempDir()
	}
	store, err := graph.OpenBolt(opts.dataDir)
	if err != nil {
		t.Fatalf("open bolt store: %v", err)
	}
	g, err := graph.Open(store, graph.Options{})
	if err != nil {
		store.Close()
		t.Fatalf("open graph: %v", err)
	}
	cfg := server.Config{Graph: g, Logger: zerolog.Nop()}
	if opts.insecureNoAuth {
		cfg.InsecureNoAuth = true
	} else {
		cfg.PresharedKey = testPresharedKey
	}
	srv, err := server.New(cfg)
	if err != nil {
		g.Close()
		t.Fatalf("new server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	ts := &testServer{addr: lis.Addr().String()}
	ts.client = dialClient(t, ts.addr, grpcutil.WithInsecureBearerToken(testPresharedKey))
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			ts.client.Close()
			cancel()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
			if err := g.Close(); err != nil {
				t.Errorf("close graph: %v", err)
			}
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

// dialClient connects an authzed-go client to addr without TLS, with the
// given extra options, and closes it when the test ends.
func dialClient(t *testing.T, addr string, opts ...grpc.DialOption) *authzed.Client {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	client, err := authzed.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("new client for %s: %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// testContext returns a context that ends with the test or after 30s.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// writeSchema writes text and fails the test on error.
func (ts *testServer) writeSchema(t *testing.T, text string) *v1.ZedToken {
	t.Helper()
	resp, err := ts.client.WriteSchema(testContext(t), &v1.WriteSchemaRequest{Schema: text})
	if err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	return resp.GetWrittenAt()
}

// rel parses a relationship in SpiceDB's text form, such as
// "document:readme#viewer@user:alice" or
// `document:secret#viewer@user:sam[has_clearance:{"required":3}]`.
func rel(t *testing.T, s string) *v1.Relationship {
	t.Helper()
	r, err := tuple.ParseV1Rel(s)
	if err != nil {
		t.Fatalf("parse relationship %q: %v", s, err)
	}
	return r
}

// relString renders a relationship in SpiceDB's text form, with its caveat
// and expiration.
func relString(t *testing.T, r *v1.Relationship) string {
	t.Helper()
	s, err := tuple.V1StringRelationship(r)
	if err != nil {
		t.Fatalf("format relationship: %v", err)
	}
	return s
}

func update(op v1.RelationshipUpdate_Operation, r *v1.Relationship) *v1.RelationshipUpdate {
	return &v1.RelationshipUpdate{Operation: op, Relationship: r}
}

// touchAll writes the relationships with TOUCH in one transaction and
// returns its token.
func (ts *testServer) touchAll(t *testing.T, rels ...string) *v1.ZedToken {
	t.Helper()
	return ts.writeAll(t, v1.RelationshipUpdate_OPERATION_TOUCH, rels...)
}

func (ts *testServer) writeAll(t *testing.T, op v1.RelationshipUpdate_Operation, rels ...string) *v1.ZedToken {
	t.Helper()
	req := &v1.WriteRelationshipsRequest{}
	for _, s := range rels {
		req.Updates = append(req.Updates, update(op, rel(t, s)))
	}
	resp, err := ts.client.WriteRelationships(testContext(t), req)
	if err != nil {
		t.Fatalf("WriteRelationships %s %v: %v", op, rels, err)
	}
	return resp.GetWrittenAt()
}

// read returns every relationship that matches filter, read in one call,
// as sorted strings.
func (ts *testServer) read(t *testing.T, filter *v1.RelationshipFilter) []string {
	t.Helper()
	rels, err := ts.readWith(t, &v1.ReadRelationshipsRequest{RelationshipFilter: filter})
	if err != nil {
		t.Fatalf("ReadRelationships %v: %v", filter, err)
	}
	out := make([]string, 0, len(rels))
	for _, r := range rels {
		out = append(out, relString(t, r.GetRelationship()))
	}
	slices.Sort(out)
	return out
}

// readWith sends one ReadRelationships call and returns its responses in
// the order received.
func (ts *testServer) readWith(t *testing.T, req *v1.ReadRelationshipsRequest) ([]*v1.ReadRelationshipsResponse, error) {
	t.Helper()
	stream, err := ts.client.ReadRelationships(testContext(t), req)
	if err != nil {
		return nil, err
	}
	var out []*v1.ReadRelationshipsResponse
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, resp)
	}
}

// testResourceTypes are the definitions of testSchema that can have
// relationships as resources.
var testResourceTypes = []string{"document", "folder", "group"}

// state is everything a request could change: the schema, every
// relationship and the head revision.
type state struct {
	schema string
	rels   []string
	head   string
}

// readState reads the schema, every relationship of the given resource
// types and the head revision token.
func (ts *testServer) readState(t *testing.T, types ...string) state {
	t.Helper()
	ctx := testContext(t)
	var st state
	resp, err := ts.client.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	switch status.Code(err) {
	case codes.OK:
		st.schema = resp.GetSchemaText()
		st.head = resp.GetReadAt().GetToken()
	case codes.NotFound:
		return st
	default:
		t.Fatalf("ReadSchema: %v", err)
	}
	for _, typ := range types {
		st.rels = append(st.rels, ts.read(t, &v1.RelationshipFilter{ResourceType: typ})...)
	}
	return st
}

// requireUnchanged fails the test if the state differs from before.
func requireUnchanged(t *testing.T, before, after state) {
	t.Helper()
	if after.head != before.head {
		t.Errorf("head revision token changed: got %q, want %q", after.head, before.head)
	}
	if after.schema != before.schema {
		t.Errorf("schema changed:\ngot:\n%s\nwant:\n%s", after.schema, before.schema)
	}
	if !slices.Equal(after.rels, before.rels) {
		t.Errorf("relationships changed:\ngot  %q\nwant %q", after.rels, before.rels)
	}
}

// requireStatus fails the test unless err has the code and its message
// contains every one of the fragments.
func requireStatus(t *testing.T, err error, code codes.Code, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("got non-status error %v, want %s", err, code)
	}
	if st.Code() != code {
		t.Fatalf("got code %s (%q), want %s", st.Code(), st.Message(), code)
	}
	t.Logf("got %s: %s", st.Code(), st.Message())
	for _, f := range fragments {
		if !strings.Contains(st.Message(), f) {
			t.Errorf("message %q does not contain %q", st.Message(), f)
		}
	}
}

func objectRef(typ, id string) *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: typ, ObjectId: id}
}

// subjectRef parses a subject such as "user:alice" or "group:eng#member".
func subjectRef(t *testing.T, s string) *v1.SubjectReference {
	t.Helper()
	onr, err := tuple.ParseSubjectONR(s)
	if err != nil {
		t.Fatalf("parse subject %q: %v", s, err)
	}
	ref := &v1.SubjectReference{Object: objectRef(onr.ObjectType, onr.ObjectID)}
	if onr.Relation != tuple.Ellipsis {
		ref.OptionalRelation = onr.Relation
	}
	return ref
}

func fullyConsistent() *v1.Consistency {
	return &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
}
