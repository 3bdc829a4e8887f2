package main

import (
	"fmt"

	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// subjectExpansion computes every subject of a resource relation, with its
// relationship paths, from Mandate's engine.Expand trees. Like SpiceDB's
// recursive expansion, it also expands each subject set it meets, such as
// group:eng#member, and lists the subject set itself as a subject too.
type subjectExpansion struct {
	schema *schema.Schema
	snap   graph.Snapshot
	limits engine.Limits
	// expanding holds the subject sets being expanded on the current path.
	expanding map[graph.SubjectRef]bool
}

// maxSubjectSetDepth bounds the chain of nested subject sets one
// expansion follows, so that a cycle in the data, such as two groups that
// contain each other, ends in an error. It matches the engine's default
// depth limit.
const maxSubjectSetDepth = 50

// subjectsOf returns the subjects of resource#relation.
func (m *subjectExpansion) subjectsOf(resource graph.ObjectRef, relation string, depth int) (subjectsByType, error) {
	if depth >= maxSubjectSetDepth {
		return nil, fmt.Errorf("expand %s:%s#%s: %w (limit %d nested subject sets)",
			resource.Type, resource.ID, relation, engine.ErrMaxDepth, maxSubjectSetDepth)
	}
	// A subject set that contains itself would be expanded again and again
	// until the depth limit, in time exponential in the depth when it has
	// several members, so it fails at once. SpiceDB fails on it too, by
	// exceeding its own depth limit.
	current := graph.SubjectRef{Type: resource.Type, ID: resource.ID, Relation: relation}
	if m.expanding[current] {
		return nil, fmt.Errorf("expand %s: %w: the subject set contains itself", current, engine.ErrMaxDepth)
	}
	if m.expanding == nil {
		m.expanding = make(map[graph.SubjectRef]bool)
	}
	m.expanding[current] = true
	defer delete(m.expanding, current)

	node, err := engine.Expand(m.schema, m.snap, m.limits, resource, relation)
	if err != nil {
		return nil, err
	}
	return m.relationSubjects(node, depth)
}

// relationSubjects converts the expand tree of node.Object#node.Relation.
func (m *subjectExpansion) relationSubjects(node *engine.ExpandNode, depth int) (subjectsByType, error) {
	rel := m.schema.Relation(node.Object.Type, node.Relation)
	switch {
	case rel == nil:
		// An arrow whose target relation is missing on the subject's type
		// has no subjects.
		return make(subjectsByType), nil
	case rel.IsPermission():
		return m.rewriteSubjects(node, rel.Rewrite, depth)
	default:
		return m.directSubjects(node, depth)
	}
}

// rewriteSubjects converts the part of an expand tree that one node of a
// permission's rewrite produced. It walks the rewrite beside the tree,
// because the tree does not record the caveats of the relationships that
// arrows follow.
func (m *subjectExpansion) rewriteSubjects(node *engine.ExpandNode, rw *schema.Rewrite, depth int) (subjectsByType, error) {
	switch rw.Kind {
	case schema.Union, schema.Intersection, schema.Exclusion:
		if node.Leaf || node.Operation != rw.Kind || len(node.Children) != len(rw.Children) {
			return nil, expandTreeMismatch(node, "an operation node with %d children", len(rw.Children))
		}
		children := make([]subjectsByType, 0, len(node.Children))
		for i, child := range node.Children {
			set, err := m.rewriteSubjects(child, rw.Children[i], depth)
			if err != nil {
				return nil, err
			}
			children = append(children, set)
		}
		return combineSubjects(rw.Kind, children), nil

	case schema.Computed:
		if node.Relation != rw.Relation {
			return nil, expandTreeMismatch(node, "the tree of relation %q", rw.Relation)
		}
		return m.relationSubjects(node, depth)

	case schema.Arrow:
		return m.arrowSubjects(node, rw, depth)

	case schema.Self:
		set := make(subjectsByType)
		for _, s := range node.Subjects {
			set.add(leafFoundSubject(node, s, false))
		}
		return set, nil

	default: // schema.Nil
		return make(subjectsByType), nil
	}
}

// arrowSubjects converts an arrow: one child tree per relationship of the
// tupleset relation, each under that relationship's caveat.
func (m *subjectExpansion) arrowSubjects(node *engine.ExpandNode, rw *schema.Rewrite, depth int) (subjectsByType, error) {
	op := schema.Union
	if rw.Function == schema.ArrowAll {
		op = schema.Intersection
	}
	tupleset := m.snap.Subjects(node.Object.Type, node.Object.ID, rw.Tupleset)
	if node.Leaf || node.Operation != op || len(node.Children) != len(tupleset) {
		return nil, expandTreeMismatch(node, "an arrow node with %d children", len(tupleset))
	}
	children := make([]subjectsByType, 0, len(node.Children))
	for i, child := range node.Children {
		if child.Object != tupleset[i].Subject.Object() {
			return nil, expandTreeMismatch(child, "the tree of %s", tupleset[i].Subject.Object())
		}
		set, err := m.relationSubjects(child, depth)
		if err != nil {
			return nil, err
		}
		if tupleset[i].Caveat != "" {
			set = set.withCaveat()
		}
		children = append(children, set)
	}
	return combineSubjects(op, children), nil
}

// directSubjects converts the leaf of a relation: its direct subjects, and
// the subjects of each subject set among them, under the caveat of the
// relationship that names the subject set.
func (m *subjectExpansion) directSubjects(node *engine.ExpandNode, depth int) (subjectsByType, error) {
	if !node.Leaf {
		return nil, expandTreeMismatch(node, "a leaf")
	}
	rels := m.snap.Subjects(node.Object.Type, node.Object.ID, node.Relation)
	if len(rels) != len(node.Subjects) {
		return nil, expandTreeMismatch(node, "a leaf with %d subjects", len(rels))
	}

	leaf := make(subjectsByType)
	result := make(subjectsByType)
	for _, r := range rels {
		leaf.add(leafFoundSubject(node, r.Subject, r.Caveat != ""))
		if r.Subject.Relation == graph.Ellipsis {
			continue
		}
		nested, err := m.subjectsOf(r.Subject.Object(), r.Subject.Relation, depth+1)
		if err != nil {
			return nil, err
		}
		if r.Caveat != "" {
			nested = nested.withCaveat()
		}
		result.union(nested)
	}
	result.union(leaf)
	return result, nil
}

// leafFoundSubject builds a subject found directly in the leaf node.
func leafFoundSubject(node *engine.ExpandNode, s graph.SubjectRef, caveated bool) *foundSubject {
	relation := s.Relation
	if relation == graph.Ellipsis {
		relation = tuple.Ellipsis
	}
	resource := tuple.ObjectAndRelation{ObjectType: node.Object.Type, ObjectID: node.Object.ID, Relation: node.Relation}
	fs := newFoundSubject(foundSubjectType{s.Type, relation}, s.ID, caveated, nil)
	fs.resources[resource] = struct{}{}
	return fs
}

// combineSubjects applies a set operation to the children's subjects in order.
func combineSubjects(op schema.RewriteKind, children []subjectsByType) subjectsByType {
	if len(children) == 0 {
		return make(subjectsByType)
	}
	switch op {
	case schema.Intersection:
		out := make(subjectsByType)
		out.union(children[0])
		for _, c := range children[1:] {
			out = out.intersect(c)
		}
		return out
	case schema.Exclusion:
		out := make(subjectsByType)
		out.union(children[0])
		for _, c := range children[1:] {
			out = out.exclude(c)
		}
		return out
	default:
		out := make(subjectsByType)
		for _, c := range children {
			out.union(c)
		}
		return out
	}
}

// expandTreeMismatch reports an expand tree whose shape differs from the schema
// it was built from, which means engine.Expand and this walk disagree.
func expandTreeMismatch(node *engine.ExpandNode, format string, args ...any) error {
	return fmt.Errorf("expand tree of %s:%s#%s is not %s as the schema implies",
		node.Object.Type, node.Object.ID, node.Relation, fmt.Sprintf(format, args...))
}
