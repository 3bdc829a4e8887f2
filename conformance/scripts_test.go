package conformance

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/development"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/engine/checkscript"
)

// TestEngineScriptsAgainstSpiceDB runs the engine's scripted check cases
// (engine/testdata/*.txt) on SpiceDB's development server, so the results
// those scripts expect are shown to be SpiceDB's. A case marked
// "spicedb differs" is skipped with its reason, and so is a case with its
// own maxdepth, because the server's depth limit is fixed at 50.
func TestEngineScriptsAgainstSpiceDB(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "engine", "testdata", "*.txt"))
	if err != nil {
		t.Fatalf("list scripts: %v", err)
	}
	if len(paths) == 0 {
		t.Fatal("no scripts found in ../engine/testdata")
	}
	for _, path := range paths {
		cases, err := checkscript.ParseFile(path)
		if err != nil {
			t.Fatalf("parse script: %v", err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					if c.SpiceDBDiffers != "" {
						t.Skipf("Mandate differs from SpiceDB on purpose: %s", c.SpiceDBDiffers)
					}
					if c.MaxDepth != 0 {
						t.Skipf("the case sets maxdepth %d, and SpiceDB's development server uses 50", c.MaxDepth)
					}
					runScriptCaseOnSpiceDB(t, path, c)
				})
			}
		})
	}
}

func runScriptCaseOnSpiceDB(t *testing.T, path string, c checkscript.Case) {
	ctx := context.Background()
	spicedb, devErrs, err := development.NewDevContext(ctx, &devinterface.RequestContext{
		Schema:        c.Schema,
		Relationships: coreTuples(t, c.RelationshipTexts),
	})
	if err != nil || devErrs != nil {
		t.Fatalf("%s:%d: create SpiceDB development context: %v %v", path, c.Line, err, devErrs.GetInputErrors())
	}
	defer spicedb.Dispose()
	conn, stop, err := spicedb.RunV1InMemoryService()
	if err != nil {
		t.Fatalf("start SpiceDB in-memory v1 service: %v", err)
	}
	defer stop()
	client := v1.NewPermissionsServiceClient(conn)

	for _, check := range c.Checks {
		req := &v1.CheckPermissionRequest{
			Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
			Resource:    &v1.ObjectReference{ObjectType: check.Resource.Type, ObjectId: check.Resource.ID},
			Permission:  check.Permission,
			Subject: &v1.SubjectReference{
				Object:           &v1.ObjectReference{ObjectType: check.Subject.Type, ObjectId: check.Subject.ID},
				OptionalRelation: check.Subject.Relation,
			},
		}
		if check.Context != nil {
			caveatContext, err := structpb.NewStruct(check.Context)
			if err != nil {
				t.Fatalf("%s:%d: convert context: %v", path, check.Line, err)
			}
			req.Context = caveatContext
		}
		resp, err := client.CheckPermission(ctx, req)
		at := fmt.Sprintf("%s:%d", path, check.Line)

		switch check.Error {
		case checkscript.ErrorMaxDepth:
			if err == nil || !strings.Contains(status.Convert(err).Message(), "max depth exceeded") {
				t.Errorf("%s: SpiceDB check %s: got %v, %v, expected its max depth error", at, check.Text, resp.GetPermissionship(), err)
			}
			continue
		case checkscript.ErrorCaveat:
			if !isCaveatParameterError(err) {
				t.Errorf("%s: SpiceDB check %s: got %v, %v, expected a caveat parameter error", at, check.Text, resp.GetPermissionship(), err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: SpiceDB check %s: %v", at, check.Text, err)
			continue
		}
		expected := permissionshipOf(check.Membership)
		if resp.GetPermissionship() != expected {
			t.Errorf("%s: SpiceDB check %s = %v, the script expects %v", at, check.Text, resp.GetPermissionship(), expected)
		}
		missing := uniqueSorted(resp.GetPartialCaveatInfo().GetMissingRequiredContext())
		if !slices.Equal(missing, check.MissingContext) {
			t.Errorf("%s: SpiceDB check %s: missing context %v, the script expects %v", at, check.Text, missing, check.MissingContext)
		}
	}
}

func permissionshipOf(m engine.Membership) v1.CheckPermissionResponse_Permissionship {
	switch m {
	case engine.HasPermission:
		return v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
	case engine.ConditionalPermission:
		return v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION
	default:
		return v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
	}
}

// uniqueSorted returns SpiceDB's missing context names sorted and without
// repeats. SpiceDB repeats a name that a single caveat's expression uses
// more than once, and Mandate lists each name once (see knownDifferences).
func uniqueSorted(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
