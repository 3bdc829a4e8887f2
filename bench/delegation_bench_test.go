package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/delegation"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
	"github.com/mandate-iam/mandate/schema"
)

// The delegation benchmarks compare a check through a chain of 1, 2 and 3
// delegations with the same check asked directly by the delegate. The graph
// uses the default Agent IAM schema: dataset:revenue is in folder:q3, whose
// parent is folder:finance, which the finance department may read. Agents
// a0 to a3 are finance members, and the chain is
//
//	d1: agent:a0      -> a1  read@folder:finance/...
//	d2: delegation:d1 -> a2  read@folder:q3/...
//	d3: delegation:d2 -> a3  read@dataset:revenue
//
// so every principal reaches revenue by the same three-level path, and
// every link's scope covers it.

// delegationBenchStart is the fixed time of the benchmark graph.
var delegationBenchStart = time.Date(2025, time.June, 11, 10, 0, 0, 0, time.UTC)

// delegationFixture is the benchmark graph at its head revision.
type delegationFixture struct {
	schema *schema.Schema
	snap   graph.Snapshot
}

func newDelegationFixture(tb testing.TB) *delegationFixture {
	tb.Helper()
	now := delegationBenchStart
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{Clock: func() time.Time { return now }})
	if err != nil {
		tb.Fatalf("open graph: %v", err)
	}
	tb.Cleanup(func() { g.Close() })
	compiled, err := schema.Compile(context.Background(), schema.AgentIAM)
	if err != nil {
		tb.Fatalf("compile the default schema: %v", err)
	}
	ctx := context.Background()
	if _, err := g.Update(ctx, func(tx *graph.Tx) error {
		tx.SetSchema(schema.AgentIAM)
		return nil
	}); err != nil {
		tb.Fatalf("write the default schema: %v", err)
	}

	_, err = g.Update(ctx, func(tx *graph.Tx) error {
		for i := range 4 {
			seed := make([]byte, ed25519.SeedSize)
			seed[0] = byte(i)
			a := &identity.Agent{
				ID: fmt.Sprintf("a%d", i), Owner: "alice", Department: "finance",
				PublicKey: ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey),
			}
			if err := identity.Create(tx, a, now); err != nil {
				return err
			}
		}
		for _, k := range []graph.Key{
			{ResourceType: "folder", ResourceID: "finance", Relation: "reader",
				Subject: graph.SubjectRef{Type: "department", ID: "finance", Relation: "member"}},
			{ResourceType: "folder", ResourceID: "q3", Relation: "parent",
				Subject: graph.SubjectRef{Type: "folder", ID: "finance"}},
			{ResourceType: "dataset", ResourceID: "revenue", Relation: "folder",
				Subject: graph.SubjectRef{Type: "folder", ID: "q3"}},
		} {
			tx.Touch(&graph.Relationship{Key: k})
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("write agents and relationships: %v", err)
	}

	chain := []delegation.Request{
		{ID: "d1", Delegator: "agent:a0", Delegate: "a1", MaxDepth: 2,
			Scope: []delegation.Scope{{Permissions: []string{"read"}, Resource: "folder:finance/..."}}},
		{ID: "d2", Delegator: "delegation:d1", Delegate: "a2", MaxDepth: 1,
			Scope: []delegation.Scope{{Permissions: []string{"read"}, Resource: "folder:q3/..."}}},
		{ID: "d3", Delegator: "delegation:d2", Delegate: "a3",
			Scope: []delegation.Scope{{Permissions: []string{"read"}, Resource: "dataset:revenue"}}},
	}
	for _, req := range chain {
		// Each delegation gets its own transaction, because Create reads
		// the parent's chain from the snapshot the transaction started at.
		if _, err := g.Update(ctx, func(tx *graph.Tx) error {
			_, err := delegation.Create(compiled, tx, req, now)
			return err
		}); err != nil {
			tb.Fatalf("create delegation %s: %v", req.ID, err)
		}
	}
	return &delegationFixture{schema: compiled, snap: g.HeadSnapshot(now)}
}

// check runs engine.Check of read on resource with the policy the server
// builds for every request: the identity gate and trusted context, and
// delegation chains.
func (f *delegationFixture) check(resource graph.ObjectRef, subject graph.SubjectRef) (engine.Result, error) {
	policy := delegation.Extend(identity.Policy(f.schema, f.snap, f.snap.Now), f.schema, f.snap, f.snap.Now)
	return engine.Check(f.schema, f.snap, engine.Limits{}, engine.CheckRequest{
		Resource: resource, Permission: "read", Subject: subject, Policy: policy,
	})
}

var (
	benchRevenue = graph.ObjectRef{Type: "dataset", ID: "revenue"}
	benchQ3      = graph.ObjectRef{Type: "folder", ID: "q3"}
)

// delegationChecks are the benchmarked subjects. Each may read
// dataset:revenue.
var delegationChecks = []struct {
	name    string
	subject graph.SubjectRef
}{
	{"direct", graph.SubjectRef{Type: "agent", ID: "a3"}},
	{"1hop", graph.SubjectRef{Type: "delegation", ID: "d1"}},
	{"2hops", graph.SubjectRef{Type: "delegation", ID: "d2"}},
	{"3hops", graph.SubjectRef{Type: "delegation", ID: "d3"}},
}

func BenchmarkDelegationCheck(b *testing.B) {
	f := newDelegationFixture(b)
	for _, c := range delegationChecks {
		b.Run(c.name, func(b *testing.B) {
			if res, err := f.check(benchRevenue, c.subject); err != nil || res.Membership != engine.HasPermission {
				b.Fatalf("check dataset:revenue read %s = %v, %v; want has_permission", c.subject, res.Membership, err)
			}
			b.ReportAllocs()
			cpuBefore := processCPUTime(b)
			for b.Loop() {
				if _, err := f.check(benchRevenue, c.subject); err != nil {
					b.Fatalf("check dataset:revenue read %s: %v", c.subject, err)
				}
			}
			cpu := processCPUTime(b) - cpuBefore
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPUTime returns the user and system CPU time of the whole
// process. Reported per op next to ns/op, it is less sensitive than wall
// time to other processes competing for the CPUs, but it includes the
// garbage collector's background work.
func processCPUTime(b *testing.B) time.Duration {
	b.Helper()
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// TestDelegationCheckScenarios runs each benchmarked check once, so that a
// scenario cannot silently stop returning has_permission. It also checks
// that d3 does not grant folder:q3, which a3 may read but d3's scope
// leaves out.
func TestDelegationCheckScenarios(t *testing.T) {
	f := newDelegationFixture(t)
	for _, c := range delegationChecks {
		res, err := f.check(benchRevenue, c.subject)
		if err != nil {
			t.Fatalf("check dataset:revenue read %s: %v", c.subject, err)
		}
		if res.Membership != engine.HasPermission {
			t.Errorf("check dataset:revenue read %s = %v, want has_permission", c.subject, res.Membership)
		}
	}
	direct, err := f.check(benchQ3, graph.SubjectRef{Type: "agent", ID: "a3"})
	if err != nil {
		t.Fatalf("check folder:q3 read agent:a3: %v", err)
	}
	if direct.Membership != engine.HasPermission {
		t.Errorf("check folder:q3 read agent:a3 = %v, want has_permission", direct.Membership)
	}
	through, err := f.check(benchQ3, graph.SubjectRef{Type: "delegation", ID: "d3"})
	if err != nil {
		t.Fatalf("check folder:q3 read delegation:d3: %v", err)
	}
	if through.Membership != engine.NoPermission {
		t.Errorf("check folder:q3 read delegation:d3 = %v, want no_permission", through.Membership)
	}
}
