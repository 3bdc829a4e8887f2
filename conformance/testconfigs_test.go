package conformance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/authzed/spicedb/pkg/validationfile"
	"github.com/authzed/spicedb/pkg/validationfile/blocks"
	"google.golang.org/protobuf/types/known/structpb"
)

// writeBatchSize is the number of relationships per WriteRelationships
// call, below the server's default limit of 1000 updates per write.
const writeBatchSize = 100

// excludedAssertions lists assertions that are not run, keyed by
// "file/kind/assertion" as in the subtest names, with the reason.
var excludedAssertions = map[string]string{}

// spicedbModuleDir returns the directory of the SpiceDB module that
// go.mod requires, as the go command resolves it.
func spicedbModuleDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/authzed/spicedb").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/authzed/spicedb: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("go list -m github.com/authzed/spicedb printed no directory: run go mod download")
	}
	return dir
}

// TestSpiceDBTestConfigs runs the assertions of every validation file that
// SpiceDB uses for its own integration tests against a Mandate server.
// Files ending in .skip are left out, as SpiceDB leaves them out.
func TestSpiceDBTestConfigs(t *testing.T) {
	dir := filepath.Join(spicedbModuleDir(t), "internal", "services", "integrationtesting", "testconfigs")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatalf("list validation files in %s: %v", dir, err)
	}
	if len(paths) == 0 {
		t.Fatalf("no validation files found in %s", dir)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runValidationFile(t, path)
		})
	}
}

func runValidationFile(t *testing.T, path string) {
	contents, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	vf, err := validationfile.DecodeValidationFile(contents)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if vf.SchemaFile != "" {
		t.Fatalf("%s: schemaFile %q is not supported by this test; inline the schema", path, vf.SchemaFile)
	}

	client := startServer(t)
	ctx := context.Background()
	loadValidationFile(ctx, t, client, vf)

	t.Run("assertions", func(t *testing.T) {
		runAssertions(ctx, t, client, vf.Assertions)
	})
	t.Run("validation", func(t *testing.T) {
		checkExpectedRelations(ctx, t, client, vf.ExpectedRelations)
	})
}

// loadValidationFile writes the file's schema and relationships through
// the v1 API, touching the relationships in batches.
func loadValidationFile(ctx context.Context, t *testing.T, client *authzed.Client, vf *validationfile.ValidationFile) {
	t.Helper()
	if _, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: vf.Schema.Schema}); err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	rels := vf.Relationships.Relationships
	for start := 0; start < len(rels); start += writeBatchSize {
		end := min(start+writeBatchSize, len(rels))
		updates := make([]*v1.RelationshipUpdate, 0, end-start)
		for _, rel := range rels[start:end] {
			updates = append(updates, &v1.RelationshipUpdate{
				Operation:    v1.RelationshipUpdate_OPERATION_TOUCH,
				Relationship: tuple.ToV1Relationship(rel),
			})
		}
		if _, err := client.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates}); err != nil {
			t.Fatalf("WriteRelationships of relationships %d to %d: %v", start, end-1, err)
		}
	}
}

// runAssertions checks each assertion with CheckPermission at the newest
// revision, in its own subtest.
func runAssertions(ctx context.Context, t *testing.T, client *authzed.Client, assertions blocks.Assertions) {
	groups := []struct {
		kind       string
		list       []blocks.Assertion
		permission v1.CheckPermissionResponse_Permissionship
	}{
		{"assertTrue", assertions.AssertTrue, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION},
		{"assertCaveated", assertions.AssertCaveated, v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION},
		{"assertFalse", assertions.AssertFalse, v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION},
	}
	total := 0
	for _, g := range groups {
		for _, a := range g.list {
			total++
			name := g.kind + "/" + strings.TrimSpace(a.RelationshipWithContextString)
			t.Run(name, func(t *testing.T) {
				if reason, ok := excludedAssertions[t.Name()[strings.Index(t.Name(), "/")+1:]]; ok {
					t.Skipf("excluded: %s", reason)
				}
				checkAssertion(ctx, t, client, a, g.permission)
			})
		}
	}
	if total == 0 {
		t.Log("the file has no assertions")
	}
}

func checkAssertion(ctx context.Context, t *testing.T, client *authzed.Client, a blocks.Assertion, expected v1.CheckPermissionResponse_Permissionship) {
	rel := a.Relationship
	if rel.OptionalCaveat != nil {
		t.Fatalf("assertion %q names a caveat, which SpiceDB rejects in assertions", a.RelationshipWithContextString)
	}
	req := &v1.CheckPermissionRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
		Resource:    &v1.ObjectReference{ObjectType: rel.Resource.ObjectType, ObjectId: rel.Resource.ObjectID},
		Permission:  rel.Resource.Relation,
		Subject: &v1.SubjectReference{
			Object:           &v1.ObjectReference{ObjectType: rel.Subject.ObjectType, ObjectId: rel.Subject.ObjectID},
			OptionalRelation: stringOrEmpty(rel.Subject.Relation),
		},
	}
	if a.CaveatContext != nil {
		caveatContext, err := structpb.NewStruct(a.CaveatContext)
		if err != nil {
			t.Fatalf("convert caveat context of %q: %v", a.RelationshipWithContextString, err)
		}
		req.Context = caveatContext
	}
	resp, err := client.CheckPermission(ctx, req)
	if err != nil {
		t.Fatalf("CheckPermission %q: %v", a.RelationshipWithContextString, err)
	}
	if got := resp.GetPermissionship(); got != expected {
		t.Errorf("CheckPermission %q = %v, expected %v", a.RelationshipWithContextString, got, expected)
	}
}

// stringOrEmpty maps SpiceDB's ellipsis relation to the empty optional
// relation of the v1 API.
func stringOrEmpty(relation string) string {
	if relation == tuple.Ellipsis {
		return ""
	}
	return relation
}

// checkExpectedRelations skips the `validation:` section. Its expected
// relations are compared with SpiceDB's by
// TestValidateExpectedRelationsMatchSpiceDB in cmd/mandate, and
// TestSpiceDBTestConfigsLookups holds the server's LookupSubjects for every
// object of the file against its checks.
func checkExpectedRelations(_ context.Context, t *testing.T, _ *authzed.Client, expected blocks.ParsedExpectedRelations) {
	if len(expected.ValidationMap) == 0 {
		t.Skip("the file has no validation section")
	}
	t.Skipf("validation section with %d object relations is compared by TestValidateExpectedRelationsMatchSpiceDB in cmd/mandate",
		len(expected.ValidationMap))
}
