package server_test

import (
	"bytes"
	"context"
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
	"google.golang.org/grpc/metadata"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/server"
)

// The audit tests run the real gRPC server with an audit log in a
// temporary directory and the default Agent IAM schema. Agents call with
// their own Ed25519 keys, and their tokens are signed at the time of one
// fake clock. The same clock drives the graph, the server and the audit
// log, so a test can put its calls in separate time windows and query
// those windows exactly. Every
// call sends its own x-request-id, which the server stores as the
// record's request_id, so a test finds the record of each call.

// auditServer is a running server with an audit log, and administrator
// clients for the v1 API and Mandate's services.
type auditServer struct {
	addr  string
	clock *fakeClock
	log   *audit.Log
	// auditDir is the audit log's directory, with audit.db in it.
	auditDir string
	// serverLog collects the server's log lines.
	serverLog *syncBuffer
	// admin calls the v1 API with the preshared key.
	admin       *authzed.Client
	agents      mandatev1.AgentServiceClient
	delegations mandatev1.DelegationServiceClient
	audit       mandatev1.AuditServiceClient
	reviews     mandatev1.ReviewServiceClient
	keys        map[string]*testAgent
}

// startAuditServer starts a server whose clock reads start, on an
// in-memory store with the default schema, recording into a new audit log.
// With failOpen the server returns decisions that the log cannot record. The
// server stops and the log closes when the test ends.
func startAuditServer(t *testing.T, start time.Time, failOpen bool) *auditServer {
	t.Helper()
	clock := &fakeClock{now: start}
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{Clock: clock.Now})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	if _, err := server.InstallDefaultSchema(context.Background(), g); err != nil {
		g.Close()
		t.Fatalf("install default schema: %v", err)
	}
	serverLog := &syncBuffer{}
	auditDir := t.TempDir()
	log, err := audit.Open(auditDir, audit.Options{Clock: clock.Now})
	if err != nil {
		g.Close()
		t.Fatalf("open audit log: %v", err)
	}
	srv, err := server.New(server.Config{
		Graph:         g,
		PresharedKey:  agentTestPresharedKey,
		Audit:         log,
		AuditFailOpen: failOpen,
		Clock:         clock.Now,
		Logger:        zerolog.New(serverLog),
	})
	if err != nil {
		g.Close()
		log.Close()
		t.Fatalf("new server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		log.Close()
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
		// A test may have closed the log under the server already.
		if err := log.Close(); err != nil && !errors.Is(err, audit.ErrClosed) {
			t.Errorf("close audit log: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	})

	s := &auditServer{addr: lis.Addr().String(), clock: clock, log: log, auditDir: auditDir, serverLog: serverLog, keys: map[string]*testAgent{}}
	adminCreds := grpcutil.WithInsecureBearerToken(agentTestPresharedKey)
	s.admin = dialClient(t, s.addr, adminCreds)
	conn := dialConn(t, s.addr, adminCreds)
	s.agents = mandatev1.NewAgentServiceClient(conn)
	s.delegations = mandatev1.NewDelegationServiceClient(conn)
	s.audit = mandatev1.NewAuditServiceClient(conn)
	s.reviews = mandatev1.NewReviewServiceClient(conn)
	return s
}

// syncBuffer is a bytes.Buffer that is safe for concurrent writes, for the
// server's log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// withRequestID returns a test context whose calls send id as their
// x-request-id.
func withRequestID(t *testing.T, id string) context.Context {
	t.Helper()
	return metadata.AppendToOutgoingContext(testContext(t), "x-request-id", id)
}

// createAgent registers an agent with a fresh key pair as the
// administrator, sending requestID.
func (s *auditServer) createAgent(t *testing.T, requestID string, req *mandatev1.CreateAgentRequest) {
	t.Helper()
	pub, priv := newAgentKey(t)
	req.PublicKey = pub
	if _, err := s.agents.CreateAgent(withRequestID(t, requestID), req); err != nil {
		t.Fatalf("CreateAgent %q: %v", req.GetId(), err)
	}
	s.keys[req.GetId()] = &testAgent{id: req.GetId(), key: priv}
}

// auditAgentClients are the clients of one agent, each call signed with
// its key at the fake clock's time.
type auditAgentClients struct {
	v1          *authzed.Client
	delegations mandatev1.DelegationServiceClient
	audit       mandatev1.AuditServiceClient
}

// as returns clients that call the server as agent id.
func (s *auditServer) as(t *testing.T, id string) auditAgentClients {
	t.Helper()
	a := s.keys[id]
	if a == nil {
		t.Fatalf("agent %q was not created by this test", id)
	}
	creds := grpc.WithPerRPCCredentials(clockTokens{agent: a, clock: s.clock})
	conn := dialConn(t, s.addr, creds)
	return auditAgentClients{
		v1:          dialClient(t, s.addr, creds),
		delegations: mandatev1.NewDelegationServiceClient(conn),
		audit:       mandatev1.NewAuditServiceClient(conn),
	}
}

// write applies relationship updates as the administrator, sending
// requestID.
func (s *auditServer) write(t *testing.T, requestID string, op v1.RelationshipUpdate_Operation, rels ...string) {
	t.Helper()
	req := &v1.WriteRelationshipsRequest{}
	for _, r := range rels {
		req.Updates = append(req.Updates, update(op, rel(t, r)))
	}
	if _, err := s.admin.WriteRelationships(withRequestID(t, requestID), req); err != nil {
		t.Fatalf("WriteRelationships %q: %v", rels, err)
	}
}

// checkRequest builds a fully consistent CheckPermission request.
func checkRequest(t *testing.T, resource, permission, subject string) *v1.CheckPermissionRequest {
	t.Helper()
	return &v1.CheckPermissionRequest{
		Consistency: fullyConsistent(),
		Resource:    objectRefOfString(t, resource),
		Permission:  permission,
		Subject:     subjectRef(t, subject),
	}
}

// checkWithID sends one check through client with requestID and fails the
// test unless it returns want.
func checkWithID(t *testing.T, client *authzed.Client, requestID, resource, permission, subject string, want v1.CheckPermissionResponse_Permissionship) {
	t.Helper()
	resp, err := client.CheckPermission(withRequestID(t, requestID), checkRequest(t, resource, permission, subject))
	if err != nil {
		t.Fatalf("check %s (%s %s %s): %v", requestID, resource, permission, subject, err)
	}
	if got := resp.GetPermissionship(); got != want {
		t.Errorf("check %s (%s %s %s): got %s, want %s", requestID, resource, permission, subject, got, want)
	}
}

// query returns the records that match req, read through the audit
// service as the administrator.
func (s *auditServer) query(t *testing.T, req *mandatev1.QueryRecordsRequest) []*mandatev1.AuditRecord {
	t.Helper()
	stream, err := s.audit.QueryRecords(testContext(t), req)
	if err != nil {
		t.Fatalf("QueryRecords %v: %v", req, err)
	}
	var out []*mandatev1.AuditRecord
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("QueryRecords %v: %v", req, err)
		}
		out = append(out, rec)
	}
}

// recordsOf returns the records whose request_id is requestID, in log
// order.
func (s *auditServer) recordsOf(t *testing.T, requestID string) []*mandatev1.AuditRecord {
	t.Helper()
	var out []*mandatev1.AuditRecord
	for _, rec := range s.query(t, &mandatev1.QueryRecordsRequest{}) {
		if rec.GetRequestId() == requestID {
			out = append(out, rec)
		}
	}
	return out
}

// recordOf returns the one record whose request_id is requestID.
func (s *auditServer) recordOf(t *testing.T, requestID string) *mandatev1.AuditRecord {
	t.Helper()
	recs := s.recordsOf(t, requestID)
	if len(recs) != 1 {
		t.Fatalf("request %s has %d audit records, want 1: %v", requestID, len(recs), recs)
	}
	return recs[0]
}

// requestIDs returns the sorted request ids of records, one entry per
// record, so a request with two records appears twice.
func requestIDs(recs []*mandatev1.AuditRecord) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.GetRequestId())
	}
	slices.Sort(out)
	return out
}

// verifyLog fails the test unless the whole audit log verifies against
// its own public key.
func (s *auditServer) verifyLog(t *testing.T) {
	t.Helper()
	report, err := audit.VerifyLog(s.log, s.log.PublicKey())
	if err != nil {
		t.Fatalf("VerifyLog: %v", err)
	}
	if len(report.Problems) != 0 {
		t.Errorf("VerifyLog found problems: %q", report.Problems)
	}
}
