package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// A delegation hands part of a delegator's access to a delegate. Acting
// through delegation:<id>, the delegate has a permission on a resource only
// if every principal of the chain has it and every link's scope covers it:
// the walker answers the same question once per principal, each with its
// own memo, and intersects the answers. Authority therefore never grows
// along a chain, whatever its length.

// Chain is a delegation resolved into what a check needs.
type Chain struct {
	// Principals lists the root delegator first, then the delegate of each
	// link from the root down.
	Principals []graph.SubjectRef
	// Links lists the delegations from the one asked about up to the root.
	Links []Link
	// Invalid, when not empty, says why the chain grants nothing: a link
	// that is revoked, expired or missing.
	Invalid string
}

// Link is one delegation of a chain.
type Link struct {
	ID    string
	Scope []ScopeItem
}

// ScopeItem grants Permissions on the resources it names: one object
// (Resource with an ID), every object of a type (Resource with an empty
// ID), or every object inside Container, following the relations that the
// schema uses on the left of an arrow (such as dataset#folder and
// folder#parent).
type ScopeItem struct {
	Permissions []string
	Resource    graph.ObjectRef
	Container   graph.ObjectRef
}

// maxContainmentDepth bounds the walk from a resource up to a container.
const maxContainmentDepth = 16

// covers reports whether the item grants permission on resource, whose
// containers are in within.
func (it ScopeItem) covers(within *containers, resource graph.ObjectRef, permission string) bool {
	if !slices.Contains(it.Permissions, permission) {
		return false
	}
	if it.Container.Type != "" {
		return within.has(it.Container)
	}
	return it.Resource.Type == resource.Type && (it.Resource.ID == "" || it.Resource.ID == resource.ID)
}

// containers lists a resource and the objects it reaches through relations
// used as arrow tuplesets, up to maxContainmentDepth steps away. The list
// is made on first use and serves every link of a chain.
type containers struct {
	schema   *schema.Schema
	snap     graph.Snapshot
	resource graph.ObjectRef
	made     bool
	list     []graph.ObjectRef
	set      map[graph.ObjectRef]struct{}
}

// containersListLimit is the length of the list above which has looks
// objects up in a map instead.
const containersListLimit = 32

func (c *containers) has(o graph.ObjectRef) bool {
	if !c.made {
		c.make()
	}
	if c.set != nil {
		_, ok := c.set[o]
		return ok
	}
	return slices.Contains(c.list, o)
}

func (c *containers) make() {
	c.made = true
	c.list = append(c.list, c.resource)
	seen := func(o graph.ObjectRef) bool {
		if c.set != nil {
			_, ok := c.set[o]
			return ok
		}
		return slices.Contains(c.list, o)
	}
	frontier := 0
	for depth := 0; depth < maxContainmentDepth && frontier < len(c.list); depth++ {
		end := len(c.list)
		for _, o := range c.list[frontier:end] {
			for _, rel := range tuplesetRelations(c.schema, o.Type) {
				for _, r := range c.snap.Subjects(o.Type, o.ID, rel) {
					up := r.Subject.Object()
					if seen(up) {
						continue
					}
					c.list = append(c.list, up)
					if c.set != nil {
						c.set[up] = struct{}{}
					} else if len(c.list) > containersListLimit {
						c.set = make(map[graph.ObjectRef]struct{}, 2*len(c.list))
						for _, x := range c.list {
							c.set[x] = struct{}{}
						}
					}
				}
			}
		}
		frontier = end
	}
}

// tuplesetRelations returns the relations of a definition that some
// permission of it follows with an arrow.
func tuplesetRelations(s *schema.Schema, objectType string) []string {
	def := s.Definition(objectType)
	if def == nil {
		return nil
	}
	found := map[string]bool{}
	var walk func(rw *schema.Rewrite)
	walk = func(rw *schema.Rewrite) {
		if rw == nil {
			return
		}
		if rw.Kind == schema.Arrow {
			found[rw.Tupleset] = true
		}
		for _, c := range rw.Children {
			walk(c)
		}
	}
	for _, name := range def.Order {
		walk(def.Relations[name].Rewrite)
	}
	out := make([]string, 0, len(found))
	for _, name := range def.Order {
		if found[name] {
			out = append(out, name)
		}
	}
	return out
}

// LinkCovers reports whether a link's scope grants permission on resource.
func LinkCovers(s *schema.Schema, snap graph.Snapshot, l Link, resource graph.ObjectRef, permission string) bool {
	return l.covers(&containers{schema: s, snap: snap, resource: resource}, resource, permission)
}

func (l Link) covers(within *containers, resource graph.ObjectRef, permission string) bool {
	for _, it := range l.Scope {
		if it.covers(within, resource, permission) {
			return true
		}
	}
	return false
}

// ChainResult is a check through a delegation, with the chain of custody.
type ChainResult struct {
	Result
	// LimitedBy names what denied the check: a link whose scope does not
	// cover it ("scope of delegation:d1"), a principal without the
	// permission ("agent:a"), or why the chain is invalid. It is empty
	// when the check passed.
	LimitedBy string
	Chain     *Chain
	// Why describes the path that granted the permission, when the caller
	// asked for it.
	Why string
}

// resolveChain returns the chain of a delegation subject, or nil when the
// subject is not one: another type, a subject relation, or no resolver.
func (p *Policy) resolveChain(subject graph.SubjectRef) (*Chain, error) {
	if p == nil || p.ResolveDelegation == nil || p.DelegationType == "" ||
		subject.Type != p.DelegationType || subject.Relation != graph.Ellipsis {
		return nil, nil
	}
	return p.ResolveDelegation(subject.ID)
}

// checkChain answers a check through a resolved chain.
func checkChain(s *schema.Schema, snap graph.Snapshot, limits Limits, req CheckRequest, chain *Chain) (ChainResult, error) {
	out := ChainResult{Chain: chain}
	if chain.Invalid != "" {
		out.LimitedBy = chain.Invalid
		return out, nil
	}
	within := &containers{schema: s, snap: snap, resource: req.Resource}
	for _, l := range chain.Links {
		if !l.covers(within, req.Resource, req.Permission) {
			out.LimitedBy = fmt.Sprintf("scope of %s:%s", req.Policy.DelegationType, l.ID)
			return out, nil
		}
	}
	result := outYes
	var whys []string
	for _, principal := range chain.Principals {
		if !req.Policy.allows(principal) {
			out.LimitedBy = principal.String() + " is not active"
			return out, nil
		}
		w := newWalker(s, snap, limits, principal, req.Context)
		w.trustFrom(req.Policy, principal)
		o, err := w.check(req.Resource, req.Permission, 0)
		if err != nil {
			w.release()
			return ChainResult{}, err
		}
		if o.m == NoPermission {
			w.release()
			out.LimitedBy = principal.String()
			return out, nil
		}
		result = and(result, o)
		if req.Explain && o.m == HasPermission {
			whys = append(whys, principal.String()+": "+w.explain(req.Resource, req.Permission))
		}
		w.release()
	}
	out.Result = result.result()
	out.Why = strings.Join(whys, "; ")
	return out, nil
}

// CheckChain answers a check whose subject is a delegation and returns the
// chain of custody with it. For any other subject it answers as Check,
// with a nil Chain. With req.Explain set, Why holds the granting path.
func CheckChain(s *schema.Schema, snap graph.Snapshot, limits Limits, req CheckRequest) (ChainResult, error) {
	chain, err := req.Policy.resolveChain(req.Subject)
	if err != nil {
		return ChainResult{}, err
	}
	if chain != nil {
		return checkChain(s, snap, limits, req, chain)
	}
	if !req.Policy.allows(req.Subject) {
		return ChainResult{LimitedBy: req.Subject.String() + " is not active"}, nil
	}
	w := newWalker(s, snap, limits, req.Subject, req.Context)
	defer w.release()
	w.trustFrom(req.Policy, req.Subject)
	o, err := w.check(req.Resource, req.Permission, 0)
	if err != nil {
		return ChainResult{}, err
	}
	out := ChainResult{Result: o.result()}
	if req.Explain && o.m == HasPermission {
		out.Why = w.explain(req.Resource, req.Permission)
	}
	return out, nil
}

// outcomeOf turns a final result back into an outcome.
func outcomeOf(r Result) outcome {
	switch r.Membership {
	case HasPermission:
		return outYes
	case ConditionalPermission:
		return conditional(r.MissingContext)
	default:
		return outNo
	}
}
