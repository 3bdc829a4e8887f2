package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
	"github.com/mandate-iam/mandate/server"
)

// The agent tests run the real gRPC server with the default Agent IAM
// schema on an in-memory store. One fake clock drives the graph, the server
// and the tokens the test agents sign, so a test can move time to a weekend
// or past a token's expiry without waiting.

const agentTestPresharedKey = "agent-test-key"

// wednesdayMorning is a weekday at 10:00 UTC, inside the business hours of
// the business_hours_low_risk caveat.
var wednesdayMorning = time.Date(2025, time.June, 11, 10, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when a test sets it. It is safe for
// concurrent use, because the server reads it from its own goroutines.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// agentServer is one running server with the default schema installed, and
// administrator clients for the v1 API and Mandate's services.
type agentServer struct {
	addr  string
	clock *fakeClock
	// admin calls the v1 API with the preshared key.
	admin *authzed.Client
	// agents and operations call Mandate's services with the preshared key.
	agents     mandatev1.AgentServiceClient
	operations mandatev1.OperationsServiceClient
}

// startAgentServer starts a server whose clock reads start, on an
// in-memory store with the default schema. It stops when the test ends.
func startAgentServer(t *testing.T, start time.Time) *agentServer {
	t.Helper()
	return startAgentServerWith(t, start, "")
}

// startAgentServerWith is startAgentServer for a server that accepts agent
// tokens addressed to audience. An empty audience means the default.
func startAgentServerWith(t *testing.T, start time.Time, audience string) *agentServer {
	t.Helper()
	clock := &fakeClock{now: start}
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{Clock: clock.Now})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	installed, err := server.InstallDefaultSchema(context.Background(), g)
	if err != nil {
		g.Close()
		t.Fatalf("install default schema: %v", err)
	}
	if !installed {
		g.Close()
		t.Fatalf("install default schema: a fresh graph already had a schema")
	}
	srv, err := server.New(server.Config{
		Graph:         g,
		PresharedKey:  agentTestPresharedKey,
		TokenAudience: audience,
		Clock:         clock.Now,
		Logger:        zerolog.Nop(),
	})
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
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	})

	as := &agentServer{addr: lis.Addr().String(), clock: clock}
	adminCreds := grpcutil.WithInsecureBearerToken(agentTestPresharedKey)
	as.admin = dialClient(t, as.addr, adminCreds)
	conn := dialConn(t, as.addr, adminCreds)
	as.agents = mandatev1.NewAgentServiceClient(conn)
	as.operations = mandatev1.NewOperationsServiceClient(conn)
	return as
}

// dialConn opens a plaintext connection to addr that closes when the test
// ends.
func dialConn(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// testAgent is an agent registered on a test server, with its private key.
type testAgent struct {
	id  string
	key ed25519.PrivateKey
}

func newAgentKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate Ed25519 key: %v", err)
	}
	return pub, priv
}

// createAgent registers an agent with a fresh key pair. req.PublicKey is
// filled in, and the other fields are sent as given.
func (as *agentServer) createAgent(t *testing.T, req *mandatev1.CreateAgentRequest) *testAgent {
	t.Helper()
	pub, priv := newAgentKey(t)
	req.PublicKey = pub
	if _, err := as.agents.CreateAgent(testContext(t), req); err != nil {
		t.Fatalf("CreateAgent %q: %v", req.GetId(), err)
	}
	return &testAgent{id: req.GetId(), key: priv}
}

// clockTokens signs a fresh agent token for every call at the fake clock's
// time. identity.TokenCredentials signs at the real time, which a server
// on a fake clock would reject as issued in the future or expired.
type clockTokens struct {
	agent *testAgent
	clock *fakeClock
}

func (c clockTokens) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	token, err := identity.SignToken(c.agent.key, c.agent.id, identity.DefaultAudience, c.clock.Now(), time.Minute)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

func (clockTokens) RequireTransportSecurity() bool { return false }

// agentClients are the clients of one agent, signing each call with its key.
type agentClients struct {
	v1         *authzed.Client
	agents     mandatev1.AgentServiceClient
	operations mandatev1.OperationsServiceClient
}

// connectAs returns clients that call the server as agent a.
func (as *agentServer) connectAs(t *testing.T, a *testAgent) agentClients {
	t.Helper()
	creds := grpc.WithPerRPCCredentials(clockTokens{agent: a, clock: as.clock})
	conn := dialConn(t, as.addr, creds)
	return agentClients{
		v1:         dialClient(t, as.addr, creds),
		agents:     mandatev1.NewAgentServiceClient(conn),
		operations: mandatev1.NewOperationsServiceClient(conn),
	}
}

// touch writes relationships with TOUCH as the administrator.
func (as *agentServer) touch(t *testing.T, rels ...string) *v1.ZedToken {
	t.Helper()
	req := &v1.WriteRelationshipsRequest{}
	for _, s := range rels {
		req.Updates = append(req.Updates, update(v1.RelationshipUpdate_OPERATION_TOUCH, rel(t, s)))
	}
	resp, err := as.admin.WriteRelationships(testContext(t), req)
	if err != nil {
		t.Fatalf("WriteRelationships %q: %v", rels, err)
	}
	return resp.GetWrittenAt()
}

// headToken returns the token of the head revision, from ReadSchema.
func (as *agentServer) headToken(t *testing.T) string {
	t.Helper()
	resp, err := as.admin.ReadSchema(testContext(t), &v1.ReadSchemaRequest{})
	if err != nil {
		t.Fatalf("ReadSchema: %v", err)
	}
	return resp.GetReadAt().GetToken()
}

// readAll returns the relationships that match filter, as sorted strings
// in SpiceDB's text form.
func (as *agentServer) readAll(t *testing.T, filter *v1.RelationshipFilter) []string {
	t.Helper()
	stream, err := as.admin.ReadRelationships(testContext(t), &v1.ReadRelationshipsRequest{
		Consistency: fullyConsistent(), RelationshipFilter: filter,
	})
	if err != nil {
		t.Fatalf("ReadRelationships %v: %v", filter, err)
	}
	var out []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("ReadRelationships %v: %v", filter, err)
		}
		out = append(out, relString(t, resp.GetRelationship()))
	}
	slices.Sort(out)
	return out
}

// agentIAMResourceTypes are the definitions of the default schema.
var agentIAMResourceTypes = []string{
	"user", "department", "role", "agent", "delegation", "platform", "folder", "dataset", "tool", "system",
}

// readEverything returns every relationship of the default schema's types.
func (as *agentServer) readEverything(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, typ := range agentIAMResourceTypes {
		out = append(out, as.readAll(t, &v1.RelationshipFilter{ResourceType: typ})...)
	}
	return out
}

// checkAs sends one CheckPermission request through client and returns
// the permissionship. caveatContext may be nil.
func checkAs(t *testing.T, client *authzed.Client, resource, permission, subject string, caveatContext map[string]any) (v1.CheckPermissionResponse_Permissionship, error) {
	t.Helper()
	req := &v1.CheckPermissionRequest{
		Consistency: fullyConsistent(),
		Resource:    objectRefOfString(t, resource),
		Permission:  permission,
		Subject:     subjectRef(t, subject),
	}
	if caveatContext != nil {
		s, err := structpb.NewStruct(caveatContext)
		if err != nil {
			t.Fatalf("caveat context %v: %v", caveatContext, err)
		}
		req.Context = s
	}
	resp, err := client.CheckPermission(testContext(t), req)
	return resp.GetPermissionship(), err
}

// requirePermissionAs fails the test unless the check succeeds with want.
func requirePermissionAs(t *testing.T, client *authzed.Client, resource, permission, subject string, want v1.CheckPermissionResponse_Permissionship) {
	t.Helper()
	got, err := checkAs(t, client, resource, permission, subject, nil)
	if err != nil {
		t.Fatalf("check %s %s %s: %v", resource, permission, subject, err)
	}
	if got != want {
		t.Errorf("check %s %s %s: got %s, want %s", resource, permission, subject, got, want)
	}
}

// objectRefOfString parses "type:id".
func objectRefOfString(t *testing.T, s string) *v1.ObjectReference {
	t.Helper()
	ref := subjectRef(t, s)
	if ref.GetOptionalRelation() != "" {
		t.Fatalf("object %q has a relation", s)
	}
	return ref.GetObject()
}

// lookupResourcesAs returns the ids of resourceType on which subject has
// permission, sorted.
func lookupResourcesAs(t *testing.T, client *authzed.Client, resourceType, permission, subject string) ([]string, error) {
	t.Helper()
	stream, err := client.LookupResources(testContext(t), &v1.LookupResourcesRequest{
		Consistency:        fullyConsistent(),
		ResourceObjectType: resourceType,
		Permission:         permission,
		Subject:            subjectRef(t, subject),
	})
	if err != nil {
		return nil, err
	}
	out := []string{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetResourceObjectId())
	}
	slices.Sort(out)
	return out, nil
}

// lookupSubjectsAs returns the ids of subjectType that have permission on
// resource, sorted.
func lookupSubjectsAs(t *testing.T, client *authzed.Client, resource, permission, subjectType string) ([]string, error) {
	t.Helper()
	stream, err := client.LookupSubjects(testContext(t), &v1.LookupSubjectsRequest{
		Consistency:       fullyConsistent(),
		Resource:          objectRefOfString(t, resource),
		Permission:        permission,
		SubjectObjectType: subjectType,
	})
	if err != nil {
		return nil, err
	}
	out := []string{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetSubject().GetSubjectObjectId())
	}
	slices.Sort(out)
	return out, nil
}
