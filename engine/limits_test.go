package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/engine/checkscript"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

const nestedGroupsSchema = `definition user {}
definition group {
  relation member: user | group#member
}`

// groupChain returns relationships that nest group g1 in g0, g2 in g1 and
// so on down to g<levels>, which has user alice as a direct member.
func groupChain(t *testing.T, levels int) []*graph.Relationship {
	t.Helper()
	var rels []*graph.Relationship
	for i := range levels {
		r, err := checkscript.Relationship(fmt.Sprintf("group:g%d#member@group:g%d#member", i, i+1))
		if err != nil {
			t.Fatalf("parse relationship: %v", err)
		}
		rels = append(rels, r)
	}
	r, err := checkscript.Relationship(fmt.Sprintf("group:g%d#member@user:alice", levels))
	if err != nil {
		t.Fatalf("parse relationship: %v", err)
	}
	return append(rels, r)
}

func TestCheckDefaultDepthLimit(t *testing.T) {
	compiled, err := schema.Compile(context.Background(), nestedGroupsSchema)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	req := engine.CheckRequest{
		Resource:   graph.ObjectRef{Type: "group", ID: "g0"},
		Permission: "member",
		Subject:    graph.SubjectRef{Type: "user", ID: "alice"},
	}

	got, err := engine.Check(compiled, snapshotOf(t, nestedGroupsSchema, groupChain(t, 49)), engine.Limits{}, req)
	if err != nil {
		t.Fatalf("check 49 levels deep: %v", err)
	}
	if got.Membership != engine.HasPermission {
		t.Errorf("check 49 levels deep = %v, expected has_permission", got.Membership)
	}

	_, err = engine.Check(compiled, snapshotOf(t, nestedGroupsSchema, groupChain(t, 50)), engine.Limits{}, req)
	if !errors.Is(err, engine.ErrMaxDepth) {
		t.Errorf("check 50 levels deep: error %v, expected engine.ErrMaxDepth", err)
	}
}

func TestCheckCaveatCostLimit(t *testing.T) {
	const schemaText = `caveat any_match(values list<int>, wanted int) {
  values.exists(v, v == wanted)
}
definition user {}
definition doc {
  relation viewer: user with any_match
  relation editor: user
  permission view = viewer
  permission view_or_edit = viewer + editor
}`
	compiled, err := schema.Compile(context.Background(), schemaText)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	var rels []*graph.Relationship
	for _, text := range []string{
		`doc:d1#viewer@user:alice[any_match:{"values":[1,2,3,4,5,6,7,8,9,10]}]`,
		"doc:d1#editor@user:alice",
	} {
		r, err := checkscript.Relationship(text)
		if err != nil {
			t.Fatalf("parse relationship: %v", err)
		}
		rels = append(rels, r)
	}
	snap := snapshotOf(t, schemaText, rels)
	check := func(permission string, limits engine.Limits) (engine.Result, error) {
		return engine.Check(compiled, snap, limits, engine.CheckRequest{
			Resource:   graph.ObjectRef{Type: "doc", ID: "d1"},
			Permission: permission,
			Subject:    graph.SubjectRef{Type: "user", ID: "alice"},
			Context:    map[string]any{"wanted": float64(10)}, // JSON numbers, as the v1 API decodes them
		})
	}

	got, err := check("view", engine.Limits{})
	if err != nil {
		t.Fatalf("check without a cost limit: %v", err)
	}
	if got.Membership != engine.HasPermission {
		t.Errorf("check without a cost limit = %v, expected has_permission", got.Membership)
	}

	_, err = check("view", engine.Limits{MaxCaveatCost: 5})
	var caveatErr *engine.CaveatError
	if !errors.As(err, &caveatErr) {
		t.Errorf("check over the cost limit: error %v, expected an *engine.CaveatError", err)
	}

	got, err = check("view_or_edit", engine.Limits{MaxCaveatCost: 5})
	if err != nil {
		t.Errorf("check over the cost limit beside a caveat-free path: %v", err)
	}
	if got.Membership != engine.HasPermission {
		t.Errorf("check over the cost limit beside a caveat-free path = %v, expected has_permission", got.Membership)
	}
}
