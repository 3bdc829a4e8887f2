package engine

import (
	"sort"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// Lookups are answered in two steps. A walk over relationship edges,
// ignoring what the relations mean, finds every object that could be in
// the answer: a superset, because any permission path from a resource to a
// subject follows such edges. Each candidate is then decided by the same
// walker that answers Check, sharing its memo, so a lookup can never
// disagree with Check at the same revision.

// ResourceResult is one resource found by LookupResources.
type ResourceResult struct {
	ID     string
	Result Result
}

// LookupResourcesRequest asks for the resources of ResourceType on which
// Subject has Permission.
type LookupResourcesRequest struct {
	ResourceType string
	Permission   string
	Subject      graph.SubjectRef
	Context      map[string]any
	// After skips every resource id up to and including it.
	After string
	// Limit stops after this many results; 0 means no limit.
	Limit int
	// Policy applies the server's rules about subjects; nil applies none.
	Policy *Policy
}

// LookupResources returns the matching resources sorted by id, with no
// permission results left out, and reports whether more remain after the
// last one returned.
func LookupResources(s *schema.Schema, snap graph.Snapshot, limits Limits, req LookupResourcesRequest) ([]ResourceResult, bool, error) {
	chain, err := req.Policy.resolveChain(req.Subject)
	if err != nil {
		return nil, false, err
	}
	seed := req.Subject
	if chain != nil {
		if chain.Invalid != "" || len(chain.Principals) == 0 {
			return nil, false, nil
		}
		// Every result must be in the delegate's own lookup, so its
		// candidates are enough.
		seed = chain.Principals[len(chain.Principals)-1]
	}
	if !req.Policy.allows(seed) {
		return nil, false, nil
	}
	candidates := reverseReachable(s, snap, seed, req.ResourceType)
	w := newWalker(s, snap, limits, req.Subject, req.Context)
	w.trustFrom(req.Policy, req.Subject)
	var out []ResourceResult
	for _, id := range candidates {
		if req.After != "" && id <= req.After {
			continue
		}
		resource := graph.ObjectRef{Type: req.ResourceType, ID: id}
		var o outcome
		if chain != nil {
			res, err := checkChain(s, snap, limits, CheckRequest{
				Resource: resource, Permission: req.Permission, Subject: req.Subject,
				Context: req.Context, Policy: req.Policy,
			}, chain)
			if err != nil {
				return nil, false, err
			}
			o = outcomeOf(res.Result)
		} else if o, err = w.check(resource, req.Permission, 0); err != nil {
			return nil, false, err
		}
		if o.m == NoPermission {
			continue
		}
		if req.Limit > 0 && len(out) == req.Limit {
			return out, true, nil
		}
		out = append(out, ResourceResult{ID: id, Result: o.result()})
	}
	return out, false, nil
}

// subjectSetsOf returns the subject references an object can appear as in
// a relationship: the object itself and the object through each of its
// relations and permissions.
func subjectSetsOf(s *schema.Schema, o graph.ObjectRef) []graph.SubjectRef {
	refs := []graph.SubjectRef{{Type: o.Type, ID: o.ID}}
	if def := s.Definition(o.Type); def != nil {
		for _, name := range def.Order {
			refs = append(refs, graph.SubjectRef{Type: o.Type, ID: o.ID, Relation: name})
		}
	}
	return refs
}

// reverseReachable returns the sorted ids of the objects of resourceType
// from which some chain of relationships leads to the subject's object, or
// to the wildcard of its type, or that are the subject's object itself.
func reverseReachable(s *schema.Schema, snap graph.Snapshot, subject graph.SubjectRef, resourceType string) []string {
	start := graph.ObjectRef{Type: subject.Type, ID: subject.ID}
	seen := map[graph.ObjectRef]struct{}{start: {}}
	queue := []graph.ObjectRef{start}
	wildcard := graph.ObjectRef{Type: subject.Type, ID: graph.Wildcard}
	seen[wildcard] = struct{}{}
	queue = append(queue, wildcard)
	for len(queue) > 0 {
		o := queue[0]
		queue = queue[1:]
		refs := []graph.SubjectRef{{Type: o.Type, ID: o.ID}}
		if o.ID != graph.Wildcard {
			refs = subjectSetsOf(s, o)
		}
		for _, ref := range refs {
			for _, r := range snap.Resources(ref, "", "") {
				next := graph.ObjectRef{Type: r.ResourceType, ID: r.ResourceID}
				if _, ok := seen[next]; !ok {
					seen[next] = struct{}{}
					queue = append(queue, next)
				}
			}
		}
	}
	var ids []string
	for o := range seen {
		if o.Type == resourceType && o.ID != graph.Wildcard {
			ids = append(ids, o.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// forwardReachable returns the sorted ids of the objects of subjectType
// that some chain of relationships from resource leads to, and whether a
// wildcard of subjectType was reached.
func forwardReachable(s *schema.Schema, snap graph.Snapshot, resource graph.ObjectRef, subjectType string) ([]string, bool) {
	seen := map[graph.ObjectRef]struct{}{resource: {}}
	queue := []graph.ObjectRef{resource}
	wildcard := false
	for len(queue) > 0 {
		o := queue[0]
		queue = queue[1:]
		def := s.Definition(o.Type)
		if def == nil {
			continue
		}
		for _, name := range def.Order {
			if def.Relations[name].IsPermission() {
				continue
			}
			for _, r := range snap.Subjects(o.Type, o.ID, name) {
				next := r.Subject.Object()
				if next.ID == graph.Wildcard {
					wildcard = wildcard || next.Type == subjectType
					continue
				}
				if _, ok := seen[next]; !ok {
					seen[next] = struct{}{}
					queue = append(queue, next)
				}
			}
		}
	}
	var ids []string
	for o := range seen {
		if o.Type == subjectType {
			ids = append(ids, o.ID)
		}
	}
	sort.Strings(ids)
	return ids, wildcard
}
