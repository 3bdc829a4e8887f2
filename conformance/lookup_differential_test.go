package conformance

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
	"github.com/mandate-iam/mandate/server"
)

// Each random case compares this many LookupResources and as many
// LookupSubjects queries, drawn at random from all those of its schema.
const differentialLookupsPerCase = 8

// differentialPageSizes are the page sizes at which the random cases read
// Mandate's lookups; the validation files use all of lookupPageSizes.
var differentialPageSizes = []uint32{0, 1}

// compareScenarioLookups compares random lookups on a Mandate server of g,
// which holds a random case, with Mandate's checks and with SpiceDB's
// lookups on spicedb.
func compareScenarioLookups(t *testing.T, seed uint64, g *graph.Graph, compiled *schema.Schema, spicedb v1.PermissionsServiceClient, reduced *reducedScenario) lookupStats {
	t.Helper()
	mandate := serveGraph(t, g)
	run := newLookupRun(t, "random case", compiled, scenarioUniverse(compiled), mandate, spicedb)
	run.pageSizes = differentialPageSizes
	run.maxProblems = maxMismatchesPerSeed
	run.explain = explainSpiceDBContradiction
	run.countUnexplained = true
	if reduced != nil {
		run.reducedSpiceDB = func(ctx context.Context) v1.PermissionsServiceClient { return reduced.spicedb(ctx, t) }
	}

	ctx := context.Background()
	random := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	resourceQueries := run.resourceQueries()
	subjectQueries := run.subjectQueries()
	for range differentialLookupsPerCase {
		run.runResourceQuery(ctx, resourceQueries[random.IntN(len(resourceQueries))])
		run.runSubjectQuery(ctx, subjectQueries[random.IntN(len(subjectQueries))])
	}
	return run.stats
}

// scenarioUniverse lists the objects of the random cases, user:u4 that
// no relationship names among them, every object as a subject by itself
// and through each of its relations and permissions, and the contexts of
// the checks.
func scenarioUniverse(s *schema.Schema) lookupUniverse {
	u := lookupUniverse{contexts: checkContexts}
	for _, typ := range []string{"user", "group", "folder", "doc"} {
		for _, id := range objectIDs[typ] {
			u.objects = append(u.objects, graph.ObjectRef{Type: typ, ID: id})
		}
	}
	u.objects = append(u.objects, graph.ObjectRef{Type: "user", ID: "u4"})
	u.subjects = subjectsOf(s, u.objects)
	return u
}

// startScenarioServer serves sc from a Mandate server on an in-memory
// graph over an in-process connection, which closes when the test ends.
func startScenarioServer(t *testing.T, sc scenario) v1.PermissionsServiceClient {
	t.Helper()
	return serveGraph(t, scenarioGraph(t, sc))
}

// serveGraph serves g from a Mandate server over an in-process
// connection, which closes when the test ends.
func serveGraph(t *testing.T, g *graph.Graph) v1.PermissionsServiceClient {
	t.Helper()
	srv, err := server.New(server.Config{Graph: g, InsecureNoAuth: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("create server: %v", err)
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
		t.Fatalf("connect to the in-process server: %v", err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("close connection: %v", err)
		}
		cancel()
		select {
		case err := <-served:
			if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop within 15s")
		}
	})
	return v1.NewPermissionsServiceClient(conn)
}
