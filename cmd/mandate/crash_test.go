package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The crash test builds the real binary, runs `mandate serve` on an
// embedded store, kills it with SIGKILL while concurrent writers are
// committing, and restarts it on the same data directory. After every
// restart each acknowledged write must be present, and each write must be
// applied completely or not at all.

const (
	crashKillCycles   = 12
	crashWriters      = 4
	crashPresharedKey = "crash-test-key"
	crashReadPageSize = 1000
)

const crashSchema = `definition user {}

definition document {
  relation viewer: user
  relation editor: user
}
`

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it repeatedly; skipped with -short")
	}
	bin := buildMandate(t)
	dataDir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ledger := &writeLedger{}
	var lastToken *v1.ZedToken

	for cycle := range crashKillCycles + 1 {
		proc := startMandate(t, bin, dataDir)
		client := connectMandate(t, proc.addr)
		if cycle == 0 {
			lastToken = writeCrashSchema(t, client)
		}
		verifyAfterRestart(t, client, ledger, lastToken)
		if t.Failed() {
			proc.kill(t)
			t.Fatalf("cycle %d: verification failed after restart; server log:\n%s", cycle, proc.log())
		}
		if cycle == crashKillCycles {
			// The last start only verifies the last cycle's writes; then the
			// server must stop cleanly on SIGTERM.
			client.Close()
			if err := proc.terminate(); err != nil {
				t.Errorf("stop with SIGTERM: %v; server log:\n%s", err, proc.log())
			}
			break
		}

		if token := runWritersUntilKill(t, client, proc, ledger, cycle, rng); token != nil {
			lastToken = token
		}
		client.Close()
	}

	counts := ledger.counts()
	acked := counts[outcomeAcknowledged]
	t.Logf("%d kill cycles: %d writes acknowledged; of the writes cut off by a kill, %d committed and %d lost",
		crashKillCycles, acked, counts[outcomeCommitted], counts[outcomeLost])
	if counts[outcomeCut] != 0 {
		t.Errorf("%d cut writes were never settled by a restart", counts[outcomeCut])
	}
	if acked < crashKillCycles {
		t.Errorf("only %d writes were acknowledged in %d cycles; the test did not exercise the store", acked, crashKillCycles)
	}
}

// buildMandate builds the mandate binary into a temporary directory.
func buildMandate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mandate")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeCrashSchema(t *testing.T, client *authzed.Client) *v1.ZedToken {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: crashSchema})
	if err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	return resp.GetWrittenAt()
}

// mandateProcess is one running `mandate serve` child.
type mandateProcess struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	output *lockedBuffer
}

// lockedBuffer collects the child's output for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (p *mandateProcess) log() string { return p.output.String() }

// startMandate starts `mandate serve` on a free loopback port and waits
// until its health check reports SERVING. It retries on another port if
// the child exits during start, which happens when another process took
// the port first.
func startMandate(t *testing.T, bin, dataDir string) *mandateProcess {
	t.Helper()
	var lastLog string
	for range 3 {
		addr := freeLoopbackAddr(t)
		p := &mandateProcess{addr: addr, exited: make(chan struct{}), output: &lockedBuffer{}}
		p.cmd = exec.Command(bin, "serve",
			"--grpc-addr", addr,
			"--data-dir", dataDir,
			"--grpc-preshared-key", crashPresharedKey,
			"--log-level", "warn",
		)
		p.cmd.Env = childEnv()
		// The child dies with the test process even when a test timeout
		// panics past the cleanups.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
			select {
			case <-p.exited:
			default:
				p.cmd.Process.Kill()
				<-p.exited
			}
		})
		if err := waitServing(t, p); err == nil {
			return p
		} else {
			lastLog = fmt.Sprintf("%v\n%s", err, p.log())
		}
	}
	t.Fatalf("mandate serve did not start in 3 attempts; last attempt: %s", lastLog)
	return nil
}

// childEnv is the test's environment without MANDATE_* variables, which
// would override the flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MANDATE_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// waitServing polls the health service until it reports SERVING, the
// child exits, or 20s pass.
func waitServing(t *testing.T, p *mandateProcess) error {
	t.Helper()
	// A short reconnect backoff, because the default waits a second after
	// the first refused connection.
	conn, err := grpc.NewClient(p.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.5, MaxDelay: 100 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}),
	)
	if err != nil {
		return fmt.Errorf("dial %s: %w", p.addr, err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("mandate serve exited during start: %v", p.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("mandate serve on %s was not serving after 20s", p.addr)
}

// kill sends SIGKILL to the child and waits for it to exit.
func (p *mandateProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill pid %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d did not exit 10s after SIGKILL", p.cmd.Process.Pid)
	}
}

// terminate sends SIGTERM and returns an error unless the child exits
// with status 0 within 15s.
func (p *mandateProcess) terminate() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal pid %d: %w", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("pid %d did not exit 15s after SIGTERM", p.cmd.Process.Pid)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("exit status %d", code)
	}
	return nil
}

func connectMandate(t *testing.T, addr string) *authzed.Client {
	t.Helper()
	client, err := authzed.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(crashPresharedKey),
	)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	return client
}

// writeOutcome is the state of one write as the test last observed it.
type writeOutcome int

const (
	// outcomeCut means the kill cut the call off, so the write may or may
	// not have committed.
	outcomeCut writeOutcome = iota
	// outcomeAcknowledged means the server returned success.
	outcomeAcknowledged
	// outcomeCommitted means a cut write was found after a restart.
	outcomeCommitted
	// outcomeLost means a cut write was missing after a restart, so it must
	// never appear later.
	outcomeLost
)

// crashWrite is one WriteRelationships call: a transaction that creates
// relationships no other write touches.
type crashWrite struct {
	rels    []string
	outcome writeOutcome
}

// writeLedger records every write the writers sent.
type writeLedger struct {
	mu     sync.Mutex
	writes []*crashWrite
}

func (l *writeLedger) add(w *crashWrite) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, w)
}

func (l *writeLedger) acknowledge(w *crashWrite) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.outcome = outcomeAcknowledged
}

// counts returns how many writes ended in each outcome.
func (l *writeLedger) counts() map[writeOutcome]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[writeOutcome]int)
	for _, w := range l.writes {
		out[w.outcome]++
	}
	return out
}

// runWritersUntilKill runs concurrent writers, kills the child with
// SIGKILL at a random moment while they write, and waits for the writers
// to stop. It returns the ZedToken of the write acknowledged last, or nil.
func runWritersUntilKill(t *testing.T, client *authzed.Client, proc *mandateProcess, ledger *writeLedger, cycle int, rng *rand.Rand) *v1.ZedToken {
	t.Helper()
	var killed atomic.Bool
	var wg sync.WaitGroup
	var tokenMu sync.Mutex
	var lastToken *v1.ZedToken
	var lastAt time.Time
	sizes := make([][]int, crashWriters)
	for w := range sizes {
		// Draw the transaction sizes here, because rand.Rand is not safe for
		// concurrent use.
		sizes[w] = make([]int, 10000)
		for i := range sizes[w] {
			sizes[w][i] = 1 + rng.IntN(4)
		}
	}

	for w := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; !killed.Load() && seq < len(sizes[w]); seq++ {
				write := &crashWrite{}
				req := &v1.WriteRelationshipsRequest{}
				for j := range sizes[w][seq] {
					rel := fmt.Sprintf("document:c%d-w%d-s%d-u%d#viewer@user:u%d", cycle, w, seq, j, j)
					write.rels = append(write.rels, rel)
					req.Updates = append(req.Updates, &v1.RelationshipUpdate{
						Operation:    v1.RelationshipUpdate_OPERATION_CREATE,
						Relationship: parseCrashRel(rel),
					})
				}
				ledger.add(write)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := client.WriteRelationships(ctx, req)
				cancel()
				if err != nil {
					if !killed.Load() {
						t.Errorf("writer %d: write %v failed before the kill: %v", w, write.rels, err)
					}
					return
				}
				ledger.acknowledge(write)
				tokenMu.Lock()
				if now := time.Now(); now.After(lastAt) {
					lastToken, lastAt = resp.GetWrittenAt(), now
				}
				tokenMu.Unlock()
			}
		}()
	}

	time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
	killed.Store(true)
	proc.kill(t)
	wg.Wait()
	return lastToken
}

// parseCrashRel parses the "document:ID#viewer@user:ID" form that the
// writers generate.
func parseCrashRel(s string) *v1.Relationship {
	resource, subject, _ := strings.Cut(s, "@")
	object, relation, _ := strings.Cut(resource, "#")
	resourceType, resourceID, _ := strings.Cut(object, ":")
	subjectType, subjectID, _ := strings.Cut(subject, ":")
	return &v1.Relationship{
		Resource: &v1.ObjectReference{ObjectType: resourceType, ObjectId: resourceID},
		Relation: relation,
		Subject:  &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: subjectType, ObjectId: subjectID}},
	}
}

// verifyAfterRestart checks the restarted server against the ledger. The
// schema must be there, and the head must be at least the revision of the
// write acknowledged last. Every acknowledged write, and every cut write
// found after an earlier restart, must be complete. A cut write must be
// complete or absent, and no relationship may appear that no write
// created. Each unsettled cut write becomes committed or lost.
func verifyAfterRestart(t *testing.T, client *authzed.Client, ledger *writeLedger, lastToken *v1.ZedToken) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	schema, err := client.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	if err != nil {
		t.Fatalf("ReadSchema after restart: %v", err)
	}
	if schema.GetSchemaText() != crashSchema {
		t.Errorf("schema after restart:\ngot:\n%s\nwant:\n%s", schema.GetSchemaText(), crashSchema)
	}

	// The last acknowledged revision must not be ahead of the head, or the
	// restart lost a revision.
	_, err = client.CheckPermission(ctx, &v1.CheckPermissionRequest{
		Resource:    &v1.ObjectReference{ObjectType: "document", ObjectId: "probe"},
		Permission:  "viewer",
		Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "probe"}},
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: lastToken}},
	})
	if err != nil {
		t.Errorf("check at least as fresh as the last acknowledged write: %v", err)
	}

	present := readAllDocuments(ctx, t, client)
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	known := make(map[string]bool, len(present))
	for _, w := range ledger.writes {
		found := 0
		for _, r := range w.rels {
			known[r] = true
			if present[r] {
				found++
			}
		}
		complete, absent := found == len(w.rels), found == 0
		switch {
		case !complete && !absent:
			t.Errorf("write %v is half-applied: %d of %d relationships present", w.rels, found, len(w.rels))
		case w.outcome == outcomeAcknowledged && !complete:
			t.Errorf("acknowledged write %v is missing after restart", w.rels)
		case w.outcome == outcomeCommitted && !complete:
			t.Errorf("write %v, found after an earlier restart, is missing now", w.rels)
		case w.outcome == outcomeLost && !absent:
			t.Errorf("write %v, missing after an earlier restart, appeared later", w.rels)
		case w.outcome == outcomeCut && complete:
			w.outcome = outcomeCommitted
		case w.outcome == outcomeCut:
			w.outcome = outcomeLost
		}
	}
	for r := range present {
		if !known[r] {
			t.Errorf("relationship %s present after restart, but no write created it", r)
		}
	}
}

// readAllDocuments returns every relationship of the document type, read
// in pages at one revision.
func readAllDocuments(ctx context.Context, t *testing.T, client *authzed.Client) map[string]bool {
	t.Helper()
	present := make(map[string]bool)
	var cursor *v1.Cursor
	for {
		stream, err := client.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
			RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"},
			Consistency:        &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
			OptionalLimit:      crashReadPageSize,
			OptionalCursor:     cursor,
		})
		if err != nil {
			t.Fatalf("ReadRelationships after restart: %v", err)
		}
		received := 0
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("ReadRelationships after restart: %v", err)
			}
			received++
			cursor = resp.GetAfterResultCursor()
			r := resp.GetRelationship()
			key := fmt.Sprintf("%s:%s#%s@%s:%s",
				r.GetResource().GetObjectType(), r.GetResource().GetObjectId(), r.GetRelation(),
				r.GetSubject().GetObject().GetObjectType(), r.GetSubject().GetObject().GetObjectId())
			if present[key] {
				t.Errorf("relationship %s returned twice", key)
			}
			present[key] = true
		}
		if received < crashReadPageSize {
			return present
		}
	}
}
