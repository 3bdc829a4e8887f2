package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/development"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
	"github.com/mandate-iam/mandate/server"
)

// The lookup benchmarks load one generated data set of folders, documents,
// users and nested groups into Mandate and into SpiceDB v1.56.2 in the same
// process. They then read LookupResources for a few users to the end of
// the stream through each server's v1 gRPC service. Both servers are reached
// over an in-process connection (bufconn), so neither pays for a network
// and both pay for gRPC. SpiceDB is the server of its pkg/development
// package over its memdb datastore.

var lookupRelationships = flag.Int("lookup.relationships", 1_000_000,
	"size of the data set that BenchmarkLookupResources loads into both servers")

const lookupSchema = `definition user {}

definition group {
	relation member: user | group#member
}

definition folder {
	relation parent: folder
	relation viewer: user | group#member
	permission view = viewer + parent->view
}

definition document {
	relation folder: folder
	relation viewer: user | group#member
	relation banned: user
	permission view = (viewer + folder->view) - banned
}`

// lookupData is a generated data set of about size relationships:
//
//   - users are members of two groups each, and one group in five is a
//     member of a group with a smaller number, so groups nest;
//   - folders form a tree ten wide, and each folder has one viewer group;
//   - each document is in one folder, about half of the relationships
//     make a user a viewer of a document, and one document in ten bans a
//     user.
type lookupData struct {
	users, groups, folders, documents int
	rels                              []tuple.Relationship
}

func newLookupData(size int, seed uint64) *lookupData {
	d := &lookupData{
		users:     max(size/50, 10),
		groups:    max(size/1000, 10),
		folders:   max(size/100, 20),
		documents: max(size*2/5, 20),
	}
	random := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// Random viewers may repeat a relationship, which both servers would
	// store once, so the data set keeps only the first.
	seen := make(map[tuple.RelationshipReference]struct{}, size)
	add := func(rt string, rid int, rel, st string, sid int, srel string) {
		ref := tuple.RelationshipReference{
			Resource: tuple.ObjectAndRelation{ObjectType: rt, ObjectID: strconv.Itoa(rid), Relation: rel},
			Subject:  tuple.ObjectAndRelation{ObjectType: st, ObjectID: strconv.Itoa(sid), Relation: srel},
		}
		if _, ok := seen[ref]; ok {
			return
		}
		seen[ref] = struct{}{}
		d.rels = append(d.rels, tuple.Relationship{RelationshipReference: ref})
	}

	for u := range d.users {
		first := random.IntN(d.groups)
		second := (first + 1 + random.IntN(d.groups-1)) % d.groups
		add("group", first, "member", "user", u, tuple.Ellipsis)
		add("group", second, "member", "user", u, tuple.Ellipsis)
	}
	for g := 1; g < d.groups; g++ {
		if g%5 == 0 {
			add("group", random.IntN(g), "member", "group", g, "member")
		}
	}

	for f := range d.folders {
		if f >= 10 {
			add("folder", f, "parent", "folder", (f-10)/10, tuple.Ellipsis)
		}
		add("folder", f, "viewer", "group", random.IntN(d.groups), "member")
	}

	for doc := range d.documents {
		add("document", doc, "folder", "folder", random.IntN(d.folders), tuple.Ellipsis)
	}
	for doc := 0; doc < d.documents; doc += 10 {
		add("document", doc, "banned", "user", random.IntN(d.users), tuple.Ellipsis)
	}
	for len(d.rels) < size {
		add("document", random.IntN(d.documents), "viewer", "user", random.IntN(d.users), tuple.Ellipsis)
	}
	return d
}

// lookupUsers are the users whose documents the benchmarks look up.
var lookupUsers = []string{"0", "1", "2"}

// liveHeap returns the bytes of live heap objects after two full
// collections.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// startMandateLookupServer loads d into an in-memory Mandate graph and
// serves it over an in-process connection. It returns the client and the
// live heap that the graph added.
func startMandateLookupServer(tb testing.TB, d *lookupData) (v1.PermissionsServiceClient, *schema.Schema, *graph.Graph, uint64) {
	tb.Helper()
	before := liveHeap()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		tb.Fatalf("open graph: %v", err)
	}
	tb.Cleanup(func() {
		if err := g.Close(); err != nil {
			tb.Errorf("close graph: %v", err)
		}
	})
	_, err = g.Update(context.Background(), func(tx *graph.Tx) error {
		tx.SetSchema(lookupSchema)
		for _, r := range d.rels {
			tx.Touch(relationshipFromSpiceDB(r))
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("write %d relationships: %v", len(d.rels), err)
	}
	heap := liveHeap() - before
	compiled, err := schema.Compile(context.Background(), lookupSchema)
	if err != nil {
		tb.Fatalf("compile lookup schema: %v", err)
	}

	srv, err := server.New(server.Config{Graph: g, InsecureNoAuth: true, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("create server: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		tb.Fatalf("connect to the in-process Mandate server: %v", err)
	}
	tb.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			tb.Errorf("serve: %v", err)
		}
	})
	return v1.NewPermissionsServiceClient(conn), compiled, g, heap
}

// startSpiceDBLookupServer loads d into SpiceDB's development server over
// memdb. It returns the client and the live heap that the server added.
func startSpiceDBLookupServer(tb testing.TB, d *lookupData) (v1.PermissionsServiceClient, uint64) {
	tb.Helper()
	before := liveHeap()
	request := &devinterface.RequestContext{Schema: lookupSchema}
	request.Relationships = make([]*core.RelationTuple, 0, len(d.rels))
	for _, r := range d.rels {
		request.Relationships = append(request.Relationships, r.ToCoreTuple())
	}
	dev, devErrs, err := development.NewDevContext(context.Background(), request)
	if err != nil {
		tb.Fatalf("create SpiceDB development context: %v", err)
	}
	if devErrs != nil {
		tb.Fatalf("create SpiceDB development context: %v", devErrs.GetInputErrors())
	}
	conn, stop, err := dev.RunV1InMemoryService()
	if err != nil {
		tb.Fatalf("start SpiceDB v1 service: %v", err)
	}
	tb.Cleanup(func() {
		stop()
		dev.Dispose()
	})
	request = nil
	heap := liveHeap() - before
	return v1.NewPermissionsServiceClient(conn), heap
}

// lookupAll reads LookupResources for user to the end of its stream and
// returns the resource ids with permission, sorted.
func lookupAll(ctx context.Context, client v1.PermissionsServiceClient, user string) ([]string, error) {
	stream, err := client.LookupResources(ctx, &v1.LookupResourcesRequest{
		ResourceObjectType: "document",
		Permission:         "view",
		Subject:            &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: user}},
		Consistency:        &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if resp.GetPermissionship() != v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION {
			return nil, fmt.Errorf("document:%s is %v, want has_permission", resp.GetResourceObjectId(), resp.GetPermissionship())
		}
		ids = append(ids, resp.GetResourceObjectId())
	}
	slices.Sort(ids)
	return ids, nil
}

// lookupSideBySide is the data set loaded into both servers, with the
// documents that each user of lookupUsers may view.
type lookupSideBySide struct {
	data    *lookupData
	mandate v1.PermissionsServiceClient
	spicedb v1.PermissionsServiceClient
	schema  *schema.Schema
	graph   *graph.Graph
	want    map[string][]string
}

// newLookupSideBySide loads a data set of size relationships into both
// servers and fails unless they return the same documents for every user,
// and the same as Mandate's checks of every document.
func newLookupSideBySide(tb testing.TB, size int) *lookupSideBySide {
	tb.Helper()
	s := &lookupSideBySide{data: newLookupData(size, 1), want: map[string][]string{}}
	var mandateHeap, spicedbHeap uint64
	start := time.Now()
	s.mandate, s.schema, s.graph, mandateHeap = startMandateLookupServer(tb, s.data)
	mandateLoad := time.Since(start)
	start = time.Now()
	s.spicedb, spicedbHeap = startSpiceDBLookupServer(tb, s.data)
	spicedbLoad := time.Since(start)
	tb.Logf("%d relationships: Mandate loaded them in %v into %.1f MiB of live heap, SpiceDB in %v into %.1f MiB",
		len(s.data.rels), mandateLoad.Round(time.Millisecond), float64(mandateHeap)/(1<<20),
		spicedbLoad.Round(time.Millisecond), float64(spicedbHeap)/(1<<20))

	ctx := context.Background()
	snap := s.graph.HeadSnapshot(time.Now())
	for _, user := range lookupUsers {
		fromMandate, err := lookupAll(ctx, s.mandate, user)
		if err != nil {
			tb.Fatalf("Mandate LookupResources for user:%s: %v", user, err)
		}
		fromSpiceDB, err := lookupAll(ctx, s.spicedb, user)
		if err != nil {
			tb.Fatalf("SpiceDB LookupResources for user:%s: %v", user, err)
		}
		if !slices.Equal(fromMandate, fromSpiceDB) {
			tb.Fatalf("LookupResources for user:%s: Mandate returned %d documents and SpiceDB %d, and they differ",
				user, len(fromMandate), len(fromSpiceDB))
		}
		var checked []string
		subject := graph.SubjectRef{Type: "user", ID: user, Relation: graph.Ellipsis}
		for doc := range s.data.documents {
			id := strconv.Itoa(doc)
			res, err := engine.Check(s.schema, snap, engine.Limits{}, engine.CheckRequest{
				Resource: graph.ObjectRef{Type: "document", ID: id}, Permission: "view", Subject: subject,
			})
			if err != nil {
				tb.Fatalf("check document:%s#view@user:%s: %v", id, user, err)
			}
			if res.Membership == engine.HasPermission {
				checked = append(checked, id)
			}
		}
		slices.Sort(checked)
		if !slices.Equal(fromMandate, checked) {
			tb.Fatalf("LookupResources for user:%s returned %d documents, and checks allow %d", user, len(fromMandate), len(checked))
		}
		if len(checked) == 0 {
			tb.Fatalf("user:%s may view no document: the data set does not exercise the lookup", user)
		}
		tb.Logf("user:%s may view %d documents", user, len(checked))
		s.want[user] = fromMandate
	}
	return s
}

// TestLookupResourcesSideBySide loads a small data set of the lookup
// benchmark into both servers and compares their lookups with each other
// and with Mandate's checks, as the benchmark does before timing.
func TestLookupResourcesSideBySide(t *testing.T) {
	newLookupSideBySide(t, 20_000)
}

// BenchmarkLookupResources reads every document that a user may view
// through Mandate's and SpiceDB's gRPC servers, on lookup.relationships
// relationships, and through Mandate's engine without gRPC.
func BenchmarkLookupResources(b *testing.B) {
	s := newLookupSideBySide(b, *lookupRelationships)
	ctx := context.Background()
	for _, user := range lookupUsers {
		want := len(s.want[user])
		for _, side := range []struct {
			name   string
			client v1.PermissionsServiceClient
		}{{"mandate", s.mandate}, {"spicedb", s.spicedb}} {
			b.Run(fmt.Sprintf("user%s/%s", user, side.name), func(b *testing.B) {
				collectGarbage()
				b.ReportAllocs()
				cpuBefore := processCPUTime(b)
				for b.Loop() {
					ids, err := lookupAll(ctx, side.client, user)
					if err != nil {
						b.Fatalf("LookupResources for user:%s: %v", user, err)
					}
					if len(ids) != want {
						b.Fatalf("LookupResources for user:%s returned %d documents, want %d", user, len(ids), want)
					}
				}
				reportCPUTime(b, cpuBefore)
				b.ReportMetric(float64(want), "resources")
			})
		}
		b.Run(fmt.Sprintf("user%s/mandate-engine", user), func(b *testing.B) {
			collectGarbage()
			req := engine.LookupResourcesRequest{
				ResourceType: "document", Permission: "view",
				Subject: graph.SubjectRef{Type: "user", ID: user, Relation: graph.Ellipsis},
			}
			b.ReportAllocs()
			cpuBefore := processCPUTime(b)
			for b.Loop() {
				got, _, err := engine.LookupResources(s.schema, s.graph.HeadSnapshot(time.Now()), engine.Limits{}, req)
				if err != nil {
					b.Fatalf("LookupResources for user:%s: %v", user, err)
				}
				if len(got) != want {
					b.Fatalf("LookupResources for user:%s returned %d documents, want %d", user, len(got), want)
				}
			}
			reportCPUTime(b, cpuBefore)
			b.ReportMetric(float64(want), "resources")
		})
	}
}

// BenchmarkLookupDataMemory loads the lookup benchmark's data set of
// lookup.relationships relationships into each server in turn and reports
// the live heap that the server added (heap-MiB) and that heap per million
// relationships (MiB/M). Run it with -benchtime 1x: each iteration loads
// the data again.
func BenchmarkLookupDataMemory(b *testing.B) {
	d := newLookupData(*lookupRelationships, 1)
	report := func(b *testing.B, heap uint64) {
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(heap)/(1<<20)/(float64(len(d.rels))/1e6), "MiB/M")
	}
	b.Run("mandate", func(b *testing.B) {
		for b.Loop() {
			_, _, _, heap := startMandateLookupServer(b, d)
			report(b, heap)
		}
	})
	b.Run("spicedb", func(b *testing.B) {
		for b.Loop() {
			_, heap := startSpiceDBLookupServer(b, d)
			report(b, heap)
		}
	})
}
