package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	spicebench "github.com/authzed/spicedb/pkg/benchmarks"
	"github.com/authzed/spicedb/pkg/datalayer"
	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/development"
	"github.com/authzed/spicedb/pkg/embedded"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// The side-by-side benchmarks run the check scenarios that SpiceDB v1.56.2
// ships in its pkg/benchmarks package against both engines in one process.
// Each scenario's Setup writes its schema and relationships to a SpiceDB
// memdb datastore. The same schema text and relationships are then read
// back from that datastore and written to a Mandate graph, so both engines
// answer the same questions on the same data. Every check query of a
// scenario expects has_permission, and both engines are held to it on
// every iteration.

// sideBySide is one SpiceDB benchmark scenario loaded into both engines.
type sideBySide struct {
	name    string
	queries *spicebench.QuerySets
	limits  engine.Limits

	spicedb *embedded.Permissions
	mandate *fixture
}

// newSideBySide runs the scenario's Setup on a new memdb datastore and
// copies its schema and relationships into a new in-memory Mandate graph.
func newSideBySide(tb testing.TB, scenario spicebench.Benchmark) *sideBySide {
	tb.Helper()
	ctx := context.Background()
	ds := newSpiceDBMemdb(tb, ctx)
	queries, err := scenario.Setup(ctx, ds)
	if err != nil {
		tb.Fatalf("set up SpiceDB scenario %s: %v", scenario.Name, err)
	}
	if len(queries.Checks) == 0 {
		tb.Fatalf("SpiceDB scenario %s has no check queries", scenario.Name)
	}

	// The configuration that pkg/embedded's README (v1.56.2) recommends:
	// the unified stored schema, which the scenarios write, cached across
	// checks so that compiled schema state is reused.
	maxDepth := queries.MaxRecursionDepth
	perms, err := embedded.NewPermissions(embedded.Config{
		Datastore:               ds,
		SchemaMode:              datalayer.SchemaModeReadNewWriteNew,
		SchemaCacheMaxCostBytes: 16 << 20,
		MaxDepth:                uint32(max(maxDepth, 0)),
	})
	if err != nil {
		tb.Fatalf("create SpiceDB embedded checker: %v", err)
	}
	tb.Cleanup(func() {
		if err := perms.Close(); err != nil {
			tb.Errorf("close SpiceDB embedded checker: %v", err)
		}
	})

	text, rels := readSpiceDBData(tb, ctx, ds)
	return &sideBySide{
		name:    scenario.Name,
		queries: queries,
		limits:  engine.Limits{MaxDepth: maxDepth},
		spicedb: perms,
		mandate: newMandateFixture(tb, text, rels),
	}
}

// newSpiceDBMemdb returns an empty SpiceDB memdb datastore with garbage
// collection off. It takes the datastore of SpiceDB's development context,
// because pkg/development is the public package that creates memdb
// without linking every other datastore engine into the test binary. The
// placeholder schema it writes is replaced by each scenario's Setup.
func newSpiceDBMemdb(tb testing.TB, ctx context.Context) datastore.Datastore {
	tb.Helper()
	dev, devErrs, err := development.NewDevContext(ctx, &devinterface.RequestContext{Schema: "definition user {}"})
	if err != nil {
		tb.Fatalf("create SpiceDB development context: %v", err)
	}
	if devErrs != nil {
		tb.Fatalf("create SpiceDB development context: %v", devErrs.GetInputErrors())
	}
	tb.Cleanup(func() {
		if err := dev.DataLayer.Close(); err != nil {
			tb.Errorf("close SpiceDB datastore: %v", err)
		}
	})
	ds := datalayer.UnwrapDatastore(dev.DataLayer)
	if ds == nil {
		tb.Fatal("SpiceDB development context has no datastore")
	}
	return ds
}

// readSpiceDBData returns the schema text and every relationship of ds at
// its head revision.
func readSpiceDBData(tb testing.TB, ctx context.Context, ds datastore.Datastore) (string, []*graph.Relationship) {
	tb.Helper()
	head, err := ds.HeadRevision(ctx)
	if err != nil {
		tb.Fatalf("read SpiceDB head revision: %v", err)
	}
	reader := ds.SnapshotReader(head.Revision)
	stored, err := reader.ReadStoredSchema(ctx)
	if err != nil {
		tb.Fatalf("read SpiceDB stored schema: %v", err)
	}
	text := stored.Get().GetV1().GetSchemaText()
	compiled, err := schema.Compile(ctx, text)
	if err != nil {
		tb.Fatalf("compile the scenario schema in Mandate: %v", err)
	}
	var rels []*graph.Relationship
	for name := range compiled.Definitions {
		it, err := reader.QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: name})
		if err != nil {
			tb.Fatalf("query SpiceDB relationships of %s: %v", name, err)
		}
		for rel, err := range it {
			if err != nil {
				tb.Fatalf("read SpiceDB relationships of %s: %v", name, err)
			}
			rels = append(rels, relationshipFromSpiceDB(rel))
		}
	}
	return text, rels
}

func relationshipFromSpiceDB(rel tuple.Relationship) *graph.Relationship {
	subjectRelation := rel.Subject.Relation
	if subjectRelation == tuple.Ellipsis {
		subjectRelation = graph.Ellipsis
	}
	r := &graph.Relationship{Key: graph.Key{
		ResourceType: rel.Resource.ObjectType,
		ResourceID:   rel.Resource.ObjectID,
		Relation:     rel.Resource.Relation,
		Subject: graph.SubjectRef{
			Type: rel.Subject.ObjectType, ID: rel.Subject.ObjectID, Relation: subjectRelation,
		},
	}}
	if c := rel.OptionalCaveat; c != nil {
		r.Caveat = c.CaveatName
		if fields := c.GetContext().AsMap(); len(fields) > 0 {
			r.CaveatContext = fields
		}
	}
	if rel.OptionalExpiration != nil {
		r.Expiration = *rel.OptionalExpiration
	}
	return r
}

// newMandateFixture writes schemaText and rels to a graph over an
// in-memory store, in one transaction.
func newMandateFixture(tb testing.TB, schemaText string, rels []*graph.Relationship) *fixture {
	tb.Helper()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		tb.Fatalf("open graph: %v", err)
	}
	tb.Cleanup(func() {
		if err := g.Close(); err != nil {
			tb.Errorf("close graph: %v", err)
		}
	})
	compiled, err := schema.Compile(context.Background(), schemaText)
	if err != nil {
		tb.Fatalf("compile scenario schema: %v", err)
	}
	_, err = g.Update(context.Background(), func(tx *graph.Tx) error {
		tx.SetSchema(schemaText)
		for _, r := range rels {
			tx.Touch(r)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("write %d relationships: %v", len(rels), err)
	}
	return &fixture{graph: g, schema: compiled}
}

// sideBySideScenarios returns SpiceDB's registered scenarios sorted by name.
func sideBySideScenarios() []spicebench.Benchmark {
	all := spicebench.All()
	slices.SortFunc(all, func(a, b spicebench.Benchmark) int { return strings.Compare(a.Name, b.Name) })
	return all
}

func mandateCheckRequest(q spicebench.CheckQuery) engine.CheckRequest {
	subjectRelation := q.SubjectRelation
	if subjectRelation == tuple.Ellipsis {
		subjectRelation = graph.Ellipsis
	}
	return engine.CheckRequest{
		Resource:   graph.ObjectRef{Type: q.ResourceType, ID: q.ResourceID},
		Permission: q.Permission,
		Subject:    graph.SubjectRef{Type: q.SubjectType, ID: q.SubjectID, Relation: subjectRelation},
	}
}

func spicedbCheckRequest(q spicebench.CheckQuery) embedded.CheckRequest {
	return embedded.CheckRequest{
		ResourceType:    q.ResourceType,
		ResourceID:      q.ResourceID,
		Permission:      q.Permission,
		SubjectType:     q.SubjectType,
		SubjectID:       q.SubjectID,
		SubjectRelation: q.SubjectRelation,
	}
}

func grpcCheckRequest(q spicebench.CheckQuery) *v1.CheckPermissionRequest {
	subject := &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: q.SubjectType, ObjectId: q.SubjectID}}
	if q.SubjectRelation != tuple.Ellipsis {
		subject.OptionalRelation = q.SubjectRelation
	}
	return &v1.CheckPermissionRequest{
		Resource:   &v1.ObjectReference{ObjectType: q.ResourceType, ObjectId: q.ResourceID},
		Permission: q.Permission,
		Subject:    subject,
	}
}

func describeQuery(q spicebench.CheckQuery) string {
	subject := q.SubjectType + ":" + q.SubjectID
	if q.SubjectRelation != tuple.Ellipsis && q.SubjectRelation != "" {
		subject += "#" + q.SubjectRelation
	}
	return fmt.Sprintf("%s:%s#%s@%s", q.ResourceType, q.ResourceID, q.Permission, subject)
}

func describeEmbedded(req embedded.CheckRequest) string {
	return describeQuery(spicebench.CheckQuery{
		ResourceType: req.ResourceType, ResourceID: req.ResourceID, Permission: req.Permission,
		SubjectType: req.SubjectType, SubjectID: req.SubjectID, SubjectRelation: req.SubjectRelation,
	})
}

// checkMandate runs one check on the head snapshot, as a request to the
// server would, and fails unless it returns has_permission.
func (s *sideBySide) checkMandate(tb testing.TB, req engine.CheckRequest) {
	res, err := engine.Check(s.mandate.schema, s.mandate.graph.HeadSnapshot(time.Now()), s.limits, req)
	if err != nil {
		tb.Fatalf("Mandate check %s: %v", describe(req), err)
	}
	if res.Membership != engine.HasPermission {
		tb.Fatalf("Mandate check %s = %v, want has_permission", describe(req), res.Membership)
	}
}

// checkSpiceDB runs one check in SpiceDB's embedded checker and fails
// unless it returns has_permission.
func (s *sideBySide) checkSpiceDB(tb testing.TB, ctx context.Context, req embedded.CheckRequest) {
	res, err := s.spicedb.Check(ctx, req)
	if err != nil {
		tb.Fatalf("SpiceDB check %s: %v", describeEmbedded(req), err)
	}
	if !res.HasPermission {
		tb.Fatalf("SpiceDB check %s = %+v, want has_permission", describeEmbedded(req), res)
	}
}

// collectGarbage runs a full garbage collection, so that the CPU time of
// collecting the previous benchmark's garbage, which SpiceDB makes much
// more of, is not counted in the next benchmark's cpu-ns/op.
func collectGarbage() { runtime.GC() }

// BenchmarkSpiceDBScenarios runs every check query of SpiceDB's benchmark
// scenarios in Mandate's engine, in SpiceDB's embedded checker, and
// through Mandate's gRPC CheckPermission on 127.0.0.1.
func BenchmarkSpiceDBScenarios(b *testing.B) {
	for _, scenario := range sideBySideScenarios() {
		b.Run(scenario.Name, func(b *testing.B) {
			s := newSideBySide(b, scenario)
			for i, q := range s.queries.Checks {
				name := fmt.Sprintf("check%d", i)
				if len(s.queries.Checks) == 1 {
					name = "check"
				}
				b.Run(name+"/mandate", func(b *testing.B) {
					req := mandateCheckRequest(q)
					s.checkMandate(b, req)
					b.ReportAllocs()
					collectGarbage()
					cpuBefore := processCPUTime(b)
					for b.Loop() {
						s.checkMandate(b, req)
					}
					reportCPUTime(b, cpuBefore)
				})
				b.Run(name+"/spicedb", func(b *testing.B) {
					ctx := context.Background()
					req := spicedbCheckRequest(q)
					s.checkSpiceDB(b, ctx, req)
					b.ReportAllocs()
					collectGarbage()
					cpuBefore := processCPUTime(b)
					for b.Loop() {
						s.checkSpiceDB(b, ctx, req)
					}
					reportCPUTime(b, cpuBefore)
				})
				b.Run(name+"/mandate-grpc", func(b *testing.B) {
					client := startServer(b, s.mandate)
					ctx := context.Background()
					req := grpcCheckRequest(q)
					check := func() {
						resp, err := client.CheckPermission(ctx, req)
						if err != nil {
							b.Fatalf("Mandate CheckPermission %s: %v", describeQuery(q), err)
						}
						if got := resp.GetPermissionship(); got != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
							b.Fatalf("Mandate CheckPermission %s = %v, want PERMISSIONSHIP_HAS_PERMISSION", describeQuery(q), got)
						}
					}
					check()
					b.ReportAllocs()
					collectGarbage()
					cpuBefore := processCPUTime(b)
					for b.Loop() {
						check()
					}
					reportCPUTime(b, cpuBefore)
				})
			}
		})
	}
}

// TestSpiceDBScenarios runs every check query of SpiceDB's benchmark
// scenarios once in each engine, so that the test suite notices when
// either stops returning the expected has_permission. It also checks that
// both deny the same query for a subject without relationships.
func TestSpiceDBScenarios(t *testing.T) {
	scenarios := sideBySideScenarios()
	if len(scenarios) == 0 {
		t.Fatal("SpiceDB's pkg/benchmarks registered no scenarios")
	}
	for _, scenario := range scenarios {
		t.Run(scenario.Name, func(t *testing.T) {
			s := newSideBySide(t, scenario)
			for _, q := range s.queries.Checks {
				s.checkMandate(t, mandateCheckRequest(q))
				s.checkSpiceDB(t, context.Background(), spicedbCheckRequest(q))

				// The same question about a subject without relationships
				// must be denied by both.
				q.SubjectID = "no-such-subject"
				denied, err := engine.Check(s.mandate.schema, s.mandate.graph.HeadSnapshot(time.Now()), s.limits, mandateCheckRequest(q))
				if err != nil {
					t.Fatalf("Mandate check %s: %v", describeQuery(q), err)
				}
				if denied.Membership != engine.NoPermission {
					t.Errorf("Mandate check %s = %v, want no_permission", describeQuery(q), denied.Membership)
				}
				spiceDenied, err := s.spicedb.Check(context.Background(), spicedbCheckRequest(q))
				if err != nil {
					t.Fatalf("SpiceDB check %s: %v", describeQuery(q), err)
				}
				if spiceDenied.HasPermission || spiceDenied.IsConditional {
					t.Errorf("SpiceDB check %s = %+v, want no permission", describeQuery(q), spiceDenied)
				}
			}
		})
	}
}
