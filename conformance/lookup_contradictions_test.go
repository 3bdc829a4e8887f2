package conformance

import (
	"slices"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// spicedbLookupContradictions lists the lookup queries, by the names the
// lookup comparisons give them, on which SpiceDB v1.56.2's
// LookupResources or LookupSubjects contradicts its own CheckPermission,
// with the reason. Mandate's lookups follow the check there.
var spicedbLookupContradictions = map[string]string{}

// explainSpiceDBContradiction names the kind of case in which SpiceDB
// v1.56.2's lookup contradicts its own check for c, or returns "".
// subjects is true for LookupSubjects and false for LookupResources.
func explainSpiceDBContradiction(s *schema.Schema, subjects bool, c contradiction) string {
	k := c.key
	lookupGrantsLess := kleeneRank(c.lookup.permissionship) < kleeneRank(c.check.permissionship)
	if lookupGrantsLess && k.subject.Relation != graph.Ellipsis && allowsWildcard(s, k.subject.Type) {
		return "a wildcard relationship that check matches for a subject with a relation, and lookups do not"
	}
	if subjects && !lookupGrantsLess && c.check.permissionship == noPermission &&
		reachesSelfOfAnotherType(s, k.resource.Type, k.permission, k.subject) {
		return "`self`, whose object LookupSubjects returns as a subject of any type and relation"
	}
	if subjects && c.lookup.permissionship == noPermission && c.check.permissionship == hasPermission &&
		k.subject.Relation != graph.Ellipsis && reachesRelation(s, k.resource.Type, k.permission, k.subject.Type, k.subject.Relation) {
		return "a subject set that check counts as a member of itself where the permission reaches its relation, and LookupSubjects does not list"
	}
	if subjects && !lookupGrantsLess && k.subject.Relation != graph.Ellipsis &&
		kleeneRank(c.lookup.permissionship) > kleeneRank(c.check.permissionship) &&
		reachesRelation(s, k.resource.Type, k.permission, k.subject.Type, k.subject.Relation) &&
		reachesSetOperation(s, k.resource.Type, k.permission) {
		return "a subject set that check counts as a member of itself on the excluded or intersected side, and LookupSubjects does not"
	}
	if c.besideWildcard && c.lookup.permissionship == conditionalOn && c.check.permissionship == hasPermission {
		return "a subject that LookupSubjects lists as conditional by its own path beside a wildcard that grants it"
	}
	if !subjects && c.lookup.permissionship == noPermission && c.check.permissionship == conditionalOn &&
		reachesExclusion(s, k.resource.Type, k.permission) {
		return "an exclusion that LookupResources decides with a check hint that drops a caveat"
	}
	if !subjects && c.lookup.permissionship == conditionalOn && c.check.permissionship == conditionalOn &&
		len(c.lookup.missing) < len(c.check.missing) && isSubset(c.lookup.missing, c.check.missing) {
		return "missing context of LookupResources without the parameters of some caveats"
	}
	if !subjects && c.lookup.permissionship == conditionalOn && c.check.permissionship == conditionalOn &&
		len(c.lookup.missing) > len(c.check.missing) && isSubset(c.check.missing, c.lookup.missing) {
		return "missing context of LookupResources with the parameters of caveats that the check did not need"
	}
	return ""
}

// reachesExclusion reports whether resourceType#permission reaches an
// exclusion. SpiceDB v1.56.2's LookupResources checks each resource it
// reaches with a hint that the relation it came through holds, and adds
// that relationship's caveat to the result afterwards
// (internal/graph/lr2streams.go). When the same relation is also on the
// excluded side, the hint decides it there without its caveat.
func reachesExclusion(s *schema.Schema, resourceType, permission string) bool {
	found := false
	visitReachable(s, resourceType, permission, func(_ string, rw *schema.Rewrite) {
		found = found || rw.Kind == schema.Exclusion
	})
	return found
}

// reachesRelation reports whether checking resourceType#permission can
// reach the relation of an object of subjectType, through computed
// relations, arrows and subject sets. SpiceDB v1.56.2's check finds a
// subject set such as group:g2#member wherever the walk reaches group:g2's
// member relation, because a set contains itself, with no relationship
// that names it as a subject. Its LookupSubjects lists only the subjects
// of stored relationships.
func reachesRelation(s *schema.Schema, resourceType, permission, subjectType, relation string) bool {
	type node struct{ typ, relation string }
	seen := map[node]bool{}
	var reach func(n node) bool
	var walk func(typ string, rw *schema.Rewrite) bool
	reach = func(n node) bool {
		if n.typ == subjectType && n.relation == relation {
			return true
		}
		rel := s.Relation(n.typ, n.relation)
		if seen[n] || rel == nil {
			return false
		}
		seen[n] = true
		if rel.IsPermission() {
			return walk(n.typ, rel.Rewrite)
		}
		for _, a := range rel.Allowed {
			if a.Relation != "" && reach(node{a.Type, a.Relation}) {
				return true
			}
		}
		return false
	}
	walk = func(typ string, rw *schema.Rewrite) bool {
		switch rw.Kind {
		case schema.Computed:
			return reach(node{typ, rw.Relation})
		case schema.Arrow:
			if tupleset := s.Relation(typ, rw.Tupleset); tupleset != nil {
				for _, a := range tupleset.Allowed {
					if reach(node{a.Type, rw.Target}) {
						return true
					}
				}
			}
			return false
		}
		for _, child := range rw.Children {
			if walk(typ, child) {
				return true
			}
		}
		return false
	}
	return reach(node{resourceType, permission})
}

// reachesSetOperation reports whether resourceType#permission reaches an
// exclusion or an intersection.
func reachesSetOperation(s *schema.Schema, resourceType, permission string) bool {
	found := false
	visitReachable(s, resourceType, permission, func(_ string, rw *schema.Rewrite) {
		found = found || rw.Kind == schema.Exclusion || rw.Kind == schema.Intersection
	})
	return found
}

// isSubset reports whether every element of sub is in set; both are
// sorted.
func isSubset(sub, set []string) bool {
	for _, v := range sub {
		if _, ok := slices.BinarySearch(set, v); !ok {
			return false
		}
	}
	return true
}

// reachesSelfOfAnotherType reports whether resourceType#permission reaches
// a permission that uses `self` on a type other than the subject's, or
// when the subject has a relation. SpiceDB v1.56.2's LookupSubjects
// returns the object of such a `self` as a subject of whatever type and
// relation the request names (lookupSetOperation in
// internal/graph/lookupsubjects.go), where its check returns no
// permission.
func reachesSelfOfAnotherType(s *schema.Schema, resourceType, permission string, subject graph.SubjectRef) bool {
	found := false
	visitReachable(s, resourceType, permission, func(typ string, rw *schema.Rewrite) {
		if rw.Kind == schema.Self && (typ != subject.Type || subject.Relation != graph.Ellipsis) {
			found = true
		}
	})
	return found
}

// visitReachable calls visit for every rewrite node of every permission
// that resourceType#relation reaches through computed relations, arrows
// and subject relations, with the type that defines the node.
func visitReachable(s *schema.Schema, resourceType, relation string, visit func(typ string, rw *schema.Rewrite)) {
	seen := map[graph.ObjectRef]bool{}
	var reach func(typ, relation string)
	var walk func(typ string, rw *schema.Rewrite)
	reach = func(typ, relation string) {
		key := graph.ObjectRef{Type: typ, ID: relation}
		rel := s.Relation(typ, relation)
		if seen[key] || rel == nil {
			return
		}
		seen[key] = true
		if rel.IsPermission() {
			walk(typ, rel.Rewrite)
			return
		}
		for _, a := range rel.Allowed {
			if a.Relation != "" {
				reach(a.Type, a.Relation)
			}
		}
	}
	walk = func(typ string, rw *schema.Rewrite) {
		visit(typ, rw)
		switch rw.Kind {
		case schema.Computed:
			reach(typ, rw.Relation)
		case schema.Arrow:
			if rel := s.Relation(typ, rw.Tupleset); rel != nil {
				for _, a := range rel.Allowed {
					reach(a.Type, rw.Target)
				}
			}
		}
		for _, child := range rw.Children {
			walk(typ, child)
		}
	}
	reach(resourceType, relation)
}

// allowsWildcard reports whether some relation of s allows the wildcard
// of typ. SpiceDB v1.56.2's check matches such a wildcard, say group:*,
// for a subject with a relation, say group:eng#member, because checkDirect
// in internal/graph/check.go reads the wildcard by subject type only. Its
// LookupResources and LookupSubjects match a wildcard only for a subject
// without a relation.
func allowsWildcard(s *schema.Schema, typ string) bool {
	for _, def := range s.Definitions {
		for _, rel := range def.Relations {
			for _, a := range rel.Allowed {
				if a.Wildcard && a.Type == typ {
					return true
				}
			}
		}
	}
	return false
}

// spicedbLookupResourcesPanics reports whether SpiceDB v1.56.2's
// LookupResources may fail on resourceType#permission because a `self`
// under an intersection or exclusion is reachable from it. For such a
// `self` its LookupResources needs a check hint, which
// internal/graph/hints.HintForEntrypoint does not build for a self
// entrypoint: it returns a "BUG:" error in a server and panics inside a
// test binary, so these queries are not sent to it.
func spicedbLookupResourcesPanics(s *schema.Schema, resourceType, permission string) bool {
	seen := map[graph.ObjectRef]bool{}
	var reaches func(typ, relation string) bool
	var walk func(typ string, rw *schema.Rewrite, underSetOperation bool) bool
	reaches = func(typ, relation string) bool {
		key := graph.ObjectRef{Type: typ, ID: relation}
		if seen[key] {
			return false
		}
		seen[key] = true
		rel := s.Relation(typ, relation)
		if rel == nil {
			return false
		}
		if rel.IsPermission() {
			return walk(typ, rel.Rewrite, false)
		}
		for _, a := range rel.Allowed {
			if a.Relation != "" && reaches(a.Type, a.Relation) {
				return true
			}
		}
		return false
	}
	walk = func(typ string, rw *schema.Rewrite, underSetOperation bool) bool {
		switch rw.Kind {
		case schema.Self:
			return underSetOperation
		case schema.Computed:
			return reaches(typ, rw.Relation)
		case schema.Arrow:
			rel := s.Relation(typ, rw.Tupleset)
			if rel == nil {
				return false
			}
			for _, a := range rel.Allowed {
				if reaches(a.Type, rw.Target) {
					return true
				}
			}
			return false
		}
		for _, child := range rw.Children {
			if walk(typ, child, underSetOperation || rw.Kind != schema.Union) {
				return true
			}
		}
		return false
	}
	return reaches(resourceType, permission)
}
