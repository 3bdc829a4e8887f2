package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

// The audit crash test runs `mandate serve` with its audit log on, sends
// concurrent checks that each carry their own x-request-id, and kills the
// server with SIGKILL at a random moment. A decision is answered only
// once its record is fsynced, so after every restart each check that got
// an answer must have its record, and `mandate audit verify` must accept
// the log.

const (
	auditCrashCycles   = 5
	auditCrashCheckers = 8
)

func TestAuditCrashKeepsAnsweredDecisions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it repeatedly; skipped with -short")
	}
	bin := buildMandate(t)
	dataDir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	var answered []string
	var publicKey string
	var lastRecords int
	for cycle := range auditCrashCycles + 1 {
		proc := startMandate(t, bin, dataDir)
		client := connectMandate(t, proc.addr)
		auditClient := connectAuditClient(t, proc.addr)
		if cycle == 0 {
			writeAuditCrashGrant(t, client)
		}

		stored := auditRequestIDs(t, auditClient)
		missing := 0
		for _, id := range answered {
			if stored[id] == 0 {
				missing++
				if missing <= 10 {
					t.Errorf("cycle %d: check %s was answered before the kill but has no audit record", cycle, id)
				}
			}
		}
		if missing > 0 {
			t.Errorf("cycle %d: %d of %d answered checks have no audit record", cycle, missing, len(answered))
		}
		records := 0
		for _, n := range stored {
			records += n
		}
		if records < lastRecords {
			t.Errorf("cycle %d: the log has %d records, fewer than the %d before the kill", cycle, records, lastRecords)
		}
		lastRecords = records

		heads, err := auditClient.GetTreeHeads(testCtx(t), &mandatev1.GetTreeHeadsRequest{})
		if err != nil {
			t.Fatalf("cycle %d: GetTreeHeads: %v", cycle, err)
		}
		if cycle == 0 {
			publicKey = hex.EncodeToString(heads.GetPublicKey())
		}
		out, err := runAuditVerify(t, bin, proc.addr, "--public-key", publicKey)
		if err != nil || !strings.Contains(out, "verified: every record matches the signed tree heads") {
			t.Errorf("cycle %d: mandate audit verify: %v\n%s", cycle, err, out)
		}
		if t.Failed() {
			proc.kill(t)
			t.Fatalf("cycle %d: the audit log is incomplete or does not verify after restart; server log:\n%s", cycle, proc.log())
		}
		if cycle == auditCrashCycles {
			client.Close()
			if err := proc.terminate(); err != nil {
				t.Errorf("stop with SIGTERM: %v; server log:\n%s", err, proc.log())
			}
			break
		}

		got := runChecksUntilKill(t, client, proc, cycle, rng)
		if len(got) == 0 {
			t.Errorf("cycle %d: no check was answered before the kill", cycle)
		}
		answered = append(answered, got...)
		client.Close()
	}
	t.Logf("%d kill cycles: %d checks answered, all recorded; the log ended with %d records",
		auditCrashCycles, len(answered), lastRecords)
}

// writeAuditCrashGrant lets user:alice read dataset:logs in the default
// schema.
func writeAuditCrashGrant(t *testing.T, client *authzed.Client) {
	t.Helper()
	_, err := client.WriteRelationships(testCtx(t), &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{{
		Operation:    v1.RelationshipUpdate_OPERATION_TOUCH,
		Relationship: parseCrashRel("dataset:logs#reader@user:alice"),
	}}})
	if err != nil {
		t.Fatalf("WriteRelationships: %v", err)
	}
}

// testCtx returns a context that ends with the test or after 30s.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connectAuditClient returns an audit service client that calls addr as
// the administrator.
func connectAuditClient(t *testing.T, addr string) mandatev1.AuditServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(crashPresharedKey),
	)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return mandatev1.NewAuditServiceClient(conn)
}

// auditRequestIDs counts the records of the log by request id.
func auditRequestIDs(t *testing.T, c mandatev1.AuditServiceClient) map[string]int {
	t.Helper()
	stream, err := c.QueryRecords(testCtx(t), &mandatev1.QueryRecordsRequest{})
	if err != nil {
		t.Fatalf("QueryRecords: %v", err)
	}
	out := map[string]int{}
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("QueryRecords: %v", err)
		}
		out[rec.GetRequestId()]++
	}
}

// runAuditVerify runs `mandate audit verify` against addr with extra
// flags, and returns its standard output and error output together.
func runAuditVerify(t *testing.T, bin, addr string, flags ...string) (string, error) {
	t.Helper()
	args := append([]string{"audit", "verify", "--addr", addr, "--preshared-key", crashPresharedKey}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runChecksUntilKill sends checks from concurrent clients, each with a
// new x-request-id, kills the child with SIGKILL at a random moment, and
// returns the ids of the checks that got an answer.
func runChecksUntilKill(t *testing.T, client *authzed.Client, proc *mandateProcess, cycle int, rng *rand.Rand) []string {
	t.Helper()
	var killed atomic.Bool
	var mu sync.Mutex
	var answered []string
	var wg sync.WaitGroup
	for w := range auditCrashCheckers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !killed.Load(); i++ {
				id := fmt.Sprintf("c%d-w%d-%d", cycle, w, i)
				resource := "logs"
				if i%3 == 0 {
					resource = "other"
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", id)
				_, err := client.CheckPermission(ctx, &v1.CheckPermissionRequest{
					Resource:   &v1.ObjectReference{ObjectType: "dataset", ObjectId: resource},
					Permission: "read",
					Subject:    &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
				})
				cancel()
				if err != nil {
					if !killed.Load() {
						t.Errorf("check %s failed before the kill: %v", id, err)
					}
					return
				}
				mu.Lock()
				answered = append(answered, id)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
	killed.Store(true)
	proc.kill(t)
	wg.Wait()
	return answered
}
