package engine

import (
	"fmt"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// Limits bounds the work of one request. The zero value uses the defaults.
type Limits struct {
	// MaxDepth is the deepest chain of relations a check may follow; the
	// default is 50, as in SpiceDB.
	MaxDepth int
	// MaxCaveatCost bounds the CEL cost of one caveat evaluation; 0 means
	// no bound.
	MaxCaveatCost uint64
}

const defaultMaxDepth = 50

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	return l
}

// CheckRequest asks whether Subject has Permission on Resource.
type CheckRequest struct {
	Resource   graph.ObjectRef
	Permission string
	Subject    graph.SubjectRef
	// Context is the request's caveat context.
	Context map[string]any
	// Policy applies the server's rules about subjects; nil applies none.
	Policy *Policy
	// Explain asks CheckChain for the path that granted the permission.
	Explain bool
}

// Check answers one permission question at the snapshot's revision.
// The caller validates that the resource type and permission exist.
func Check(s *schema.Schema, snap graph.Snapshot, limits Limits, req CheckRequest) (Result, error) {
	chain, err := req.Policy.resolveChain(req.Subject)
	if err != nil {
		return Result{}, err
	}
	if chain != nil {
		res, err := checkChain(s, snap, limits, req, chain)
		return res.Result, err
	}
	if !req.Policy.allows(req.Subject) {
		return Result{Membership: NoPermission}, nil
	}
	w := newWalker(s, snap, limits, req.Subject, req.Context)
	w.trusted = req.Policy.trusted(req.Subject)
	o, err := w.check(req.Resource, req.Permission, 0)
	if err != nil {
		return Result{}, err
	}
	return o.result(), nil
}

// nodeKey is one resource relation whose membership of the walker's fixed
// subject is being decided.
type nodeKey struct {
	typ, id, rel string
}

type memoEntry struct {
	o outcome
	// onStack is the depth at which the node is being evaluated, or -1
	// once its outcome is final.
	onStack int
}

// walker evaluates checks for one subject. It memoizes the outcome of each
// resource relation for the subject, and cuts cycles in the data: a node
// met again while it is still being evaluated counts as no permission for
// that path, which is the least fixed point of the recursive definition.
// An outcome that depended on such a cut is not memoized, because the node
// that was cut may still turn out to be a member. A cycle through the
// excluded side of an exclusion has no least fixed point, so the walker
// fails it with ErrMaxDepth.
type walker struct {
	schema  *schema.Schema
	snap    graph.Snapshot
	limits  Limits
	subject graph.SubjectRef
	context map[string]any
	// trusted is server-supplied caveat context that overrides the
	// request's and the relationship's.
	trusted map[string]any
	memo    map[nodeKey]*memoEntry
}

func newWalker(s *schema.Schema, snap graph.Snapshot, limits Limits, subject graph.SubjectRef, ctx map[string]any) *walker {
	return &walker{
		schema:  s,
		snap:    snap,
		limits:  limits.withDefaults(),
		subject: subject,
		context: ctx,
		memo:    make(map[nodeKey]*memoEntry),
	}
}

// check decides whether the subject is in resource#relation. It fails
// when the result depends on a caveat that could not be evaluated.
func (w *walker) check(resource graph.ObjectRef, relation string, depth int) (outcome, error) {
	o, _, err := w.checkNode(resource, relation, depth)
	if err != nil {
		return outNo, err
	}
	if o.err != nil {
		return outNo, o.err
	}
	return o, nil
}

// checkNode decides whether the subject is in resource#relation. It
// returns the outcome and the shallowest stack depth of a cut node it
// depended on (depth+1 or more when it depended on none above itself).
func (w *walker) checkNode(resource graph.ObjectRef, relation string, depth int) (outcome, int, error) {
	noCut := depth + 1
	if resource.Type == w.subject.Type && resource.ID == w.subject.ID && relation == w.subject.Relation {
		return outYes, noCut, nil
	}
	key := nodeKey{resource.Type, resource.ID, relation}
	if e, ok := w.memo[key]; ok {
		if e.onStack >= 0 {
			return outNo, e.onStack, nil
		}
		return e.o, noCut, nil
	}
	if depth >= w.limits.MaxDepth {
		return outNo, noCut, fmt.Errorf("check %s:%s#%s: %w (limit %d)",
			resource.Type, resource.ID, relation, ErrMaxDepth, w.limits.MaxDepth)
	}
	rel := w.schema.Relation(resource.Type, relation)
	if rel == nil {
		// An arrow may reach an object type without the target relation;
		// that path grants nothing.
		return outNo, noCut, nil
	}

	entry := &memoEntry{onStack: depth}
	w.memo[key] = entry
	var o outcome
	var cut int
	var err error
	if rel.IsPermission() {
		o, cut, err = w.rewrite(resource, rel.Rewrite, depth)
	} else {
		o, cut, err = w.direct(resource, relation, depth)
	}
	if err != nil {
		delete(w.memo, key)
		return outNo, noCut, err
	}
	if cut < depth && o.m != HasPermission {
		// The outcome leaned on a node above this one that was cut; a later
		// evaluation may see more, so forget it.
		delete(w.memo, key)
		return o, cut, nil
	}
	entry.o, entry.onStack = o, -1
	return o, noCut, nil
}

// direct evaluates a relation that stores relationships.
func (w *walker) direct(resource graph.ObjectRef, relation string, depth int) (outcome, int, error) {
	result := outNo
	cut := depth + 1
	base := graph.Key{ResourceType: resource.Type, ResourceID: resource.ID, Relation: relation}

	exact := base
	exact.Subject = w.subject
	if r := w.snap.Find(exact); r != nil {
		o, err := w.caveatOutcome(r)
		if err != nil {
			return outNo, cut, err
		}
		if result = or(result, o); result.m == HasPermission {
			return result, cut, nil
		}
	}
	// A wildcard relationship grants its relation to every object of the
	// subject type, and SpiceDB v1.56 matches it whatever the subject
	// relation: user:* matches user:tom, and group:* matches
	// group:eng#member.
	if w.subject.ID != graph.Wildcard {
		wildcard := base
		wildcard.Subject = graph.SubjectRef{Type: w.subject.Type, ID: graph.Wildcard}
		if r := w.snap.Find(wildcard); r != nil {
			o, err := w.caveatOutcome(r)
			if err != nil {
				return outNo, cut, err
			}
			if result = or(result, o); result.m == HasPermission {
				return result, cut, nil
			}
		}
	}
	for _, r := range w.snap.SubjectSets(resource.Type, resource.ID, relation) {
		if r.Subject == w.subject {
			continue // already decided by the exact match above
		}
		caveat, err := w.caveatOutcome(r)
		if err != nil {
			return outNo, cut, err
		}
		if caveat.m == NoPermission {
			continue
		}
		o, c, err := w.checkNode(r.Subject.Object(), r.Subject.Relation, depth+1)
		if err != nil {
			return outNo, cut, err
		}
		cut = min(cut, c)
		if result = or(result, and(caveat, o)); result.m == HasPermission {
			return result, depth + 1, nil
		}
	}
	return result, cut, nil
}

// rewrite evaluates one node of a permission's rewrite tree.
func (w *walker) rewrite(resource graph.ObjectRef, rw *schema.Rewrite, depth int) (outcome, int, error) {
	cut := depth + 1
	switch rw.Kind {
	case schema.Union:
		result := outNo
		for _, child := range rw.Children {
			o, c, err := w.rewrite(resource, child, depth)
			if err != nil {
				return outNo, cut, err
			}
			cut = min(cut, c)
			if result = or(result, o); result.m == HasPermission {
				return result, depth + 1, nil
			}
		}
		return result, cut, nil
	case schema.Intersection:
		result := outYes
		for _, child := range rw.Children {
			o, c, err := w.rewrite(resource, child, depth)
			if err != nil {
				return outNo, cut, err
			}
			cut = min(cut, c)
			if result = and(result, o); result.m == NoPermission {
				return result, cut, nil
			}
		}
		return result, cut, nil
	case schema.Exclusion:
		result, c, err := w.rewrite(resource, rw.Children[0], depth)
		if err != nil {
			return outNo, cut, err
		}
		cut = min(cut, c)
		for _, child := range rw.Children[1:] {
			if result.m == NoPermission {
				break
			}
			o, c, err := w.rewrite(resource, child, depth)
			if err != nil {
				return outNo, cut, err
			}
			// A cut node counts as no permission. That is sound under
			// union and intersection, but a subtracted cut lets the cycle
			// decide its own result. SpiceDB v1.56 fails such a check with
			// its max depth error, and so does Mandate.
			if c <= depth && o.m != HasPermission {
				return outNo, cut, fmt.Errorf("check %s:%s: %w: a cycle in the data passes through the excluded side of an exclusion",
					resource.Type, resource.ID, ErrMaxDepth)
			}
			cut = min(cut, c)
			result = andNot(result, o)
		}
		return result, cut, nil
	case schema.Computed:
		return w.checkNode(resource, rw.Relation, depth+1)
	case schema.Arrow:
		return w.arrow(resource, rw, depth)
	case schema.Self:
		if w.subject.Type == resource.Type && w.subject.ID == resource.ID && w.subject.Relation == graph.Ellipsis {
			return outYes, cut, nil
		}
		return outNo, cut, nil
	default: // schema.Nil
		return outNo, cut, nil
	}
}

// arrow follows the tupleset relation of resource to each subject object
// and evaluates the target relation there.
//
// For .all(), every relationship of the tupleset counts, including one
// whose caveat is false. SpiceDB v1.56 requires each subject object to be
// a member and ANDs the caveat of each relationship into the result, so a
// false caveat makes the whole arrow false.
func (w *walker) arrow(resource graph.ObjectRef, rw *schema.Rewrite, depth int) (outcome, int, error) {
	cut := depth + 1
	rels := w.snap.Subjects(resource.Type, resource.ID, rw.Tupleset)
	all := rw.Function == schema.ArrowAll
	if all && len(rels) == 0 {
		return outNo, cut, nil
	}
	result := outNo
	if all {
		result = outYes
	}
	for _, r := range rels {
		caveat, err := w.caveatOutcome(r)
		if err != nil {
			return outNo, cut, err
		}
		if caveat.m == NoPermission {
			if all {
				return outNo, cut, nil
			}
			continue
		}
		o, c, err := w.checkNode(r.Subject.Object(), rw.Target, depth+1)
		if err != nil {
			return outNo, cut, err
		}
		cut = min(cut, c)
		o = and(caveat, o)
		if all {
			if result = and(result, o); result.m == NoPermission {
				return result, cut, nil
			}
			continue
		}
		if result = or(result, o); result.m == HasPermission {
			return result, depth + 1, nil
		}
	}
	return result, cut, nil
}
