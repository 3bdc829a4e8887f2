package main

import (
	"sort"

	"github.com/authzed/spicedb/pkg/tuple"
)

// The types in this file hold the subjects found for one expected relation
// of a validation file, in the form that SpiceDB v1.56's development
// package compares them. Each subject records whether a caveat applies to
// it and which resource relations hold it directly (its relationship
// paths). A wildcard also records the subjects it excludes. The set
// operations follow the rules SpiceDB applies to the same trees, so that
// both tools accept the same `validation:` blocks. A caveat is tracked
// only as present or absent, because expected relations do not evaluate
// it: "[user:tom[...]]" means "tom, under some caveat".

// foundSubjectType is a subject type with its relation, such as user#... or
// group#member.
type foundSubjectType struct {
	objectType string
	relation   string
}

// foundSubject is one subject in a subject set. A foundSubject is never
// changed after it is built, so sets can share it.
type foundSubject struct {
	subject  tuple.ObjectAndRelation
	caveated bool
	// excluded lists the subjects a wildcard leaves out.
	excluded []*foundSubject
	// resources are the resource relations whose relationships hold the
	// subject directly.
	resources map[tuple.ObjectAndRelation]struct{}
}

// newFoundSubject builds a subject whose resources are those of every
// source it was derived from.
func newFoundSubject(st foundSubjectType, id string, caveated bool, excluded []*foundSubject, sources ...*foundSubject) *foundSubject {
	fs := &foundSubject{
		subject:   tuple.ObjectAndRelation{ObjectType: st.objectType, ObjectID: id, Relation: st.relation},
		caveated:  caveated,
		excluded:  excluded,
		resources: make(map[tuple.ObjectAndRelation]struct{}),
	}
	for _, source := range sources {
		for r := range source.resources {
			fs.resources[r] = struct{}{}
		}
	}
	return fs
}

func (fs *foundSubject) id() string { return fs.subject.ObjectID }

func (fs *foundSubject) isWildcard() bool { return fs.subject.ObjectID == tuple.PublicWildcard }

// resourceStrings returns the subject's resources as sorted strings.
func (fs *foundSubject) resourceStrings() []string {
	out := make([]string, 0, len(fs.resources))
	for r := range fs.resources {
		out = append(out, tuple.StringONR(r))
	}
	sort.Strings(out)
	return out
}

// exclusionStrings returns the subjects a wildcard excludes, sorted, each
// followed by "[...]" when a caveat applies to the exclusion.
func (fs *foundSubject) exclusionStrings() []string {
	out := make([]string, 0, len(fs.excluded))
	for _, x := range fs.excluded {
		s := tuple.StringONR(x.subject)
		if x.caveated {
			s += "[...]"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (fs *foundSubject) exclusionByID(id string) (*foundSubject, bool) {
	for _, x := range fs.excluded {
		if x.id() == id {
			return x, true
		}
	}
	return nil, false
}

// typedSubjectSet holds the subjects of one subject type: concrete subjects by
// id, and at most one wildcard.
type typedSubjectSet struct {
	foundSubjectType foundSubjectType
	concrete         map[string]*foundSubject
	wildcard         *foundSubject
}

func newTypedSubjectSet(st foundSubjectType) *typedSubjectSet {
	return &typedSubjectSet{foundSubjectType: st, concrete: make(map[string]*foundSubject)}
}

func (s *typedSubjectSet) clone() *typedSubjectSet {
	c := newTypedSubjectSet(s.foundSubjectType)
	for id, fs := range s.concrete {
		c.concrete[id] = fs
	}
	c.wildcard = s.wildcard
	return c
}

// list returns the concrete subjects sorted by id, then the wildcard.
func (s *typedSubjectSet) list() []*foundSubject {
	ids := make([]string, 0, len(s.concrete))
	for id := range s.concrete {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]*foundSubject, 0, len(ids)+1)
	for _, id := range ids {
		out = append(out, s.concrete[id])
	}
	if s.wildcard != nil {
		out = append(out, s.wildcard)
	}
	return out
}

func (s *typedSubjectSet) setConcrete(id string, fs *foundSubject) {
	if fs == nil {
		delete(s.concrete, id)
		return
	}
	s.concrete[id] = fs
}

// add puts a subject into the set: a concrete subject already present
// stays caveated only if both are, and a wildcard stops excluding a
// subject that is now present without a caveat.
func (s *typedSubjectSet) add(fs *foundSubject) {
	st := s.foundSubjectType
	if fs.isWildcard() {
		w := unionWildcards(st, s.wildcard, fs)
		for _, c := range s.concrete {
			w = unionWildcardWithConcrete(st, w, c)
		}
		s.wildcard = w
		return
	}
	s.concrete[fs.id()] = unionConcretes(st, s.concrete[fs.id()], fs)
	s.wildcard = unionWildcardWithConcrete(st, s.wildcard, fs)
}

func (s *typedSubjectSet) addAll(other *typedSubjectSet) {
	for _, fs := range other.list() {
		s.add(fs)
	}
}

// subtract removes a subject from the set. A caveated subject is removed
// only conditionally, so what remains becomes caveated.
func (s *typedSubjectSet) subtract(r *foundSubject) {
	st := s.foundSubjectType
	if r.isWildcard() {
		for id, c := range s.concrete {
			s.setConcrete(id, subtractWildcardFromConcrete(st, c, r))
		}
		w, added := subtractWildcardFromWildcard(st, s.wildcard, r)
		s.wildcard = w
		for _, a := range added {
			s.concrete[a.id()] = a
		}
		return
	}
	if e, ok := s.concrete[r.id()]; ok {
		s.setConcrete(r.id(), subtractConcreteFromConcrete(st, e, r))
	}
	if s.wildcard != nil {
		s.wildcard = subtractConcreteFromWildcard(st, s.wildcard, r)
	}
}

// subtractAll removes every subject of other, concrete subjects first.
func (s *typedSubjectSet) subtractAll(other *typedSubjectSet) {
	for _, r := range other.list() {
		s.subtract(r)
	}
}

// intersectWith keeps only the subjects that are also in other, where a
// wildcard on either side matches every subject it does not exclude.
func (s *typedSubjectSet) intersectWith(other *typedSubjectSet) {
	st := s.foundSubjectType
	ownWildcard, otherWildcard := s.wildcard, other.wildcard
	s.wildcard = intersectWildcards(st, ownWildcard, otherWildcard)

	updated := make(map[string]*foundSubject, len(s.concrete))
	for id, c := range s.concrete {
		var both *foundSubject
		if oc, ok := other.concrete[id]; ok {
			both = newFoundSubject(st, id, c.caveated || oc.caveated, nil, c, oc)
		}
		viaWildcard := intersectConcreteWithWildcard(st, c, otherWildcard)
		if r := unionConcretes(st, both, viaWildcard); r != nil {
			updated[id] = r
		}
	}
	if ownWildcard != nil {
		for id, oc := range other.concrete {
			viaWildcard := intersectConcreteWithWildcard(st, oc, ownWildcard)
			if u, ok := updated[id]; ok {
				updated[id] = unionConcretes(st, u, viaWildcard)
			} else if viaWildcard != nil {
				updated[id] = viaWildcard
			}
		}
	}
	s.concrete = updated
}

// withCaveat returns a copy of the set in which a caveat applies to every
// subject, as when the set was reached through a caveated relationship.
func (s *typedSubjectSet) withCaveat() *typedSubjectSet {
	c := newTypedSubjectSet(s.foundSubjectType)
	for id, fs := range s.concrete {
		c.concrete[id] = newFoundSubject(s.foundSubjectType, id, true, nil, fs)
	}
	if s.wildcard != nil {
		c.wildcard = newFoundSubject(s.foundSubjectType, tuple.PublicWildcard, true, s.wildcard.excluded, s.wildcard)
	}
	return c
}

// unionWildcards merges two wildcards. The result is caveated only if both
// are, and excludes only the subjects that both exclude.
func unionWildcards(st foundSubjectType, existing, adding *foundSubject) *foundSubject {
	if existing == nil {
		return adding
	}
	exclusions := newTypedSubjectSet(st)
	for _, x := range existing.excluded {
		exclusions.add(x)
	}
	addingExclusions := newTypedSubjectSet(st)
	for _, x := range adding.excluded {
		addingExclusions.add(x)
	}
	exclusions.intersectWith(addingExclusions)
	return newFoundSubject(st, tuple.PublicWildcard, existing.caveated && adding.caveated, exclusions.list(), existing, adding)
}

// unionWildcardWithConcrete updates a wildcard's exclusions after concrete
// subject c joined the set: the exclusion of c is dropped, or becomes
// caveated when c is caveated.
func unionWildcardWithConcrete(st foundSubjectType, w, c *foundSubject) *foundSubject {
	if w == nil {
		return nil
	}
	exclusions := make([]*foundSubject, 0, len(w.excluded))
	for _, x := range w.excluded {
		if x.id() != c.id() {
			exclusions = append(exclusions, x)
			continue
		}
		if c.caveated {
			exclusions = append(exclusions, newFoundSubject(st, c.id(), true, nil, x, c))
		}
	}
	return newFoundSubject(st, tuple.PublicWildcard, w.caveated, exclusions, w)
}

func unionConcretes(st foundSubjectType, existing, adding *foundSubject) *foundSubject {
	if existing == nil {
		return adding
	}
	if adding == nil {
		return existing
	}
	return newFoundSubject(st, existing.id(), existing.caveated && adding.caveated, nil, existing, adding)
}

// subtractWildcardFromWildcard removes wildcard r from wildcard existing.
// What remains is the existing wildcard under a caveat, if either is
// caveated, plus the subjects that r excludes and existing does not
// exclude unconditionally.
func subtractWildcardFromWildcard(st foundSubjectType, existing, r *foundSubject) (*foundSubject, []*foundSubject) {
	if existing == nil {
		return nil, nil
	}
	if !r.caveated && len(r.excluded) == 0 {
		return nil, nil
	}
	var remaining []*foundSubject
	for _, x := range r.excluded {
		existingExclusion, found := existing.exclusionByID(x.id())
		if found && !existingExclusion.caveated {
			continue
		}
		caveated := existing.caveated || r.caveated || x.caveated || found
		remaining = append(remaining, newFoundSubject(st, x.id(), caveated, nil, x))
	}
	if existing.caveated || r.caveated {
		return newFoundSubject(st, tuple.PublicWildcard, true, existing.excluded, existing, r), remaining
	}
	return nil, remaining
}

// subtractWildcardFromConcrete removes wildcard w from concrete subject c:
// c stays when w excludes it, and stays under a caveat when w or the
// exclusion is caveated.
func subtractWildcardFromConcrete(st foundSubjectType, c, w *foundSubject) *foundSubject {
	exclusion, excluded := w.exclusionByID(c.id())
	switch {
	case !excluded && !w.caveated:
		return nil
	case excluded && !exclusion.caveated:
		return c
	default:
		return newFoundSubject(st, c.id(), true, nil, c)
	}
}

func subtractConcreteFromConcrete(st foundSubjectType, existing, r *foundSubject) *foundSubject {
	if !r.caveated {
		return nil
	}
	return newFoundSubject(st, existing.id(), true, nil, existing, r)
}

// subtractConcreteFromWildcard adds r to the wildcard's exclusions. An
// exclusion already present stays caveated only if both are.
func subtractConcreteFromWildcard(st foundSubjectType, w, r *foundSubject) *foundSubject {
	exclusions := make([]*foundSubject, 0, len(w.excluded)+1)
	found := false
	for _, x := range w.excluded {
		if x.id() == r.id() {
			exclusions = append(exclusions, newFoundSubject(st, r.id(), x.caveated && r.caveated, nil, x, r))
			found = true
			continue
		}
		exclusions = append(exclusions, x)
	}
	if !found {
		exclusions = append(exclusions, r)
	}
	return newFoundSubject(st, tuple.PublicWildcard, w.caveated, exclusions, w)
}

// intersectWildcards returns the wildcard both sets contain: caveated if
// either is, and excluding what either excludes.
func intersectWildcards(st foundSubjectType, a, b *foundSubject) *foundSubject {
	if a == nil || b == nil {
		return nil
	}
	exclusions := newTypedSubjectSet(st)
	for _, x := range a.excluded {
		exclusions.add(x)
	}
	for _, x := range b.excluded {
		exclusions.add(x)
	}
	return newFoundSubject(st, tuple.PublicWildcard, a.caveated || b.caveated, exclusions.list(), a, b)
}

// intersectConcreteWithWildcard returns c if wildcard w covers it: not at
// all when w excludes c without a caveat, and under a caveat when w or
// its exclusion of c is caveated.
func intersectConcreteWithWildcard(st foundSubjectType, c, w *foundSubject) *foundSubject {
	if w == nil {
		return nil
	}
	exclusion, excluded := w.exclusionByID(c.id())
	switch {
	case !excluded && !w.caveated:
		return c
	case !excluded:
		return newFoundSubject(st, c.id(), true, nil, c, w)
	case !exclusion.caveated:
		return nil
	default:
		return newFoundSubject(st, c.id(), true, nil, c, w, exclusion)
	}
}

// subjectsByType holds found subjects of any type, one typedSubjectSet per type.
type subjectsByType map[foundSubjectType]*typedSubjectSet

func (t subjectsByType) setFor(st foundSubjectType) *typedSubjectSet {
	s, ok := t[st]
	if !ok {
		s = newTypedSubjectSet(st)
		t[st] = s
	}
	return s
}

func (t subjectsByType) add(fs *foundSubject) {
	t.setFor(foundSubjectType{fs.subject.ObjectType, fs.subject.Relation}).add(fs)
}

// union adds every subject of other to t.
func (t subjectsByType) union(other subjectsByType) {
	for st, s := range other {
		t.setFor(st).addAll(s)
	}
}

// intersect returns the subjects in both sets.
func (t subjectsByType) intersect(other subjectsByType) subjectsByType {
	out := make(subjectsByType)
	for st, s := range t {
		o, ok := other[st]
		if !ok {
			continue
		}
		c := s.clone()
		c.intersectWith(o)
		out[st] = c
	}
	return out
}

// exclude returns the subjects of t that are not in other.
func (t subjectsByType) exclude(other subjectsByType) subjectsByType {
	out := make(subjectsByType)
	for st, s := range t {
		c := s.clone()
		if o, ok := other[st]; ok {
			c.subtractAll(o)
		}
		out[st] = c
	}
	return out
}

func (t subjectsByType) withCaveat() subjectsByType {
	out := make(subjectsByType, len(t))
	for st, s := range t {
		out[st] = s.withCaveat()
	}
	return out
}

// lookup returns the found subject for a subject reference, where object
// id "*" names the wildcard.
func (t subjectsByType) lookup(subject tuple.ObjectAndRelation) (*foundSubject, bool) {
	s, ok := t[foundSubjectType{subject.ObjectType, subject.Relation}]
	if !ok {
		return nil, false
	}
	if subject.ObjectID == tuple.PublicWildcard {
		return s.wildcard, s.wildcard != nil
	}
	fs, ok := s.concrete[subject.ObjectID]
	return fs, ok
}

// list returns every found subject, sorted by type, then as typedSubjectSet.list.
func (t subjectsByType) list() []*foundSubject {
	types := make([]foundSubjectType, 0, len(t))
	for st := range t {
		types = append(types, st)
	}
	sort.Slice(types, func(i, j int) bool {
		if types[i].objectType != types[j].objectType {
			return types[i].objectType < types[j].objectType
		}
		return types[i].relation < types[j].relation
	})
	var out []*foundSubject
	for _, st := range types {
		out = append(out, t[st].list()...)
	}
	return out
}
