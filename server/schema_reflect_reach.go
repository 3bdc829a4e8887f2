package server

import (
	"sort"

	"github.com/mandate-iam/mandate/schema"
)

// relationRef names a relation or permission of a definition. As a
// subject type, relation schema.Ellipsis stands for the object itself.
type relationRef struct {
	definition string
	relation   string
}

// entrypoint is one way a subject type enters a relation or permission:
// target is the relation or permission whose value it feeds, and tupleset
// is the relation on target's definition that an arrow walks, or "".
type entrypoint struct {
	target   relationRef
	tupleset string
}

// entrypoints lists, for one relation or permission, the subject types
// that feed it directly: a relation is fed by its allowed subject types,
// a permission by the relations, permissions and arrow targets that its
// rewrite names. Wildcard subject types ("user:*") are kept apart,
// because they match every relation of their definition.
type entrypoints struct {
	bySubjectType     map[string][]entrypoint
	bySubjectRelation map[relationRef][]entrypoint
	// subjectRelations lists the keys of bySubjectRelation, sorted.
	subjectRelations []relationRef
}

// reachability computes the results of ComputablePermissions and
// DependentRelations by walking the schema from relation to relation, as
// SpiceDB's reachability graph (pkg/schema in v1.56) does, so that both
// servers return the same sets.
type reachability struct {
	schema *schema.Schema
	cache  map[relationRef]*entrypoints
}

func newReachability(s *schema.Schema) *reachability {
	return &reachability{schema: s, cache: make(map[relationRef]*entrypoints)}
}

// entrypointsOf builds, or returns from the cache, the entrypoints of a
// relation or permission. An unknown relation has none.
func (r *reachability) entrypointsOf(ref relationRef) *entrypoints {
	if eps, ok := r.cache[ref]; ok {
		return eps
	}
	eps := &entrypoints{
		bySubjectType:     make(map[string][]entrypoint),
		bySubjectRelation: make(map[relationRef][]entrypoint),
	}
	r.cache[ref] = eps

	rel := r.schema.Relation(ref.definition, ref.relation)
	switch {
	case rel == nil:
	case rel.IsPermission():
		r.addRewrite(eps, ref, rel.Rewrite)
	default:
		for _, allowed := range rel.Allowed {
			if allowed.Wildcard {
				eps.bySubjectType[allowed.Type] = append(eps.bySubjectType[allowed.Type], entrypoint{target: ref})
				continue
			}
			eps.addSubjectRelation(relationRef{allowed.Type, allowed.Relation}, entrypoint{target: ref})
		}
	}
	sort.Slice(eps.subjectRelations, func(i, j int) bool {
		a, b := eps.subjectRelations[i], eps.subjectRelations[j]
		if a.definition != b.definition {
			return a.definition < b.definition
		}
		return a.relation < b.relation
	})
	return eps
}

func (eps *entrypoints) addSubjectRelation(subject relationRef, ep entrypoint) {
	if _, ok := eps.bySubjectRelation[subject]; !ok {
		eps.subjectRelations = append(eps.subjectRelations, subject)
	}
	eps.bySubjectRelation[subject] = append(eps.bySubjectRelation[subject], ep)
}

// addRewrite adds the entrypoints of one node of target's rewrite. Every
// operand of a union, intersection or exclusion is an entrypoint, because
// a change to any of them can change the result.
func (r *reachability) addRewrite(eps *entrypoints, target relationRef, rw *schema.Rewrite) {
	switch rw.Kind {
	case schema.Union, schema.Intersection, schema.Exclusion:
		for _, child := range rw.Children {
			r.addRewrite(eps, target, child)
		}
	case schema.Computed:
		eps.addSubjectRelation(relationRef{target.definition, rw.Relation}, entrypoint{target: target})
	case schema.Self:
		eps.addSubjectRelation(relationRef{target.definition, schema.Ellipsis}, entrypoint{target: target})
	case schema.Arrow:
		// The arrow reaches Target on every definition that the tupleset
		// relation allows as a subject, where that definition has it.
		tupleset := r.schema.Relation(target.definition, rw.Tupleset)
		if tupleset == nil {
			return
		}
		for _, allowed := range tupleset.Allowed {
			if r.schema.Relation(allowed.Type, rw.Target) == nil {
				continue
			}
			eps.addSubjectRelation(relationRef{allowed.Type, rw.Target},
				entrypoint{target: target, tupleset: rw.Tupleset})
		}
	case schema.Nil:
	}
}

// walk is the state of one walk outward from a relation or permission.
type walk struct {
	// subject limits the walk to entrypoints for one subject type. A nil
	// subject collects every entrypoint.
	subject *relationRef
	// visited holds the relations and permissions already walked.
	visited map[relationRef]bool
	// encountered holds the walked relations and permissions and the
	// tupleset relations of the arrows on the way.
	encountered map[relationRef]bool
	collected   []entrypoint
}

// collect walks from ref through every subject relation that feeds it,
// collecting the entrypoints that match the walk's subject.
func (r *reachability) collect(w *walk, ref relationRef) {
	if w.visited[ref] {
		return
	}
	w.visited[ref] = true
	w.encountered[ref] = true

	eps := r.entrypointsOf(ref)
	add := func(list []entrypoint) {
		for _, ep := range list {
			if ep.tupleset != "" {
				w.encountered[relationRef{ep.target.definition, ep.tupleset}] = true
			}
			w.collected = append(w.collected, ep)
		}
	}
	if w.subject != nil {
		add(eps.bySubjectType[w.subject.definition])
		add(eps.bySubjectRelation[*w.subject])
	} else {
		for _, list := range eps.bySubjectType {
			add(list)
		}
		for _, subject := range eps.subjectRelations {
			add(eps.bySubjectRelation[subject])
		}
	}

	for _, subject := range eps.subjectRelations {
		if subject.relation != schema.Ellipsis {
			r.collect(w, subject)
		}
	}
}

// dependenciesOf returns the relations and permissions that the value of
// start depends on, start included, sorted.
func (r *reachability) dependenciesOf(start relationRef) []relationRef {
	w := &walk{visited: make(map[relationRef]bool), encountered: make(map[relationRef]bool)}
	r.collect(w, start)
	return sortedRefs(w.encountered)
}

// computedFrom returns the relations and permissions whose value can
// change with a relationship whose subject type is start, sorted. It
// repeats a round over every relation of the schema, each round with the
// targets that the previous one found as subject types, until a round
// finds nothing new.
func (r *reachability) computedFrom(start relationRef) []relationRef {
	found := make(map[relationRef]bool)
	pending := []relationRef{start}
	for len(pending) > 0 {
		var collected []entrypoint
		for _, defName := range sortedDefinitionNames(r.schema) {
			def := r.schema.Definitions[defName]
			for _, relName := range def.Order {
				ref := relationRef{defName, relName}
				for _, subject := range pending {
					if subject == ref {
						continue
					}
					w := &walk{
						subject:     &subject,
						visited:     make(map[relationRef]bool),
						encountered: make(map[relationRef]bool),
					}
					r.collect(w, ref)
					collected = append(collected, w.collected...)
				}
			}
		}

		pending = nil
		for _, ep := range collected {
			if found[ep.target] {
				continue
			}
			found[ep.target] = true
			pending = append(pending, ep.target)
		}
	}
	return sortedRefs(found)
}

func sortedDefinitionNames(s *schema.Schema) []string {
	names := make([]string, 0, len(s.Definitions))
	for name := range s.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func sortedRefs(set map[relationRef]bool) []relationRef {
	refs := make([]relationRef, 0, len(set))
	for ref := range set {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].definition != refs[j].definition {
			return refs[i].definition < refs[j].definition
		}
		return refs[i].relation < refs[j].relation
	})
	return refs
}
