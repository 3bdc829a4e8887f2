package engine

import (
	"errors"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// LookupSubjects lists a subject by itself only where SpiceDB v1.56 does.
// SpiceDB computes the result as a set of concrete subjects plus an
// optional wildcard with excluded subjects (internal/datasets). A subject
// that the wildcard covers is therefore listed by itself only when a
// relationship names it on a path to the permission. The functions here
// evaluate that set for one subject at a time, in the walker's
// three-valued logic.

// subjectSet is the part of a subject set that concerns the walker's
// subject.
type subjectSet struct {
	// concrete is whether the set lists the subject by itself.
	concrete outcome
	// wildcard is whether the set has the subject type's wildcard; it
	// does not depend on the subject.
	wildcard outcome
	// excluded is whether the wildcard excludes the subject.
	excluded outcome
}

var emptySet = subjectSet{concrete: outNo, wildcard: outNo, excluded: outNo}

func not(o outcome) outcome { return andNot(outYes, o) }

// member is whether the set contains the subject, by itself or through the
// wildcard.
func (s subjectSet) member() outcome {
	return or(s.concrete, and(s.wildcard, not(s.excluded)))
}

// failed reports whether a part of the set depends on a caveat that could
// not be evaluated.
func (s subjectSet) failed() bool {
	return s.concrete.err != nil || s.wildcard.err != nil || s.excluded.err != nil
}

// unionSets combines sets as a union. A subject is excluded only if every
// wildcard that can be present excludes it, and not when a set lists it.
func unionSets(parts []subjectSet) subjectSet {
	out := emptySet
	excluded := outYes
	wildcards := 0
	for _, p := range parts {
		out.concrete = or(out.concrete, p.concrete)
		if p.wildcard.m == NoPermission {
			continue
		}
		wildcards++
		out.wildcard = or(out.wildcard, p.wildcard)
		excluded = and(excluded, p.excluded)
	}
	if wildcards > 0 {
		out.excluded = and(excluded, not(out.concrete))
	}
	return out
}

// intersectSets combines two sets as an intersection: the subject is
// listed if one side lists it and the other contains it, and the
// wildcards' exclusions add up.
func intersectSets(a, b subjectSet) subjectSet {
	return subjectSet{
		concrete: or(and(a.concrete, b.member()), and(a.member(), b.concrete)),
		wildcard: and(a.wildcard, b.wildcard),
		excluded: or(a.excluded, b.excluded),
	}
}

// subtractSets removes b from a. A subject that b's wildcard excludes and
// a's wildcard covers becomes listed by itself, as in SpiceDB, because the
// remaining wildcard cannot express it.
func subtractSets(a, b subjectSet) subjectSet {
	covered := and(a.wildcard, not(a.excluded))
	leftOver := and(and(covered, not(b.concrete)), and(b.wildcard, b.excluded))
	return subjectSet{
		concrete: or(and(a.concrete, not(b.member())), leftOver),
		wildcard: and(a.wildcard, not(b.wildcard)),
		excluded: or(a.excluded, b.concrete),
	}
}

// errSetTooDeep stops a setWalker that went deeper than the walker's
// depth limit.
var errSetTooDeep = errors.New("subject set walk exceeds the depth limit")

type setKey struct {
	object   graph.ObjectRef
	relation string
}

// setWalker evaluates subject sets for the subject of its walker. A node
// met again while it is being evaluated counts as the empty set. On a
// cycle in the data the result may therefore be smaller than the check's,
// and the caller then lists the subject by the check alone.
type setWalker struct {
	w       *walker
	memo    map[setKey]subjectSet
	onStack map[setKey]bool
}

func newSetWalker(w *walker) *setWalker {
	return &setWalker{w: w, memo: map[setKey]subjectSet{}, onStack: map[setKey]bool{}}
}

func (sw *setWalker) isSubject(o graph.ObjectRef, relation string) bool {
	s := sw.w.subject
	return o.Type == s.Type && o.ID == s.ID && relation == s.Relation
}

// set returns the subject set of resource#relation.
func (sw *setWalker) set(resource graph.ObjectRef, relation string, depth int) (subjectSet, error) {
	if depth > sw.w.limits.MaxDepth {
		return emptySet, errSetTooDeep
	}
	key := setKey{resource, relation}
	if s, ok := sw.memo[key]; ok {
		return s, nil
	}
	if sw.onStack[key] {
		return emptySet, nil
	}
	rel := sw.w.schema.Relation(resource.Type, relation)
	if rel == nil {
		return emptySet, nil
	}
	sw.onStack[key] = true
	var s subjectSet
	var err error
	if rel.IsPermission() {
		s, err = sw.rewrite(resource, rel.Rewrite, depth)
	} else {
		s, err = sw.direct(resource, relation, depth)
	}
	delete(sw.onStack, key)
	if err != nil {
		return emptySet, err
	}
	// SpiceDB returns the resource itself when it is of the subject's type
	// and relation, in addition to the relation's own subjects.
	if sw.isSubject(resource, relation) {
		s.concrete, s.excluded = outYes, outNo
	}
	sw.memo[key] = s
	return s, nil
}

func (sw *setWalker) direct(resource graph.ObjectRef, relation string, depth int) (subjectSet, error) {
	subject := sw.w.subject
	var parts []subjectSet
	for _, r := range sw.w.snap.Subjects(resource.Type, resource.ID, relation) {
		caveat, err := sw.w.caveatOutcome(r)
		if err != nil {
			return emptySet, err
		}
		if caveat.m == NoPermission {
			continue
		}
		s := r.Subject
		if s.Type == subject.Type && s.ID == subject.ID && s.Relation == subject.Relation {
			parts = append(parts, subjectSet{concrete: caveat, wildcard: outNo, excluded: outNo})
		}
		// Check matches a wildcard whatever the subject relation, as
		// SpiceDB v1.56's check does.
		if s.ID == graph.Wildcard && s.Type == subject.Type {
			parts = append(parts, subjectSet{concrete: outNo, wildcard: caveat, excluded: outNo})
			continue
		}
		if s.Relation == graph.Ellipsis {
			continue
		}
		inner, err := sw.set(s.Object(), s.Relation, depth+1)
		if err != nil {
			return emptySet, err
		}
		parts = append(parts, withCaveat(inner, caveat))
	}
	return unionSets(parts), nil
}

// withCaveat applies a relationship's caveat to the set reached through
// it. The exclusions keep their own caveats.
func withCaveat(s subjectSet, caveat outcome) subjectSet {
	return subjectSet{concrete: and(caveat, s.concrete), wildcard: and(caveat, s.wildcard), excluded: s.excluded}
}

func (sw *setWalker) rewrite(resource graph.ObjectRef, rw *schema.Rewrite, depth int) (subjectSet, error) {
	switch rw.Kind {
	case schema.Union:
		parts := make([]subjectSet, 0, len(rw.Children))
		for _, child := range rw.Children {
			s, err := sw.rewrite(resource, child, depth)
			if err != nil {
				return emptySet, err
			}
			parts = append(parts, s)
		}
		return unionSets(parts), nil
	case schema.Intersection, schema.Exclusion:
		result, err := sw.rewrite(resource, rw.Children[0], depth)
		if err != nil {
			return emptySet, err
		}
		for _, child := range rw.Children[1:] {
			s, err := sw.rewrite(resource, child, depth)
			if err != nil {
				return emptySet, err
			}
			if rw.Kind == schema.Intersection {
				result = intersectSets(result, s)
			} else {
				result = subtractSets(result, s)
			}
		}
		return result, nil
	case schema.Computed:
		return sw.set(resource, rw.Relation, depth+1)
	case schema.Arrow:
		return sw.arrow(resource, rw, depth)
	case schema.Self:
		subject := sw.w.subject
		if subject.Type == resource.Type && subject.ID == resource.ID && subject.Relation == graph.Ellipsis {
			return subjectSet{concrete: outYes, wildcard: outNo, excluded: outNo}, nil
		}
		return emptySet, nil
	default: // schema.Nil
		return emptySet, nil
	}
}

// arrow combines the target sets of the tupleset's subject objects: their
// union, or for .all() their intersection, which is empty unless every
// relationship's caveat can hold.
func (sw *setWalker) arrow(resource graph.ObjectRef, rw *schema.Rewrite, depth int) (subjectSet, error) {
	rels := sw.w.snap.Subjects(resource.Type, resource.ID, rw.Tupleset)
	all := rw.Function == schema.ArrowAll
	if all && len(rels) == 0 {
		return emptySet, nil
	}
	var parts []subjectSet
	for i, r := range rels {
		caveat, err := sw.w.caveatOutcome(r)
		if err != nil {
			return emptySet, err
		}
		if caveat.m == NoPermission {
			if all {
				return emptySet, nil
			}
			continue
		}
		target, err := sw.set(r.Subject.Object(), rw.Target, depth+1)
		if err != nil {
			return emptySet, err
		}
		target = withCaveat(target, caveat)
		if !all {
			parts = append(parts, target)
			continue
		}
		if i == 0 {
			parts = []subjectSet{target}
		} else {
			parts[0] = intersectSets(parts[0], target)
		}
	}
	if all {
		return parts[0], nil
	}
	return unionSets(parts), nil
}
