package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/authzed/spicedb/pkg/development"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/authzed/spicedb/pkg/validationfile"
	"github.com/authzed/spicedb/pkg/validationfile/blocks"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// spicedbDir returns the directory of the SpiceDB module that go.mod
// requires.
func spicedbDir(t *testing.T) string {
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

// spicedbValidationFiles returns the validation files that SpiceDB v1.56
// ships: its integration test configs and the valid files of its
// validationfile package.
func spicedbValidationFiles(t *testing.T) []string {
	t.Helper()
	dir := spicedbDir(t)
	configs, err := filepath.Glob(filepath.Join(dir, "internal", "services", "integrationtesting", "testconfigs", "*.yaml"))
	if err != nil || len(configs) == 0 {
		t.Fatalf("no test configs found under %s: %v", dir, err)
	}
	var files []string
	files = append(files, configs...)
	for _, name := range []string{
		"basic_caveats.yaml", "caveat_order.yaml", "initial_schema_and_rels.yaml",
		"loader_no_comment.yaml", "loader_with_comment.yaml", "loader_using_schemafile.yaml",
	} {
		files = append(files, filepath.Join(dir, "pkg", "validationfile", "testdata", name))
	}
	return files
}

// runValidateCommand runs `mandate validate` with args through the root
// command and returns its output and error.
func runValidateCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"validate"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestValidateSpiceDBFiles(t *testing.T) {
	for _, path := range spicedbValidationFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			out, err := runValidateCommand(t, path)
			if err != nil {
				t.Fatalf("mandate validate %s: %v\n%s", path, err, out)
			}
			if !strings.HasPrefix(out, "✓ "+path+": Success! - ") {
				t.Errorf("mandate validate %s printed %q, want a line starting with ✓", path, out)
			}
		})
	}
}

// spicedbDevContext loads a validation file's schema and relationships
// into SpiceDB's development package, which zed validate runs on.
func spicedbDevContext(t *testing.T, lf *loadedValidationFile) *development.DevContext {
	t.Helper()
	rels := make([]*core.RelationTuple, 0, len(lf.parsed.Relationships.Relationships))
	for _, rel := range lf.parsed.Relationships.Relationships {
		rels = append(rels, rel.ToCoreTuple())
	}
	dc, devErrs, err := development.NewDevContext(context.Background(), &devinterface.RequestContext{
		Schema:        lf.schema.Text,
		Relationships: rels,
	})
	if err != nil {
		t.Fatalf("SpiceDB development context: %v", err)
	}
	if devErrs != nil {
		t.Fatalf("SpiceDB development context: %v", devErrs)
	}
	t.Cleanup(dc.Dispose)
	return dc
}

// everyResourceRelation lists, for every object in the relationships,
// each relation and permission of its definition.
func everyResourceRelation(lf *loadedValidationFile) blocks.ValidationMap {
	objects := make(map[graph.ObjectRef]bool)
	for _, rel := range lf.parsed.Relationships.Relationships {
		objects[graph.ObjectRef{Type: rel.Resource.ObjectType, ID: rel.Resource.ObjectID}] = true
		if rel.Subject.ObjectID != tuple.PublicWildcard {
			objects[graph.ObjectRef{Type: rel.Subject.ObjectType, ID: rel.Subject.ObjectID}] = true
		}
	}
	keys := make(blocks.ValidationMap)
	for o := range objects {
		def := lf.schema.Definition(o.Type)
		if def == nil {
			continue
		}
		for _, name := range def.Order {
			onr := tuple.ObjectAndRelation{ObjectType: o.Type, ObjectID: o.ID, Relation: name}
			keys[blocks.ObjectRelation{ObjectRelationString: tuple.StringONR(onr), ObjectAndRelation: onr}] = nil
		}
	}
	return keys
}

// TestValidateExpectedRelationsMatchSpiceDB checks the expected relations
// of every resource relation in SpiceDB's files against SpiceDB.
func TestValidateExpectedRelationsMatchSpiceDB(t *testing.T) {
	for _, path := range spicedbValidationFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			lf, err := loadValidationFile(context.Background(), path)
			if err != nil {
				t.Fatalf("load %s: %v", path, err)
			}
			requireSpiceDBExpectedRelations(t, lf)
		})
	}
}

// requireSpiceDBExpectedRelations has SpiceDB write the `validation:` block
// of every resource relation in the file, with subjects, relationship
// paths, wildcard exclusions and caveat marks, and requires Mandate to
// accept that block unchanged.
func requireSpiceDBExpectedRelations(t *testing.T, lf *loadedValidationFile) {
	t.Helper()
	dc := spicedbDevContext(t, lf)
	keys := everyResourceRelation(lf)
	membershipSet, devErrs, err := development.RunValidation(dc, &blocks.ParsedExpectedRelations{ValidationMap: keys})
	if err != nil {
		t.Fatalf("SpiceDB RunValidation: %v", err)
	}
	generated, err := development.GenerateValidation(membershipSet)
	if err != nil {
		t.Fatalf("SpiceDB GenerateValidation: %v", err)
	}
	expected, err := validationfile.ParseExpectedRelationsBlock([]byte(generated))
	if err != nil {
		t.Fatalf("parse the validation block SpiceDB generated: %v\n%s", err, generated)
	}

	// SpiceDB leaves out a resource relation whose expansion failed, for
	// example by exceeding its maximum depth. Mandate must fail on it too.
	for key := range keys {
		if !spicedbExpansionFailed(devErrs, key.ObjectRelationString) {
			continue
		}
		if problems := checkExpectedRelation(lf, key, nil); len(problems) == 0 {
			t.Errorf("%s: SpiceDB failed to expand it (max depth), Mandate expanded it", key.ObjectRelationString)
		}
	}

	lf.parsed.ExpectedRelations = *expected
	for _, p := range runExpectedRelations(lf) {
		t.Errorf("%s\n    expected: %s\n    got:      %s", p.message, p.expected, p.got)
	}
}

func spicedbExpansionFailed(devErrs []*devinterface.DeveloperError, objectRelation string) bool {
	for _, e := range devErrs {
		if e.Kind == devinterface.DeveloperError_MAXIMUM_RECURSION && e.Context == objectRelation {
			return true
		}
	}
	return false
}

// TestValidateAssertionsMatchSpiceDB runs every assertion of each file
// with SpiceDB's development package and with Mandate, and requires the
// same pass or fail for each.
func TestValidateAssertionsMatchSpiceDB(t *testing.T) {
	for _, path := range spicedbValidationFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			lf, err := loadValidationFile(context.Background(), path)
			if err != nil {
				t.Fatalf("load %s: %v", path, err)
			}
			dc := spicedbDevContext(t, lf)
			spicedbFailures, err := development.RunAllAssertions(dc, &lf.parsed.Assertions)
			if err != nil {
				t.Fatalf("SpiceDB RunAllAssertions: %v", err)
			}
			mandateFailures, _ := runAssertions(lf)

			spicedbLines := make([]int, 0, len(spicedbFailures))
			for _, f := range spicedbFailures {
				spicedbLines = append(spicedbLines, int(f.Line))
			}
			mandateLines := make([]int, 0, len(mandateFailures))
			for _, p := range mandateFailures {
				mandateLines = append(mandateLines, p.line)
			}
			sort.Ints(spicedbLines)
			sort.Ints(mandateLines)
			if !equalInts(spicedbLines, mandateLines) {
				t.Errorf("failed assertions differ: SpiceDB failed lines %v (%v), Mandate failed lines %v (%v)",
					spicedbLines, spicedbFailures, mandateLines, mandateFailures)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestValidatePassingFile(t *testing.T) {
	path := filepath.Join("testdata", "validate", "passing.yaml")
	out, err := runValidateCommand(t, path)
	if err != nil {
		t.Fatalf("mandate validate %s: %v\n%s", path, err, out)
	}
	want := "✓ " + path + ": Success! - 9 relationships loaded, 8 assertions run, 5 expected relations validated\n"
	if out != want {
		t.Errorf("output = %q, want %q", out, want)
	}
}

func TestValidateMultipleFiles(t *testing.T) {
	passing := filepath.Join("testdata", "validate", "passing.yaml")
	broken := filepath.Join("testdata", "validate", "broken.yaml")
	out, err := runValidateCommand(t, passing, broken)
	if err == nil {
		t.Fatalf("mandate validate with a broken file succeeded:\n%s", out)
	}
	if !strings.Contains(err.Error(), "1 of 2 files did not pass") {
		t.Errorf("error = %q, want it to count the failed files", err)
	}
	if !strings.Contains(out, "✓ "+passing+": Success!") {
		t.Errorf("output has no success line for %s:\n%s", passing, out)
	}
	if !strings.Contains(out, "✗ "+broken+": ") {
		t.Errorf("output has no failure line for %s:\n%s", broken, out)
	}
	if !strings.HasSuffix(out, "total files: 2, successfully validated files: 1\n") {
		t.Errorf("output does not end with the totals:\n%s", out)
	}
}

// TestValidateBrokenFile checks that every kind of failed check names the
// file, the line, the assertion or expected relation, and what was
// expected and found.
func TestValidateBrokenFile(t *testing.T) {
	path := filepath.Join("testdata", "validate", "broken.yaml")
	out, err := runValidateCommand(t, path)
	if err == nil {
		t.Fatalf("mandate validate %s succeeded:\n%s", path, out)
	}
	wants := []string{
		"error: " + path + ":22:7: assertTrue document:readme#view@user:mallory: failed\n" +
			"    expected: has permission\n" +
			"    got:      no permission\n" +
			"  20 |   assertTrue:\n" +
			"  21 |     - document:readme#view@user:alice\n" +
			"  22 >     - document:readme#view@user:mallory\n" +
			"     >       ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n",
		`error: ` + path + `:23:8: assertTrue document:secret#view@user:carol with {"ip": "10.0.0.1"}: failed` + "\n" +
			"    expected: has permission\n" +
			"    got:      no permission\n",
		"error: " + path + ":25:7: assertFalse document:readme#view@user:alice: failed\n" +
			"    expected: no permission\n" +
			"    got:      has permission\n",
		"error: " + path + ":27:7: assertCaveated document:secret#view@user:bob: failed\n" +
			"    expected: caveated (conditional permission)\n" +
			"    got:      has permission\n",
		"error: " + path + ":29:3: validation document:readme#view: subject user:alice was found but is not listed\n" +
			"    expected: no such subject\n" +
			"    got:      [user:alice] is <document:readme#viewer>\n",
		"error: " + path + ":30:8: validation document:readme#view: missing expected subject user:mallory\n" +
			"    expected: [user:mallory] is <document:readme#viewer>\n" +
			"    got:      no such subject; found: user:alice\n",
		"✗ " + path + ": 6 problems\n",
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
	if !strings.Contains(err.Error(), "validation failed") {
		t.Errorf("error = %q, want validation failed", err)
	}
}

// TestValidateExpectedRelationDetails checks the comparisons of expected
// relations that the SpiceDB files do not exercise: relationship paths,
// wildcard exclusions and caveat marks that differ from what is found.
func TestValidateExpectedRelationDetails(t *testing.T) {
	path := filepath.Join("testdata", "validate", "expected-relations.yaml")
	out, err := runValidateCommand(t, path)
	if err == nil {
		t.Fatalf("mandate validate %s succeeded:\n%s", path, out)
	}
	wants := []string{
		"validation document:doc#view: different relationship paths for subject user:tom\n" +
			"    expected: <document:doc#editor>\n" +
			"    got:      <document:doc#viewer>\n",
		"validation document:doc#view: different excluded subjects for subject user:*\n" +
			"    expected: {user:bob}\n" +
			"    got:      {user:banned}\n",
		"validation document:doc#view: caveat mismatch for subject user:carol\n" +
			"    expected: not caveated\n" +
			"    got:      caveated ([...])\n",
		"✗ " + path + ": 3 problems\n",
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
}

func TestValidateMalformedFiles(t *testing.T) {
	cases := []struct {
		file string
		want string
	}{
		{"bad-schema.yaml", "bad-schema.yaml:7:23: invalid schema: compile schema: relation/permission `nosuch` not found under definition `document`"},
		{"bad-syntax.yaml", "bad-syntax.yaml:6:21: invalid schema: compile schema: parse error in `schema`, line 4, column 19"},
		{"bad-relationship.yaml", "bad-relationship.yaml:10:3: relationship document:doc#viewer@team:x: object definition \"team\" not found"},
		{"bad-yaml.yaml", "bad-yaml.yaml: invalid validation file: yaml: line 1: did not find expected key"},
		{"bad-assertion.yaml", "bad-assertion.yaml:10:8: invalid validation file: error parsing relationship in assertion `document:doc#view@`"},
		{"no-schema.yaml", "either schema or schemaFile must be present"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", "validate", c.file)
			out, err := runValidateCommand(t, path)
			if err == nil {
				t.Fatalf("mandate validate %s succeeded:\n%s", path, out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("output does not contain %q:\n%s", c.want, out)
			}
			if !strings.Contains(out, "✗ "+path) {
				t.Errorf("output has no failure line for %s:\n%s", path, out)
			}
		})
	}
}

func TestValidateMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nosuch.yaml")
	out, err := runValidateCommand(t, path)
	if err == nil {
		t.Fatalf("mandate validate %s succeeded:\n%s", path, out)
	}
	if !strings.Contains(out, "no such file or directory") {
		t.Errorf("output does not name the missing file:\n%s", out)
	}
}

func TestValidateSchemaFileAndZed(t *testing.T) {
	dir := t.TempDir()
	schemaText := "definition user {}\n\ndefinition document {\n\trelation viewer: user\n\tpermission view = viewer\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "schema.zed"), []byte(schemaText), 0o600); err != nil {
		t.Fatal(err)
	}
	yamlText := "schemaFile: schema.zed\nrelationships: |\n  document:doc#viewer@user:tom\nassertions:\n  assertTrue:\n    - document:doc#view@user:tom\n"
	if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	escaping := "schemaFile: ../schema.zed\n"
	if err := os.WriteFile(filepath.Join(dir, "escaping.yaml"), []byte(escaping), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := runValidateCommand(t, filepath.Join(dir, "tests.yaml"))
	if err != nil {
		t.Errorf("validate with schemaFile: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Success! - 1 relationships loaded, 1 assertions run") {
		t.Errorf("validate with schemaFile printed %q", out)
	}

	out, err = runValidateCommand(t, filepath.Join(dir, "schema.zed"))
	if err != nil {
		t.Errorf("validate a .zed schema: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Success! - 0 relationships loaded, 0 assertions run, 0 expected relations validated") {
		t.Errorf("validate a .zed schema printed %q", out)
	}

	out, err = runValidateCommand(t, filepath.Join(dir, "escaping.yaml"))
	if err == nil {
		t.Errorf("validate with a schemaFile outside the directory succeeded:\n%s", out)
	}
	if !strings.Contains(out, `schemaFile "../schema.zed" is not local`) {
		t.Errorf("validate with a schemaFile outside the directory printed %q", out)
	}
}

// randomGraphSchema combines every set operation with wildcards, caveated
// relationships, caveated wildcards, nested subject sets and arrows over
// caveated relationships, for TestValidateRandomGraphsMatchSpiceDB.
const randomGraphSchema = `definition user {}

caveat first(a int) {
	a == 1
}

caveat second(b int) {
	b == 2
}

definition group {
	relation member: user | user with first | group#member | group#member with first
}

definition doc {
	relation aaa: user | user:* | user with first | user:* with second | group#member | group#member with first
	relation bbb: user | user:* | user with first | user:* with second | group#member
	relation ccc: user | user:* | user with second
	relation parent: doc | doc with first
	permission union_ab = aaa + bbb
	permission inter_ab = aaa & bbb
	permission excl_ab = aaa - bbb
	permission excl_ba = bbb - aaa
	permission inter_excl = (aaa & bbb) - ccc
	permission excl_inter = aaa - (bbb & ccc)
	permission excl_chain = aaa - bbb - ccc
	permission union_inter = (aaa + ccc) & bbb
	permission arrow_any = parent->union_ab
	permission arrow_all = parent.all(aaa)
	permission arrow_excl = parent->excl_ab - ccc
	permission excl_nested = bbb - excl_ab
	permission excl_both = excl_ba - excl_ab
	permission inter_both = excl_ba & excl_ab
	permission union_both = excl_ba + excl_ab
	permission wild_a = aaa - ccc
	permission wild_b = bbb - ccc
	permission excl_wild = wild_a - wild_b
	permission excl_wild_ba = wild_a - excl_ba
}
`

// randomRelationships returns n distinct relationships valid under
// randomGraphSchema, chosen by a generator seeded with seed.
func randomRelationships(t *testing.T, lf *loadedValidationFile, seed int64, n int) []tuple.Relationship {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	ids := map[string][]string{
		"user":  {"u1", "u2", "u3", "u4"},
		"group": {"g1", "g2", "g3"},
		"doc":   {"d1", "d2", "d3", "d4", "d5"},
	}
	relations := []struct{ resourceType, relation string }{
		{"doc", "aaa"}, {"doc", "bbb"}, {"doc", "ccc"}, {"doc", "parent"}, {"group", "member"},
	}
	seen := make(map[string]bool)
	var out []tuple.Relationship
	for attempts := 0; len(out) < n && attempts < 50*n; attempts++ {
		r := relations[rng.IntN(len(relations))]
		allowed := lf.schema.Relation(r.resourceType, r.relation).Allowed
		a := allowed[rng.IntN(len(allowed))]
		resourceIndex := rng.IntN(len(ids[r.resourceType]))
		subjectIndex := rng.IntN(len(ids[a.Type]))
		subjectID := ids[a.Type][subjectIndex]
		if a.Wildcard {
			subjectID = "*"
		}
		// Groups and documents only point to later ones, so the data has
		// no cycle: SpiceDB's expansion of a cycle takes time exponential
		// in its depth limit before it fails.
		if a.Type == r.resourceType && subjectIndex <= resourceIndex {
			continue
		}
		text := r.resourceType + ":" + ids[r.resourceType][resourceIndex] + "#" + r.relation +
			"@" + a.Type + ":" + subjectID
		if a.Relation != "" {
			text += "#" + a.Relation
		}
		if a.Caveat != "" {
			text += "[" + a.Caveat + "]"
		}
		rel, err := tuple.Parse(text)
		if err != nil {
			t.Fatalf("parse generated relationship %q: %v", text, err)
		}
		key := tuple.StringWithoutCaveatOrExpiration(rel)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, rel)
	}
	return out
}

// TestValidateRandomGraphsMatchSpiceDB runs the comparison of
// TestValidateExpectedRelationsMatchSpiceDB on random relationships, which
// reach combinations of caveats, wildcards and exclusions that the SpiceDB
// files do not.
func TestValidateRandomGraphsMatchSpiceDB(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			compiled, err := schema.Compile(ctx, randomGraphSchema)
			if err != nil {
				t.Fatalf("compile schema: %v", err)
			}
			lf := &loadedValidationFile{path: "random", parsed: &validationfile.ValidationFile{}, schema: compiled}
			rels := randomRelationships(t, lf, seed, 30)
			lf.parsed.Relationships.Relationships = rels
			converted := make([]*graph.Relationship, 0, len(rels))
			for _, rel := range rels {
				r, err := checkValidationRelationship(compiled, rel)
				if err != nil {
					t.Fatalf("generated relationship: %v", err)
				}
				converted = append(converted, r)
			}
			if err := lf.writeGraph(ctx, converted); err != nil {
				t.Fatalf("write graph: %v", err)
			}
			requireSpiceDBExpectedRelations(t, lf)
		})
	}
}

// TestValidateTestdataMatchesSpiceDB runs the files of testdata/validate
// that load with SpiceDB's development package, which zed validate uses,
// and requires it to fail on the same lines as Mandate.
func TestValidateTestdataMatchesSpiceDB(t *testing.T) {
	for _, name := range []string{"passing.yaml", "broken.yaml", "expected-relations.yaml"} {
		t.Run(name, func(t *testing.T) {
			lf, err := loadValidationFile(context.Background(), filepath.Join("testdata", "validate", name))
			if err != nil {
				t.Fatalf("load %s: %v", name, err)
			}
			dc := spicedbDevContext(t, lf)
			assertionFailures, err := development.RunAllAssertions(dc, &lf.parsed.Assertions)
			if err != nil {
				t.Fatalf("SpiceDB RunAllAssertions: %v", err)
			}
			_, validationFailures, err := development.RunValidation(dc, &lf.parsed.ExpectedRelations)
			if err != nil {
				t.Fatalf("SpiceDB RunValidation: %v", err)
			}
			var spicedbLines []int
			for _, f := range append(assertionFailures, validationFailures...) {
				spicedbLines = append(spicedbLines, int(f.Line))
			}

			problems, _ := runAssertions(lf)
			problems = append(problems, runExpectedRelations(lf)...)
			var mandateLines []int
			for _, p := range problems {
				mandateLines = append(mandateLines, p.line)
			}
			sort.Ints(spicedbLines)
			sort.Ints(mandateLines)
			if !equalInts(spicedbLines, mandateLines) {
				t.Errorf("failed lines differ: SpiceDB %v (%v), Mandate %v (%v)",
					spicedbLines, append(assertionFailures, validationFailures...), mandateLines, problems)
			}
		})
	}
}
