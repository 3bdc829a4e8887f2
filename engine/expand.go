package engine

import (
	"fmt"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// ExpandNode is one node of an expanded permission tree: either an
// operation over children, or a leaf listing the direct subjects of a
// relation.
type ExpandNode struct {
	Object   graph.ObjectRef
	Relation string
	// Operation is Union, Intersection or Exclusion for an inner node.
	Operation schema.RewriteKind
	Children  []*ExpandNode
	// Leaf is true for a node that lists Subjects.
	Leaf     bool
	Subjects []graph.SubjectRef
}

// Expand returns the tree of resource#permission one step at a time:
// permissions are expanded through their rewrites, computed relations and
// arrows are followed, and each stored relation becomes a leaf of its
// direct subjects, which are not expanded further. Caveats are not
// evaluated: a caveated subject is listed like any other.
func Expand(s *schema.Schema, snap graph.Snapshot, limits Limits, resource graph.ObjectRef, permission string) (*ExpandNode, error) {
	e := &expander{schema: s, snap: snap, limits: limits.withDefaults()}
	return e.expand(resource, permission, 0)
}

type expander struct {
	schema *schema.Schema
	snap   graph.Snapshot
	limits Limits
}

func (e *expander) expand(o graph.ObjectRef, relation string, depth int) (*ExpandNode, error) {
	if depth >= e.limits.MaxDepth {
		return nil, fmt.Errorf("expand %s:%s#%s: %w (limit %d)", o.Type, o.ID, relation, ErrMaxDepth, e.limits.MaxDepth)
	}
	rel := e.schema.Relation(o.Type, relation)
	if rel == nil {
		return &ExpandNode{Object: o, Relation: relation, Leaf: true}, nil
	}
	if !rel.IsPermission() {
		node := &ExpandNode{Object: o, Relation: relation, Leaf: true}
		for _, r := range e.snap.Subjects(o.Type, o.ID, relation) {
			node.Subjects = append(node.Subjects, r.Subject)
		}
		return node, nil
	}
	return e.rewrite(o, relation, rel.Rewrite, depth)
}

func (e *expander) rewrite(o graph.ObjectRef, relation string, rw *schema.Rewrite, depth int) (*ExpandNode, error) {
	switch rw.Kind {
	case schema.Union, schema.Intersection, schema.Exclusion:
		node := &ExpandNode{Object: o, Relation: relation, Operation: rw.Kind}
		for _, child := range rw.Children {
			c, err := e.rewrite(o, relation, child, depth)
			if err != nil {
				return nil, err
			}
			node.Children = append(node.Children, c)
		}
		return node, nil
	case schema.Computed:
		return e.expand(o, rw.Relation, depth+1)
	case schema.Arrow:
		node := &ExpandNode{Object: o, Relation: relation, Operation: schema.Union}
		if rw.Function == schema.ArrowAll {
			node.Operation = schema.Intersection
		}
		for _, r := range e.snap.Subjects(o.Type, o.ID, rw.Tupleset) {
			c, err := e.expand(r.Subject.Object(), rw.Target, depth+1)
			if err != nil {
				return nil, err
			}
			node.Children = append(node.Children, c)
		}
		return node, nil
	case schema.Self:
		return &ExpandNode{Object: o, Relation: relation, Leaf: true,
			Subjects: []graph.SubjectRef{{Type: o.Type, ID: o.ID}}}, nil
	default: // schema.Nil
		return &ExpandNode{Object: o, Relation: relation, Leaf: true}, nil
	}
}
