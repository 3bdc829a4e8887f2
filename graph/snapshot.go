package graph

import (
	"sort"
	"time"
)

// Snapshot reads the graph as it was at one revision. Relationships that
// are expired at Now are hidden from every read.
type Snapshot struct {
	ix       *index
	Revision Revision
	Now      time.Time
	// SchemaText is the schema in force at Revision, or "" when none was
	// written yet.
	SchemaText string
}

func (s Snapshot) visible(h *history) *Relationship {
	r := h.at(s.Revision)
	if r == nil || r.ExpiredAt(s.Now) {
		return nil
	}
	return r
}

// Subjects returns the relationships of one resource relation.
func (s Snapshot) Subjects(resourceType, resourceID, relation string) []*Relationship {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	rs := s.ix.byResource[resourceKey{resourceType, resourceID, relation}]
	if rs == nil {
		return nil
	}
	out := make([]*Relationship, 0, len(rs.order))
	for _, e := range rs.order {
		if r := s.visible(e.hist); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// SubjectSets returns the relationships of one resource relation whose
// subject has a relation, such as group:eng#member.
func (s Snapshot) SubjectSets(resourceType, resourceID, relation string) []*Relationship {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	rs := s.ix.byResource[resourceKey{resourceType, resourceID, relation}]
	if rs == nil || len(rs.subjectSets) == 0 {
		return nil
	}
	out := make([]*Relationship, 0, len(rs.subjectSets))
	for _, e := range rs.subjectSets {
		if r := s.visible(e.hist); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// Find returns the relationship with key k, or nil.
func (s Snapshot) Find(k Key) *Relationship {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	rs := s.ix.byResource[resourceKeyOf(k)]
	if rs == nil {
		return nil
	}
	object, ok := s.ix.handles[k.Subject.Object()]
	if !ok {
		return nil
	}
	h := rs.history(subjectKey{object: object, relation: k.Subject.Relation})
	if h == nil {
		return nil
	}
	return s.visible(h)
}

// Resources returns the relationships whose subject is exactly subject,
// limited to one resource type and relation when those are not empty.
func (s Snapshot) Resources(subject SubjectRef, resourceType, relation string) []*Relationship {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	keys := s.ix.bySubject[subject]
	out := make([]*Relationship, 0, len(keys))
	sk := subjectKey{object: s.ix.handles[subject.Object()], relation: subject.Relation}
	for rk := range keys {
		if resourceType != "" && rk.typ != resourceType {
			continue
		}
		if relation != "" && rk.rel != relation {
			continue
		}
		if h := s.ix.byResource[rk].history(sk); h != nil {
			if r := s.visible(h); r != nil {
				out = append(out, r)
			}
		}
	}
	return out
}

// Scan returns every relationship that passes f, sorted by key so that a
// caller can page through the result with a cursor.
func (s Snapshot) Scan(f Filter) []*Relationship {
	s.ix.mu.RLock()
	var out []*Relationship
	add := func(rs *relationSet) {
		for _, e := range rs.order {
			r := s.visible(e.hist)
			if r != nil && f.Matches(r.Key) {
				out = append(out, r)
			}
		}
	}
	switch {
	case f.ResourceType != "" && f.ResourceID != "" && f.Relation != "":
		if rs := s.ix.byResource[resourceKey{f.ResourceType, f.ResourceID, f.Relation}]; rs != nil {
			add(rs)
		}
	case f.ResourceType != "":
		for rk, rs := range s.ix.byType[f.ResourceType] {
			if (f.ResourceID == "" || rk.id == f.ResourceID) && (f.Relation == "" || rk.rel == f.Relation) {
				add(rs)
			}
		}
	default:
		for _, rs := range s.ix.byResource {
			add(rs)
		}
	}
	s.ix.mu.RUnlock()
	sortByKey(out)
	return out
}

// HasRelation reports whether any relationship of resourceType uses
// relation (any relation when relation is "").
func (s Snapshot) HasRelation(resourceType, relation string) bool {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	for rk, rs := range s.ix.byType[resourceType] {
		if relation != "" && rk.rel != relation {
			continue
		}
		for _, e := range rs.order {
			if s.visible(e.hist) != nil {
				return true
			}
		}
	}
	return false
}

// ObjectIDs returns the ids of every object of objectType that appears as a
// resource or as a subject, sorted.
func (s Snapshot) ObjectIDs(objectType string) []string {
	s.ix.mu.RLock()
	seen := make(map[string]struct{})
	for rk, rs := range s.ix.byType[objectType] {
		if _, ok := seen[rk.id]; ok {
			continue
		}
		for _, e := range rs.order {
			if s.visible(e.hist) != nil {
				seen[rk.id] = struct{}{}
				break
			}
		}
	}
	for subj, keys := range s.ix.bySubject {
		if subj.Type != objectType || subj.ID == Wildcard {
			continue
		}
		if _, ok := seen[subj.ID]; ok {
			continue
		}
		sk := subjectKey{object: s.ix.handles[subj.Object()], relation: subj.Relation}
		for rk := range keys {
			if s.visible(s.ix.byResource[rk].history(sk)) != nil {
				seen[subj.ID] = struct{}{}
				break
			}
		}
	}
	s.ix.mu.RUnlock()
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// HandleOf returns the handle of an object, or 0 when no relationship of
// the index names it. Handles let a graph walk avoid string keys: see
// AppendEdges and FindEdge.
func (s Snapshot) HandleOf(o ObjectRef) ObjectHandle {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	return s.ix.handles[o]
}

// Edge is a relationship read through an object handle, with the handle
// of its subject's object.
type Edge struct {
	Relationship *Relationship
	Subject      ObjectHandle
}

// AppendEdges appends to dst the relationships of object#relation that
// are visible in the snapshot, in insertion order, and returns the
// extended slice. With subjectSetsOnly, it appends only those whose
// subject has a relation, as SubjectSets returns. A caller that reuses dst
// reads without allocating.
func (s Snapshot) AppendEdges(dst []Edge, object ObjectHandle, relation string, subjectSetsOnly bool) []Edge {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	if object == 0 || int(object) >= len(s.ix.objects) {
		return dst
	}
	rs := s.ix.objects[object].set(relation)
	if rs == nil {
		return dst
	}
	entries := rs.order
	if subjectSetsOnly {
		entries = rs.subjectSets
	}
	for i := range entries {
		e := &entries[i]
		if r := s.visible(e.hist); r != nil {
			dst = append(dst, Edge{Relationship: r, Subject: e.object})
		}
	}
	return dst
}

// SubjectHandles returns the handle of the subject's object and that of
// the wildcard object of its type, each 0 when no relationship names it.
func (s Snapshot) SubjectHandles(subject SubjectRef) (object, wildcard ObjectHandle) {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	return s.ix.handles[subject.Object()], s.ix.handles[ObjectRef{Type: subject.Type, ID: Wildcard}]
}

// DirectEdges reads, under one lock, what a check of object#relation for
// subject#subjectRelation needs: the relationship with that subject, the
// one with the wildcard object (when wildcard is not 0), and, appended to
// dst, the relationships whose subject has a relation. Each relationship
// is nil when it is not visible in the snapshot.
func (s Snapshot) DirectEdges(dst []Edge, object ObjectHandle, relation string, subject ObjectHandle, subjectRelation string, wildcard ObjectHandle) (exact, wildcardMatch *Relationship, edges []Edge) {
	if object == 0 {
		return nil, nil, dst
	}
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	if int(object) >= len(s.ix.objects) {
		return nil, nil, dst
	}
	rs := s.ix.objects[object].set(relation)
	if rs == nil {
		return nil, nil, dst
	}
	if subject != 0 {
		if h := rs.history(subjectKey{object: subject, relation: subjectRelation}); h != nil {
			exact = s.visible(h)
		}
	}
	if wildcard != 0 {
		if h := rs.byObject[wildcard]; h != nil {
			wildcardMatch = s.visible(h)
		}
	}
	for i := range rs.subjectSets {
		e := &rs.subjectSets[i]
		if r := s.visible(e.hist); r != nil {
			dst = append(dst, Edge{Relationship: r, Subject: e.object})
		}
	}
	return exact, wildcardMatch, dst
}

// FindEdge returns the relationship object#relation@subject#subjectRelation
// that is visible in the snapshot, or nil. It is Find with handles.
func (s Snapshot) FindEdge(object ObjectHandle, relation string, subject ObjectHandle, subjectRelation string) *Relationship {
	if object == 0 || subject == 0 {
		return nil
	}
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	if int(object) >= len(s.ix.objects) {
		return nil
	}
	rs := s.ix.objects[object].set(relation)
	if rs == nil {
		return nil
	}
	h := rs.history(subjectKey{object: subject, relation: subjectRelation})
	if h == nil {
		return nil
	}
	return s.visible(h)
}

func sortByKey(rels []*Relationship) {
	sort.Slice(rels, func(i, j int) bool { return lessKey(rels[i].Key, rels[j].Key) })
}

// lessKey orders keys field by field, which is the order of ReadRelationships
// results and cursors.
func lessKey(a, b Key) bool {
	if a.ResourceType != b.ResourceType {
		return a.ResourceType < b.ResourceType
	}
	if a.ResourceID != b.ResourceID {
		return a.ResourceID < b.ResourceID
	}
	if a.Relation != b.Relation {
		return a.Relation < b.Relation
	}
	if a.Subject.Type != b.Subject.Type {
		return a.Subject.Type < b.Subject.Type
	}
	if a.Subject.ID != b.Subject.ID {
		return a.Subject.ID < b.Subject.ID
	}
	return a.Subject.Relation < b.Subject.Relation
}

// LessKey reports whether a sorts before b in Scan's order.
func LessKey(a, b Key) bool { return lessKey(a, b) }
