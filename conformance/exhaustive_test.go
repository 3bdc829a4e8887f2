package conformance

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/authzed/spicedb/pkg/development"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/authzed/spicedb/pkg/validationfile"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// maxExhaustiveChecks bounds the checks compared for one validation file,
// so that the largest files do not dominate the test's run time. The
// checks are taken in a fixed order, so a run is repeatable.
const maxExhaustiveChecks = 20000

// TestSpiceDBTestConfigsExhaustive compares engine.Check with SpiceDB's
// CheckPermission on every validation file of SpiceDB's integration tests,
// for every relation and permission of every object in the file and every
// subject: each object, and each object through each of its relations and
// permissions.
// Each check runs without caveat context and with each context that the
// file's assertions use.
func TestSpiceDBTestConfigsExhaustive(t *testing.T) {
	if testing.Short() {
		t.Skip("compares every check of every validation file; skipped with -short")
	}
	dir := filepath.Join(spicedbModuleDir(t), "internal", "services", "integrationtesting", "testconfigs")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatalf("list validation files in %s: %v", dir, err)
	}
	total := newDifferentialStats()
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			stats := compareValidationFile(t, path)
			total.add(stats)
		})
	}
	logStats(t, total)
}

func compareValidationFile(t *testing.T, path string) differentialStats {
	stats := newDifferentialStats()
	contents, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	vf, err := validationfile.DecodeValidationFile(contents)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	sc := scenario{schema: vf.Schema.Schema}
	for _, rel := range vf.Relationships.Relationships {
		text, err := tuple.String(rel)
		if err != nil {
			t.Fatalf("format relationship: %v", err)
		}
		sc.relationships = append(sc.relationships, text)
	}

	ctx := context.Background()
	compiled, err := schema.Compile(ctx, sc.schema)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	spicedb, devErrs, err := development.NewDevContext(ctx, &devinterface.RequestContext{
		Schema:        sc.schema,
		Relationships: coreTuples(t, sc.relationships),
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

	cmp := checkComparer{
		schema: compiled,
		snap:   mandateSnapshot(t, sc),
		client: v1.NewPermissionsServiceClient(conn),
		stats:  &stats,
	}
	checks := exhaustiveChecks(compiled, vf)
	if len(checks) > maxExhaustiveChecks {
		t.Logf("comparing the first %d of %d checks", maxExhaustiveChecks, len(checks))
		checks = checks[:maxExhaustiveChecks]
	}
	mismatches := 0
	for _, c := range checks {
		if !cmp.compare(ctx, t, c) {
			mismatches++
		}
		if mismatches >= maxMismatchesPerSeed {
			t.Logf("stopped after %d mismatches", mismatches)
			break
		}
	}
	return stats
}

// exhaustiveChecks lists the checks for a validation file: every relation
// and permission of every object the file names, against each of those
// objects as a subject and through each of its relations, without context
// and with each assertion's context.
func exhaustiveChecks(s *schema.Schema, vf *validationfile.ValidationFile) []checkCase {
	objects := make(map[graph.ObjectRef]bool)
	subjects := make(map[graph.SubjectRef]bool)
	addObject := func(onr tuple.ObjectAndRelation) {
		if onr.ObjectID == tuple.PublicWildcard {
			return
		}
		objects[graph.ObjectRef{Type: onr.ObjectType, ID: onr.ObjectID}] = true
	}
	for _, rel := range vf.Relationships.Relationships {
		addObject(rel.Resource)
		addObject(rel.Subject)
		if rel.Subject.Relation != tuple.Ellipsis && rel.Subject.ObjectID != tuple.PublicWildcard {
			subjects[graph.SubjectRef{Type: rel.Subject.ObjectType, ID: rel.Subject.ObjectID, Relation: rel.Subject.Relation}] = true
		}
	}

	contexts := []map[string]any{nil}
	seenContexts := map[string]bool{"null": true}
	assertions := slices.Concat(vf.Assertions.AssertTrue, vf.Assertions.AssertFalse, vf.Assertions.AssertCaveated)
	for _, a := range assertions {
		addObject(a.Relationship.Resource)
		addObject(a.Relationship.Subject)
		key, _ := json.Marshal(a.CaveatContext)
		if !seenContexts[string(key)] {
			seenContexts[string(key)] = true
			contexts = append(contexts, a.CaveatContext)
		}
	}
	for o := range objects {
		def := s.Definition(o.Type)
		if def == nil {
			continue
		}
		subjects[graph.SubjectRef{Type: o.Type, ID: o.ID}] = true
		for _, relation := range def.Order {
			subjects[graph.SubjectRef{Type: o.Type, ID: o.ID, Relation: relation}] = true
		}
	}

	sortedObjects := sortedKeys(objects, func(o graph.ObjectRef) string { return o.Type + ":" + o.ID })
	sortedSubjects := sortedKeys(subjects, graph.SubjectRef.String)
	var checks []checkCase
	for _, o := range sortedObjects {
		def := s.Definition(o.Type)
		if def == nil {
			continue
		}
		for _, relation := range def.Order {
			for _, subject := range sortedSubjects {
				for _, caveatContext := range contexts {
					checks = append(checks, checkCase{resource: o, permission: relation, subject: subject, context: caveatContext})
				}
			}
		}
	}
	return checks
}

func sortedKeys[K comparable](m map[K]bool, name func(K) string) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int { return strings.Compare(name(a), name(b)) })
	return keys
}
