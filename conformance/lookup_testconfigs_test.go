package conformance

import (
	"context"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/development"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/authzed/spicedb/pkg/validationfile"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// lookupPageSizes are the page sizes at which every lookup is read, 0
// meaning one call without a limit.
var lookupPageSizes = []uint32{0, 1, 2, 7}

// unmentionedSubjectID is the id of a subject of each type that no
// relationship or assertion names, so only a wildcard can grant it a
// permission.
const unmentionedSubjectID = "unmentioned_subject"

// maxLookupProblems bounds the differences reported for one validation
// file, because one bug usually shows up in many lookups.
const maxLookupProblems = 10

// TestSpiceDBTestConfigsLookups runs LookupResources and LookupSubjects
// on a Mandate server loaded with each validation file of SpiceDB's
// integration tests, for every resource, permission and subject the file
// names, at each page size of lookupPageSizes. Each lookup must agree with
// CheckPermission on the same server: every resource or subject that a
// check grants is returned once, with the check's permissionship, and
// nothing else is. A wildcard and its excluded subjects must imply the
// check's result for every concrete subject, including one that no
// relationship names.
//
// The unpaged results are also compared with SpiceDB's own lookups on its
// development server. Where SpiceDB's lookup contradicts its own
// CheckPermission, the check is the reference. The case must then be of a
// kind that explainSpiceDBContradiction names, or the query must be
// listed in spicedbLookupContradictions.
func TestSpiceDBTestConfigsLookups(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every lookup of every validation file at four page sizes; skipped with -short")
	}
	dir := filepath.Join(spicedbModuleDir(t), "internal", "services", "integrationtesting", "testconfigs")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatalf("list validation files in %s: %v", dir, err)
	}
	if len(paths) == 0 {
		t.Fatalf("no validation files found in %s", dir)
	}
	var mu sync.Mutex
	total := lookupStats{}
	usedContradictions := map[string]bool{}
	t.Run("files", func(t *testing.T) {
		for _, path := range paths {
			name := strings.TrimSuffix(filepath.Base(path), ".yaml")
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				stats, used := runLookupFile(t, name, path)
				mu.Lock()
				defer mu.Unlock()
				total.add(stats)
				for key := range used {
					usedContradictions[key] = true
				}
			})
		}
	})
	logLookupStats(t, total)
	if !t.Failed() && isFullRun() {
		for key := range spicedbLookupContradictions {
			if !usedContradictions[key] {
				t.Errorf("spicedbLookupContradictions lists %q, but SpiceDB's lookup now agrees with its check: remove it", key)
			}
		}
	}
}

// isFullRun reports whether the test runs every validation file, so
// that an unused entry of an exclusion list is stale.
func isFullRun() bool {
	run := flag.Lookup("test.run").Value.String()
	return run == "" || run == "TestSpiceDBTestConfigsLookups" || run == "^TestSpiceDBTestConfigsLookups$"
}

// lookupStats counts the work of the lookup comparisons.
type lookupStats struct {
	resourceQueries     int
	subjectQueries      int
	pages               int
	checks              int
	comparedWithSpiceDB int
	// contradictions counts queries where SpiceDB's lookup contradicts
	// its own check, and explained counts the results of those queries
	// by the kind of case that explains them.
	contradictions int
	explained      map[string]int
	// unexplained counts the queries of the random cases with a
	// contradiction of a kind that explainSpiceDBContradiction does not
	// name; see lookupRun.countUnexplained.
	unexplained   int
	failedInBoth  int
	droppedTraits int
	// notSentToSpiceDB counts queries on which SpiceDB would panic.
	notSentToSpiceDB int
}

func (s *lookupStats) add(o lookupStats) {
	s.resourceQueries += o.resourceQueries
	s.subjectQueries += o.subjectQueries
	s.pages += o.pages
	s.checks += o.checks
	s.comparedWithSpiceDB += o.comparedWithSpiceDB
	s.contradictions += o.contradictions
	s.unexplained += o.unexplained
	s.failedInBoth += o.failedInBoth
	s.droppedTraits += o.droppedTraits
	s.notSentToSpiceDB += o.notSentToSpiceDB
	for kind, n := range o.explained {
		if s.explained == nil {
			s.explained = map[string]int{}
		}
		s.explained[kind] += n
	}
}

// logLookupStats writes a summary of stats to the test log.
func logLookupStats(t *testing.T, stats lookupStats) {
	t.Helper()
	t.Logf("compared %d LookupResources and %d LookupSubjects queries (%d calls to Mandate) with %d of Mandate's checks",
		stats.resourceQueries, stats.subjectQueries, stats.pages, stats.checks)
	t.Logf("compared %d queries with SpiceDB: %d where SpiceDB's lookup contradicts its check, %d failed in both or not finished by SpiceDB, %d explained by SpiceDB dropping caveats or expiration",
		stats.comparedWithSpiceDB, stats.contradictions, stats.failedInBoth, stats.droppedTraits)
	t.Logf("not sent to SpiceDB, which would panic: %d LookupResources queries", stats.notSentToSpiceDB)
	if stats.unexplained > 0 {
		t.Logf("%d queries where SpiceDB's lookup contradicts its check in a way of no kind named yet (logged as \"unclassified\"); Mandate agrees with the check in each",
			stats.unexplained)
	}
	for _, kind := range slices.Sorted(maps.Keys(stats.explained)) {
		t.Logf("  %d results: %s", stats.explained[kind], kind)
	}
}

// lookupUniverse is what a validation file names: the objects in its
// relationships and assertions, the subjects built from them, and the
// caveat contexts of its assertions.
type lookupUniverse struct {
	objects []graph.ObjectRef
	// subjects are each object, each object through each relation and
	// permission of its type, and an unmentioned subject of each type.
	subjects []graph.SubjectRef
	// contexts starts with nil, for no context.
	contexts []map[string]any
}

func newLookupUniverse(s *schema.Schema, vf *validationfile.ValidationFile) lookupUniverse {
	objects := map[graph.ObjectRef]bool{}
	addObject := func(onr tuple.ObjectAndRelation) {
		if onr.ObjectID != tuple.PublicWildcard && s.Definition(onr.ObjectType) != nil {
			objects[graph.ObjectRef{Type: onr.ObjectType, ID: onr.ObjectID}] = true
		}
	}
	for _, rel := range vf.Relationships.Relationships {
		addObject(rel.Resource)
		addObject(rel.Subject)
	}
	u := lookupUniverse{contexts: []map[string]any{nil}}
	seenContexts := map[string]bool{"null": true}
	assertions := slices.Concat(vf.Assertions.AssertTrue, vf.Assertions.AssertCaveated, vf.Assertions.AssertFalse)
	for _, a := range assertions {
		addObject(a.Relationship.Resource)
		addObject(a.Relationship.Subject)
		key, _ := json.Marshal(a.CaveatContext)
		if !seenContexts[string(key)] {
			seenContexts[string(key)] = true
			u.contexts = append(u.contexts, a.CaveatContext)
		}
	}

	u.objects = sortedKeys(objects, func(o graph.ObjectRef) string { return o.Type + ":" + o.ID })
	u.subjects = subjectsOf(s, u.objects)
	types := map[string]bool{}
	for _, o := range u.objects {
		types[o.Type] = true
	}
	for _, typ := range slices.Sorted(maps.Keys(types)) {
		u.subjects = append(u.subjects, graph.SubjectRef{Type: typ, ID: unmentionedSubjectID})
	}
	return u
}

// subjectsOf returns each object as a subject by itself and through each
// relation and permission of its type.
func subjectsOf(s *schema.Schema, objects []graph.ObjectRef) []graph.SubjectRef {
	var out []graph.SubjectRef
	for _, o := range objects {
		out = append(out, graph.SubjectRef{Type: o.Type, ID: o.ID})
		for _, relation := range s.Definition(o.Type).Order {
			out = append(out, graph.SubjectRef{Type: o.Type, ID: o.ID, Relation: relation})
		}
	}
	return out
}

// subjectType is the type and subject relation of a LookupSubjects query.
type subjectType struct {
	typ, relation string
}

func (st subjectType) String() string {
	if st.relation == graph.Ellipsis {
		return st.typ
	}
	return st.typ + "#" + st.relation
}

// subjectTypes returns the distinct types and relations of the subjects.
func (u lookupUniverse) subjectTypes() []subjectType {
	var out []subjectType
	for _, s := range u.subjects {
		st := subjectType{s.Type, s.Relation}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out
}

// contextSuffix formats a caveat context for a query's name.
func contextSuffix(caveatContext map[string]any) string {
	if caveatContext == nil {
		return ""
	}
	b, _ := json.Marshal(caveatContext)
	return " with " + string(b)
}

// contextProto converts a caveat context for a request.
func contextProto(caveatContext map[string]any) (*structpb.Struct, error) {
	if caveatContext == nil {
		return nil, nil
	}
	return structpb.NewStruct(caveatContext)
}

func runLookupFile(t *testing.T, name, path string) (lookupStats, map[string]bool) {
	contents, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	vf, err := validationfile.DecodeValidationFile(contents)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	ctx := context.Background()
	compiled, err := schema.Compile(ctx, vf.Schema.Schema)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	client := startServer(t)
	loadValidationFile(ctx, t, client, vf)

	var rels []string
	for _, rel := range vf.Relationships.Relationships {
		text, err := tuple.String(rel)
		if err != nil {
			t.Fatalf("format relationship: %v", err)
		}
		rels = append(rels, text)
	}
	spicedb, devErrs, err := development.NewDevContext(ctx, &devinterface.RequestContext{
		Schema:        vf.Schema.Schema,
		Relationships: coreTuples(t, rels),
	})
	if err != nil || devErrs != nil {
		t.Fatalf("create SpiceDB development context: %v %v", err, devErrs.GetInputErrors())
	}
	defer spicedb.Dispose()
	conn, stop, err := spicedb.RunV1InMemoryService()
	if err != nil {
		t.Fatalf("start SpiceDB in-memory v1 service: %v", err)
	}
	defer stop()

	run := newLookupRun(t, name, compiled, newLookupUniverse(compiled, vf), client, v1.NewPermissionsServiceClient(conn))
	run.explain = explainSpiceDBContradiction
	for _, q := range run.resourceQueries() {
		run.runResourceQuery(ctx, q)
	}
	for _, q := range run.subjectQueries() {
		run.runSubjectQuery(ctx, q)
	}
	if run.problems > maxLookupProblems {
		t.Errorf("%d more differences not shown", run.problems-maxLookupProblems)
	}
	return run.stats, run.used
}
