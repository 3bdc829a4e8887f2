package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/graph/sqlstore/pgtest"
)

// The test in this file runs the real binary: `mandate migrate` and two
// `mandate serve` processes on one PostgreSQL database, called through the
// authzed-go client like two servers behind a load balancer.

const sharedSchema = `definition user {}

definition document {
  relation viewer: user
  permission view = viewer
}
`

func TestServeTwoServersOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts PostgreSQL; skipped with -short")
	}
	pg := pgtest.Start(t)
	uri := pg.CreateDatabase(t)
	bin := buildMandate(t)

	out, err := runMandate(t, bin, nil, "serve", "--datastore", "postgres", "--datastore-uri", uri,
		"--grpc-addr", freeLoopbackAddr(t), "--insecure-no-auth", "--data-dir", t.TempDir())
	if err == nil || !strings.Contains(out, "mandate migrate --datastore postgres") {
		t.Fatalf("serve on an unmigrated database: got error %v, want a failure naming mandate migrate; output:\n%s", err, out)
	}

	out, err = runMandate(t, bin, nil, "migrate", "--datastore", "postgres", "--datastore-uri", uri)
	if err != nil || !strings.Contains(out, "applied migration 1") {
		t.Fatalf("migrate: error %v; output:\n%s", err, out)
	}
	// The environment variables set the same flags.
	env := []string{"MANDATE_DATASTORE=postgres", "MANDATE_DATASTORE_URI=" + uri}
	out, err = runMandate(t, bin, env, "migrate")
	if err != nil || strings.Contains(out, "applied migration") {
		t.Fatalf("second migrate: error %v, want none and nothing applied; output:\n%s", err, out)
	}

	a := startSharedServer(t, bin, uri)
	b := startSharedServer(t, bin, uri)
	clients := []*authzed.Client{connectMandate(t, a.addr), connectMandate(t, b.addr)}
	for _, c := range clients {
		t.Cleanup(func() { c.Close() })
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	if _, err := clients[0].WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: sharedSchema}); err != nil {
		t.Fatalf("WriteSchema on server a: %v", err)
	}

	// Each write on one server is visible on the other at least as fresh
	// as the write's token.
	for i := range 10 {
		writer, reader := clients[i%2], clients[(i+1)%2]
		doc := fmt.Sprintf("doc%d", i)
		resp, err := writer.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{{
			Operation:    v1.RelationshipUpdate_OPERATION_CREATE,
			Relationship: viewerRelationship(doc, "alice"),
		}}})
		if err != nil {
			t.Fatalf("write %d on server %c: %v", i, "ab"[i%2], err)
		}
		check, err := reader.CheckPermission(ctx, &v1.CheckPermissionRequest{
			Consistency: &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: resp.GetWrittenAt()}},
			Resource:    &v1.ObjectReference{ObjectType: "document", ObjectId: doc},
			Permission:  "view",
			Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
		})
		if err != nil {
			t.Fatalf("check %d on server %c at least as fresh as the write: %v", i, "ba"[i%2], err)
		}
		if check.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
			t.Fatalf("check %d on server %c at least as fresh as the write: got %v, want HAS_PERMISSION",
				i, "ba"[i%2], check.GetPermissionship())
		}
	}

	// A fully consistent read on b returns every write.
	stream, err := clients[1].ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
		Consistency:        &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"},
	})
	if err != nil {
		t.Fatalf("ReadRelationships on server b: %v", err)
	}
	count := 0
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
		count++
	}
	if count != 10 {
		t.Fatalf("fully consistent read on server b: got %d relationships, want 10", count)
	}
	read, err := clients[1].ReadSchema(ctx, &v1.ReadSchemaRequest{})
	if err != nil {
		t.Fatalf("ReadSchema on server b: %v", err)
	}
	if !strings.Contains(read.GetSchemaText(), "definition document") {
		t.Fatalf("schema read on server b: got %q, want the schema written on a", read.GetSchemaText())
	}

	// A token newer than the database head was issued elsewhere. The
	// token format, "mdt1:" and the revision in base64, is the server's.
	elsewhere := &v1.ZedToken{Token: base64.RawURLEncoding.EncodeToString([]byte("mdt1:1000000"))}
	_, err = clients[1].CheckPermission(ctx, &v1.CheckPermissionRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: elsewhere}},
		Resource:    &v1.ObjectReference{ObjectType: "document", ObjectId: "doc0"},
		Permission:  "view",
		Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
	})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "revision 1000000") {
		t.Fatalf("check with a token from elsewhere: got %v, want FailedPrecondition naming revision 1000000", err)
	}
}

func viewerRelationship(doc, user string) *v1.Relationship {
	return &v1.Relationship{
		Resource: &v1.ObjectReference{ObjectType: "document", ObjectId: doc},
		Relation: "viewer",
		Subject:  &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: user}},
	}
}

// runMandate runs one mandate command to completion and returns its
// combined output.
func runMandate(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(childEnv(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startSharedServer starts `mandate serve` on the PostgreSQL database at
// uri, with the preshared key that connectMandate sends.
func startSharedServer(t *testing.T, bin, uri string) *mandateProcess {
	t.Helper()
	addr := freeLoopbackAddr(t)
	p := &mandateProcess{addr: addr, exited: make(chan struct{}), output: &lockedBuffer{}}
	p.cmd = exec.Command(bin, "serve",
		"--grpc-addr", addr,
		"--datastore", "postgres",
		"--datastore-uri", uri,
		"--data-dir", t.TempDir(),
		"--grpc-preshared-key", crashPresharedKey,
		"--log-level", "warn",
	)
	p.cmd.Env = childEnv()
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if err := p.terminate(); err != nil {
			t.Errorf("stop mandate serve: %v; output:\n%s", err, p.log())
		}
	})
	if err := waitServing(t, p); err != nil {
		t.Fatalf("mandate serve on PostgreSQL: %v; output:\n%s", err, p.log())
	}
	return p
}
