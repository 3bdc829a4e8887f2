package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/server"
)

// The review CLI test seeds a server whose clock the test sets, uses some
// of agent:bot's rights in the last 30 days and one only 60 days ago, and
// runs `mandate review agent:bot --unused-for 720h --revoke-unused` in
// this process.

// settableClock is a clock that moves only when the test sets it.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// startReviewCLIServer starts a server with the default schema and an
// audit log on clock, and returns its address and an administrator
// connection.
func startReviewCLIServer(t *testing.T, clock *settableClock) (string, *grpc.ClientConn) {
	t.Helper()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{Clock: clock.Now})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	if _, err := server.InstallDefaultSchema(context.Background(), g); err != nil {
		g.Close()
		t.Fatalf("install default schema: %v", err)
	}
	log, err := audit.Open(t.TempDir(), audit.Options{Clock: clock.Now})
	if err != nil {
		g.Close()
		t.Fatalf("open audit log: %v", err)
	}
	srv, err := server.New(server.Config{
		Graph: g, PresharedKey: cliPresharedKey, Audit: log, Clock: clock.Now, Logger: zerolog.Nop(),
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
		if err := log.Close(); err != nil {
			t.Errorf("close audit log: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(cliPresharedKey))
	if err != nil {
		t.Fatalf("dial %s: %v", lis.Addr(), err)
	}
	t.Cleanup(func() { conn.Close() })
	return lis.Addr().String(), conn
}

// seedReviewRights creates agents bot, planner and peer, the grants and
// delegations below, and, as the administrator, the checks that use
// them. It returns the time of the recent checks.
//
//	dataset:logs#reader@agent:bot      used directly
//	folder:reports#reader@agent:bot    used on the path of dataset:q3
//	tool:mailer#invoker@agent:bot      used only 60 days before the review
//	dataset:archive#reader@agent:bot   never used
//	dataset:budget#reader@agent:bot    used on bot's part of a check through dplan
//	delegation:dplan (planner -> bot)  used
//	delegation:dpeer (peer -> bot)     never used
func seedReviewRights(t *testing.T, conn *grpc.ClientConn, clock *settableClock) time.Time {
	t.Helper()
	ctx := testCtx(t)
	agents := mandatev1.NewAgentServiceClient(conn)
	for _, a := range []struct{ id, department string }{{"bot", "finance"}, {"planner", "finance"}, {"peer", "sales"}} {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agents.CreateAgent(ctx, &mandatev1.CreateAgentRequest{
			Id: a.id, Owner: "alice", Department: a.department, PublicKey: pub,
		}); err != nil {
			t.Fatalf("CreateAgent %s: %v", a.id, err)
		}
	}
	permissions := v1.NewPermissionsServiceClient(conn)
	req := &v1.WriteRelationshipsRequest{}
	for _, r := range []string{
		"dataset:logs#reader@agent:bot",
		"folder:reports#reader@agent:bot",
		"dataset:q3#folder@folder:reports",
		"tool:mailer#invoker@agent:bot",
		"dataset:archive#reader@agent:bot",
		"dataset:budget#reader@agent:planner",
		"dataset:budget#reader@agent:bot",
		"dataset:peerdata#reader@agent:peer",
	} {
		req.Updates = append(req.Updates, &v1.RelationshipUpdate{
			Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: parseReviewRel(r),
		})
	}
	if _, err := permissions.WriteRelationships(ctx, req); err != nil {
		t.Fatalf("WriteRelationships: %v", err)
	}
	delegations := mandatev1.NewDelegationServiceClient(conn)
	for _, d := range []*mandatev1.DelegateRequest{
		{Id: "dplan", Delegator: "agent:planner", Delegate: "bot", Scope: []*mandatev1.Scope{{Permissions: []string{"read"}, Resource: "dataset:budget"}}},
		{Id: "dpeer", Delegator: "agent:peer", Delegate: "bot", Scope: []*mandatev1.Scope{{Permissions: []string{"read"}, Resource: "dataset:peerdata"}}},
	} {
		if _, err := delegations.Delegate(ctx, d); err != nil {
			t.Fatalf("Delegate %s: %v", d.GetId(), err)
		}
	}

	check := func(resource, permission, subject string, want v1.CheckPermissionResponse_Permissionship) {
		t.Helper()
		typ, id, _ := strings.Cut(resource, ":")
		subjectType, subjectID, _ := strings.Cut(subject, ":")
		resp, err := permissions.CheckPermission(ctx, &v1.CheckPermissionRequest{
			Resource:   &v1.ObjectReference{ObjectType: typ, ObjectId: id},
			Permission: permission,
			Subject:    &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: subjectType, ObjectId: subjectID}},
		})
		if err != nil {
			t.Fatalf("check %s %s %s: %v", resource, permission, subject, err)
		}
		if got := resp.GetPermissionship(); got != want {
			t.Fatalf("check %s %s %s: got %s, want %s", resource, permission, subject, got, want)
		}
	}
	start := clock.Now()
	clock.Set(start.Add(time.Hour))
	check("tool:mailer", "invoke", "agent:bot", v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
	recent := start.Add(59 * 24 * time.Hour)
	clock.Set(recent)
	check("dataset:logs", "read", "agent:bot", v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
	check("dataset:q3", "read", "agent:bot", v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
	check("dataset:budget", "read", "delegation:dplan", v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
	check("dataset:archive", "write", "agent:bot", v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION)
	clock.Set(start.Add(60 * 24 * time.Hour))
	return recent
}

// parseReviewRel parses "type:id#relation@type:id[#relation]".
func parseReviewRel(s string) *v1.Relationship {
	r := parseCrashRel(s)
	if subject, relation, ok := strings.Cut(r.GetSubject().GetObject().GetObjectId(), "#"); ok {
		r.Subject.Object.ObjectId, r.Subject.OptionalRelation = subject, relation
	}
	return r
}

// reviewLine is one right in the output of `mandate review`.
type reviewLine struct {
	status, uses, lastUsed, right string
}

// parseReviewOutput splits the output of `mandate review` into its table
// of rights and its other lines.
func parseReviewOutput(t *testing.T, out string) ([]reviewLine, []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || strings.Join(strings.Fields(lines[0]), " ") != "STATUS USES LAST USED RIGHT" {
		t.Fatalf("review output does not start with the table header:\n%s", out)
	}
	var rights []reviewLine
	var rest []string
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) == 4 && (f[0] == "used" || f[0] == "unused") {
			rights = append(rights, reviewLine{status: f[0], uses: f[1], lastUsed: f[2], right: f[3]})
			continue
		}
		rest = append(rest, line)
	}
	return rights, rest
}

func TestReviewCLIRevokesUnused(t *testing.T) {
	clearClientEnv(t)
	clock := &settableClock{now: time.Date(2025, time.June, 11, 10, 0, 0, 0, time.UTC)}
	addr, conn := startReviewCLIServer(t, clock)
	recent := seedReviewRights(t, conn, clock).UTC().Format(time.RFC3339)

	out := mustRunCLI(t, "review", "agent:bot", "--unused-for", "720h", "--revoke-unused",
		"--addr", addr, "--preshared-key", cliPresharedKey)
	rights, rest := parseReviewOutput(t, out)
	wantRights := []reviewLine{
		{"unused", "0", "-", "dataset:archive#reader@agent:bot"},
		{"used", "1", recent, "dataset:budget#reader@agent:bot"},
		{"used", "1", recent, "dataset:logs#reader@agent:bot"},
		{"unused", "0", "-", "delegation:dpeer"},
		{"used", "1", recent, "delegation:dplan"},
		{"used", "1", recent, "folder:reports#reader@agent:bot"},
		{"unused", "0", "-", "tool:mailer#invoker@agent:bot"},
	}
	if !slices.Equal(rights, wantRights) {
		t.Errorf("review rights:\ngot  %v\nwant %v\noutput:\n%s", rights, wantRights, out)
	}
	wantRevoked := []string{
		"revoked dataset:archive#reader@agent:bot",
		"revoked delegation:dpeer",
		"revoked tool:mailer#invoker@agent:bot",
	}
	var revoked []string
	for _, line := range rest {
		if strings.HasPrefix(line, "revoked ") {
			revoked = append(revoked, line)
		}
	}
	if !slices.Equal(revoked, wantRevoked) {
		t.Errorf("revoked lines:\ngot  %q\nwant %q\noutput:\n%s", revoked, wantRevoked, out)
	}

	// The second review lists only what is left, all of it used.
	out = mustRunCLI(t, "review", "agent:bot", "--unused-for", "720h", "--addr", addr, "--preshared-key", cliPresharedKey)
	rights, rest = parseReviewOutput(t, out)
	wantLeft := []reviewLine{
		{"used", "1", recent, "dataset:budget#reader@agent:bot"},
		{"used", "1", recent, "dataset:logs#reader@agent:bot"},
		{"used", "1", recent, "delegation:dplan"},
		{"used", "1", recent, "folder:reports#reader@agent:bot"},
	}
	if !slices.Equal(rights, wantLeft) {
		t.Errorf("review after revocation:\ngot  %v\nwant %v\noutput:\n%s", rights, wantLeft, out)
	}
	wantRest := []string{"delegation dplan: [agent:planner agent:bot], scope [read@dataset:budget]"}
	if !slices.Equal(rest, wantRest) {
		t.Errorf("review after revocation, lines after the table:\ngot  %q\nwant %q", rest, wantRest)
	}

	out = mustRunCLI(t, "audit", "query", "--kind", "review", "--addr", addr, "--preshared-key", cliPresharedKey)
	var audited []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec struct {
			Kind      string            `json:"kind"`
			Principal string            `json:"principal"`
			Result    string            `json:"result"`
			Detail    map[string]string `json:"detail"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit query line %q: %v", line, err)
		}
		if rec.Kind != "review" || rec.Principal != "admin" || rec.Result != "ok" || rec.Detail["action"] != "revoke right" {
			t.Errorf("revocation record %s: want kind review, principal admin, result ok and action revoke right", line)
		}
		audited = append(audited, "revoked "+rec.Detail["right"])
	}
	if !slices.Equal(audited, wantRevoked) {
		t.Errorf("audited revocations:\ngot  %q\nwant %q", audited, wantRevoked)
	}
}
