package engine

import (
	"strings"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// maxExplainSteps bounds the relationships an explanation lists.
const maxExplainSteps = 32

// explainer finds, after a walker granted a check, one path of
// relationships that grants it. It asks the same walker again, so nodes
// already decided come from its memo and the walk costs little beyond the
// check itself.
type explainer struct {
	w     *walker
	steps []string
}

// explain returns the granting path of resource#relation as relationships
// joined by " -> ", with " & " between the branches of an intersection.
// It returns "" when the check was not granted.
func (w *walker) explain(resource graph.ObjectRef, relation string) string {
	e := &explainer{w: w}
	if !e.node(resource, relation, 0) {
		return ""
	}
	return strings.ReplaceAll(strings.Join(e.steps, " -> "), " -> & -> ", " & ")
}

func (e *explainer) add(step string) bool {
	if len(e.steps) >= maxExplainSteps {
		return false
	}
	e.steps = append(e.steps, step)
	return true
}

func (e *explainer) granted(resource graph.ObjectRef, relation string, depth int) bool {
	o, _, err := e.w.checkNode(resource, relation, depth)
	return err == nil && o.m == HasPermission
}

// node appends the path that puts the subject in resource#relation.
func (e *explainer) node(resource graph.ObjectRef, relation string, depth int) bool {
	w := e.w
	if depth > w.limits.MaxDepth {
		return false
	}
	if resource.Type == w.subject.Type && resource.ID == w.subject.ID && relation == w.subject.Relation {
		return true
	}
	rel := w.schema.Relation(resource.Type, relation)
	if rel == nil {
		return false
	}
	if rel.IsPermission() {
		return e.rewrite(resource, rel.Rewrite, depth)
	}
	base := graph.Key{ResourceType: resource.Type, ResourceID: resource.ID, Relation: relation}
	for _, subject := range []graph.SubjectRef{w.subject, {Type: w.subject.Type, ID: graph.Wildcard}} {
		k := base
		k.Subject = subject
		if r := w.snap.Find(k); r != nil {
			if o, err := w.caveatOutcome(r); err == nil && o.m == HasPermission {
				return e.add(r.String())
			}
		}
	}
	for _, r := range w.snap.SubjectSets(resource.Type, resource.ID, relation) {
		if o, err := w.caveatOutcome(r); err != nil || o.m != HasPermission {
			continue
		}
		if e.granted(r.Subject.Object(), r.Subject.Relation, depth+1) {
			return e.add(r.String()) && e.node(r.Subject.Object(), r.Subject.Relation, depth+1)
		}
	}
	return false
}

func (e *explainer) rewrite(resource graph.ObjectRef, rw *schema.Rewrite, depth int) bool {
	w := e.w
	switch rw.Kind {
	case schema.Union:
		for _, child := range rw.Children {
			if o, _, err := w.rewrite(resource, child, depth); err == nil && o.m == HasPermission {
				return e.rewrite(resource, child, depth)
			}
		}
		return false
	case schema.Intersection:
		for i, child := range rw.Children {
			if i > 0 && !e.add("&") {
				return false
			}
			if !e.rewrite(resource, child, depth) {
				return false
			}
		}
		return true
	case schema.Exclusion:
		return e.rewrite(resource, rw.Children[0], depth)
	case schema.Computed:
		return e.node(resource, rw.Relation, depth+1)
	case schema.Arrow:
		for _, r := range w.snap.Subjects(resource.Type, resource.ID, rw.Tupleset) {
			if o, err := w.caveatOutcome(r); err != nil || o.m != HasPermission {
				continue
			}
			if e.granted(r.Subject.Object(), rw.Target, depth+1) {
				if !e.add(r.String()) || !e.node(r.Subject.Object(), rw.Target, depth+1) {
					return false
				}
				if rw.Function != schema.ArrowAll {
					return true
				}
			}
		}
		return rw.Function == schema.ArrowAll
	case schema.Self:
		return e.add(resource.Type + ":" + resource.ID + " is the subject")
	default:
		return false
	}
}
