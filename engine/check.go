package engine

import (
	"fmt"
	"sync"

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
	defer w.release()
	w.trustFrom(req.Policy, req.Subject)
	o, err := w.check(req.Resource, req.Permission, 0)
	if err != nil {
		return Result{}, err
	}
	return o.result(), nil
}

// node is an object as the walker visits it: its reference, and its
// handle in the snapshot's index, which is 0 when no relationship names
// the object.
type node struct {
	ref    graph.ObjectRef
	handle graph.ObjectHandle
}

// memoKey is one resource relation whose membership of the walker's fixed
// subject is being decided: the object's handle in the high 32 bits and the
// relation's number from relationIDs in the low ones, so that a memo lookup
// hashes one word and no strings.
type memoKey uint64

func memoKeyOf(handle graph.ObjectHandle, relation uint32) memoKey {
	return memoKey(uint64(handle)<<32 | uint64(relation))
}

// refMemoKey is the memo key of a node whose object has no handle.
type refMemoKey struct {
	ref      graph.ObjectRef
	relation uint32
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
	schema    *schema.Schema
	relations *relationIDs
	snap      graph.Snapshot
	limits    Limits
	subject   graph.SubjectRef
	// subjectHandle is the handle of the subject's object, and
	// wildcardHandle that of the subject type's wildcard object. It is 0
	// when the subject is itself a wildcard, which matches no other
	// wildcard.
	subjectHandle  graph.ObjectHandle
	wildcardHandle graph.ObjectHandle
	context        map[string]any
	// trusted is server-supplied caveat context that overrides the
	// request's and the relationship's. It is asked of policy for
	// trustedFor when a caveat first needs it, because most walks
	// evaluate no caveat.
	trusted     map[string]any
	policy      *Policy
	trustedFor  graph.SubjectRef
	trustedRead bool
	// caveatOutcomes holds the outcome of each caveat evaluated for a
	// relationship without caveat context, made on first use.
	caveatOutcomes map[*schema.Caveat]outcome
	memo           map[memoKey]memoEntry
	// refMemo holds the nodes whose object has no handle. It is rarely
	// used, so it is made on first use.
	refMemo map[refMemoKey]memoEntry
	// edges is a stack of the relationships that the calls on the walk's
	// path iterate over. Each call appends its relationships, reads them by
	// index while deeper calls push and pop above them, and pops them
	// before it returns, so a walk reuses one buffer.
	edges []graph.Edge
}

// walkerPool keeps walkers with their memo and edge buffer, so a check
// does not grow a new map and slice each time.
var walkerPool = sync.Pool{New: func() any {
	return &walker{memo: make(map[memoKey]memoEntry)}
}}

// maxPooledMemo is the largest memo and edge buffer that a released walker
// may keep. A walker that grew past it is left to the garbage collector,
// so that one large check does not pin its memory in the pool.
const maxPooledMemo = 4096

// newWalker returns a walker for subject from the pool. Check and
// CheckChain release theirs. A caller that does not call release is still
// correct, and the pool makes a new walker in its place.
func newWalker(s *schema.Schema, snap graph.Snapshot, limits Limits, subject graph.SubjectRef, ctx map[string]any) *walker {
	w := walkerPool.Get().(*walker)
	w.schema = s
	w.relations = relationIDsOf(s)
	w.snap = snap
	w.limits = limits.withDefaults()
	w.subject = subject
	w.subjectHandle, w.wildcardHandle = snap.SubjectHandles(subject)
	if subject.ID == graph.Wildcard {
		w.wildcardHandle = 0
	}
	w.context = ctx
	return w
}

// trustFrom makes the walker take its trusted context from p's trusted
// context for subject, requested on first use.
func (w *walker) trustFrom(p *Policy, subject graph.SubjectRef) {
	w.policy, w.trustedFor, w.trustedRead, w.trusted = p, subject, false, nil
}

// trustedContext returns the trusted context, asking the policy for it the
// first time.
func (w *walker) trustedContext() map[string]any {
	if !w.trustedRead {
		w.trusted = w.policy.trusted(w.trustedFor)
		w.trustedRead = true
	}
	return w.trusted
}

// release clears the walker and returns it to the pool. The walker must
// not be used afterwards.
func (w *walker) release() {
	if len(w.memo) > maxPooledMemo || cap(w.edges) > maxPooledMemo {
		return
	}
	clear(w.memo)
	w.refMemo = nil
	clear(w.edges[:cap(w.edges)])
	*w = walker{memo: w.memo, edges: w.edges[:0]}
	walkerPool.Put(w)
}

func (w *walker) nodeOf(o graph.ObjectRef) node {
	return node{ref: o, handle: w.snap.HandleOf(o)}
}

// isSubject reports whether n#relation is the walker's subject.
func (w *walker) isSubject(n node, relation string) bool {
	if relation != w.subject.Relation {
		return false
	}
	if n.handle != 0 && w.subjectHandle != 0 {
		return n.handle == w.subjectHandle
	}
	return n.ref.Type == w.subject.Type && n.ref.ID == w.subject.ID
}

func (w *walker) memoGet(n node, relation uint32) (memoEntry, bool) {
	if n.handle != 0 {
		e, ok := w.memo[memoKeyOf(n.handle, relation)]
		return e, ok
	}
	e, ok := w.refMemo[refMemoKey{n.ref, relation}]
	return e, ok
}

func (w *walker) memoPut(n node, relation uint32, e memoEntry) {
	if n.handle != 0 {
		w.memo[memoKeyOf(n.handle, relation)] = e
		return
	}
	if w.refMemo == nil {
		w.refMemo = make(map[refMemoKey]memoEntry)
	}
	w.refMemo[refMemoKey{n.ref, relation}] = e
}

func (w *walker) memoDelete(n node, relation uint32) {
	if n.handle != 0 {
		delete(w.memo, memoKeyOf(n.handle, relation))
		return
	}
	delete(w.refMemo, refMemoKey{n.ref, relation})
}

// popEdges drops the edges that the call which saw len(w.edges) == start
// pushed, clearing them so the pool does not keep relationships alive.
func (w *walker) popEdges(start int) {
	clear(w.edges[start:])
	w.edges = w.edges[:start]
}

// check decides whether the subject is in resource#relation. It fails
// when the result depends on a caveat that could not be evaluated.
func (w *walker) check(resource graph.ObjectRef, relation string, depth int) (outcome, error) {
	o, _, err := w.checkNodeAt(w.nodeOf(resource), relation, depth)
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
	return w.checkNodeAt(w.nodeOf(resource), relation, depth)
}

// checkNodeAt is checkNode for a node whose handle is known.
func (w *walker) checkNodeAt(n node, relation string, depth int) (outcome, int, error) {
	noCut := depth + 1
	if w.isSubject(n, relation) {
		return outYes, noCut, nil
	}
	numbered, found := w.relations.lookup(n.ref.Type, relation)
	rel := numbered.rel
	if found {
		if e, ok := w.memoGet(n, numbered.id); ok {
			if e.onStack >= 0 {
				return outNo, e.onStack, nil
			}
			return e.o, noCut, nil
		}
	}
	if depth >= w.limits.MaxDepth {
		return outNo, noCut, fmt.Errorf("check %s:%s#%s: %w (limit %d)",
			n.ref.Type, n.ref.ID, relation, ErrMaxDepth, w.limits.MaxDepth)
	}
	if !found {
		// An arrow may reach an object type without the target relation;
		// that path grants nothing.
		return outNo, noCut, nil
	}

	w.memoPut(n, numbered.id, memoEntry{onStack: depth})
	var o outcome
	var cut int
	var err error
	if rel.IsPermission() {
		o, cut, err = w.rewriteAt(n, rel.Rewrite, depth)
	} else {
		o, cut, err = w.direct(n, relation, depth)
	}
	if err != nil {
		w.memoDelete(n, numbered.id)
		return outNo, noCut, err
	}
	if cut < depth && o.m != HasPermission {
		// The outcome leaned on a node above this one that was cut; a later
		// evaluation may see more, so forget it.
		w.memoDelete(n, numbered.id)
		return o, cut, nil
	}
	w.memoPut(n, numbered.id, memoEntry{o: o, onStack: -1})
	return o, noCut, nil
}

// direct evaluates a relation that stores relationships.
func (w *walker) direct(n node, relation string, depth int) (outcome, int, error) {
	result := outNo
	cut := depth + 1
	start := len(w.edges)
	// A wildcard relationship grants its relation to every object of the
	// subject type, and SpiceDB v1.56 matches it whatever the subject
	// relation: user:* matches user:tom, and group:* matches
	// group:eng#member.
	exact, wildcard, edges := w.snap.DirectEdges(w.edges, n.handle, relation,
		w.subjectHandle, w.subject.Relation, w.wildcardHandle)
	w.edges = edges
	end := len(w.edges)
	defer w.popEdges(start)

	for _, r := range [2]*graph.Relationship{exact, wildcard} {
		if r == nil {
			continue
		}
		o, err := w.caveatOutcome(r)
		if err != nil {
			return outNo, cut, err
		}
		if result = or(result, o); result.m == HasPermission {
			return result, cut, nil
		}
	}
	for i := start; i < end; i++ {
		e := w.edges[i]
		r := e.Relationship
		if e.Subject == w.subjectHandle && r.Subject.Relation == w.subject.Relation {
			continue // already decided by the exact match above
		}
		caveat, err := w.caveatOutcome(r)
		if err != nil {
			return outNo, cut, err
		}
		if caveat.m == NoPermission {
			continue
		}
		o, c, err := w.checkNodeAt(node{ref: r.Subject.Object(), handle: e.Subject}, r.Subject.Relation, depth+1)
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
	return w.rewriteAt(w.nodeOf(resource), rw, depth)
}

// rewriteAt is rewrite for a node whose handle is known.
func (w *walker) rewriteAt(n node, rw *schema.Rewrite, depth int) (outcome, int, error) {
	resource := n.ref
	cut := depth + 1
	switch rw.Kind {
	case schema.Union:
		result := outNo
		for _, child := range rw.Children {
			o, c, err := w.rewriteAt(n, child, depth)
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
			o, c, err := w.rewriteAt(n, child, depth)
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
		result, c, err := w.rewriteAt(n, rw.Children[0], depth)
		if err != nil {
			return outNo, cut, err
		}
		cut = min(cut, c)
		for _, child := range rw.Children[1:] {
			if result.m == NoPermission {
				break
			}
			o, c, err := w.rewriteAt(n, child, depth)
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
		return w.checkNodeAt(n, rw.Relation, depth+1)
	case schema.Arrow:
		return w.arrow(n, rw, depth)
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
func (w *walker) arrow(n node, rw *schema.Rewrite, depth int) (outcome, int, error) {
	cut := depth + 1
	start := len(w.edges)
	w.edges = w.snap.AppendEdges(w.edges, n.handle, rw.Tupleset, false)
	end := len(w.edges)
	defer w.popEdges(start)
	all := rw.Function == schema.ArrowAll
	if all && end == start {
		return outNo, cut, nil
	}
	result := outNo
	if all {
		result = outYes
	}
	for i := start; i < end; i++ {
		e := w.edges[i]
		r := e.Relationship
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
		o, c, err := w.checkNodeAt(node{ref: r.Subject.Object(), handle: e.Subject}, rw.Target, depth+1)
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
