package graph

import (
	"sort"
	"sync"
	"time"
)

// version is one lifetime of a relationship: visible from created up to,
// but not including, deleted. A live version has deleted == 0.
type version struct {
	rel     *Relationship
	created Revision
	deleted Revision
}

func (v *version) visibleAt(rev Revision) bool {
	return v.created <= rev && (v.deleted == 0 || rev < v.deleted)
}

// history is every retained version of one relationship key, oldest first.
// At most the last version is live.
type history struct {
	versions []version
}

func (h *history) at(rev Revision) *Relationship {
	for i := len(h.versions) - 1; i >= 0; i-- {
		if v := &h.versions[i]; v.visibleAt(rev) {
			return v.rel
		}
	}
	return nil
}

// resourceKey is the resource side of a relationship: one object and one
// relation.
type resourceKey struct {
	typ, id, rel string
}

// ObjectHandle is a small integer that stands for one object of a Graph's
// index, so that a reader walking the graph compares and hashes integers
// in place of type and id strings. A handle is valid only for snapshots of
// the Graph that issued it, and the zero handle names no object.
type ObjectHandle uint32

// subjectKey is a subject as a relation set stores it: the handle of its
// object and its relation.
type subjectKey struct {
	object   ObjectHandle
	relation string
}

// setEntry is one subject of a relation set.
type setEntry struct {
	subject SubjectRef
	object  ObjectHandle
	hist    *history
}

// relationSet holds the subjects of one resource relation.
type relationSet struct {
	// byObject holds the subjects without a relation, keyed by handle
	// alone, so the common lookup hashes one integer. bySubject holds the
	// subject sets, such as group:eng#member.
	byObject  map[ObjectHandle]*history
	bySubject map[subjectKey]*history
	// order lists each subject once, in insertion order, so iteration is
	// stable and needs no map lookup.
	order []setEntry
	// subjectSets lists the entries of order whose subject has a relation,
	// such as group:eng#member, which a check must expand.
	subjectSets []setEntry
}

// objectEntry is one interned object with the relation sets in which it is
// the resource. An object has few relations, so a slice scan is cheaper
// than a map.
type objectEntry struct {
	ref       ObjectRef
	relations []namedSet
}

type namedSet struct {
	relation string
	set      *relationSet
}

// history returns the history of subject sk, or nil.
func (rs *relationSet) history(sk subjectKey) *history {
	if sk.relation == Ellipsis {
		return rs.byObject[sk.object]
	}
	return rs.bySubject[sk]
}

func (rs *relationSet) setHistory(sk subjectKey, h *history) {
	if sk.relation == Ellipsis {
		rs.byObject[sk.object] = h
		return
	}
	rs.bySubject[sk] = h
}

func (rs *relationSet) deleteHistory(sk subjectKey) {
	if sk.relation == Ellipsis {
		delete(rs.byObject, sk.object)
		return
	}
	delete(rs.bySubject, sk)
}

func (e *objectEntry) set(relation string) *relationSet {
	for i := range e.relations {
		if e.relations[i].relation == relation {
			return e.relations[i].set
		}
	}
	return nil
}

// schemaVersion is the schema text in force from rev on.
type schemaVersion struct {
	rev  Revision
	text string
}

// index is the in-memory, multi-version relationship index.
//
// mu guards every field. Readers hold mu.RLock only while they copy
// results out, never while they call back into the index, because a
// recursive RLock would deadlock behind a waiting writer.
type index struct {
	mu sync.RWMutex

	head   Revision
	oldest Revision // the oldest revision that can still be read

	byResource map[resourceKey]*relationSet
	byType     map[string]map[resourceKey]*relationSet
	bySubject  map[SubjectRef]map[resourceKey]struct{}
	records    map[string]map[string]*recordHistory // kind, then id

	// handles interns every object that is the resource or the subject of
	// a relationship, and objects[h] describes the object of handle h.
	// objects[0] is unused, because the zero handle names no object.
	// NOTE: an interned object keeps its slot until the index is rebuilt,
	// even after garbage collection drops its last relationship.
	handles map[ObjectRef]ObjectHandle
	objects []objectEntry

	schemas  []schemaVersion // ascending by rev
	revTimes []revisionTime  // ascending by rev, for garbage collection
}

type revisionTime struct {
	rev Revision
	at  time.Time
}

func newIndex() *index {
	return &index{
		byResource: make(map[resourceKey]*relationSet),
		byType:     make(map[string]map[resourceKey]*relationSet),
		bySubject:  make(map[SubjectRef]map[resourceKey]struct{}),
		records:    make(map[string]map[string]*recordHistory),
		handles:    make(map[ObjectRef]ObjectHandle),
		objects:    make([]objectEntry, 1),
	}
}

// internLocked returns the handle of o, giving it one if it has none.
func (ix *index) internLocked(o ObjectRef) ObjectHandle {
	if h, ok := ix.handles[o]; ok {
		return h
	}
	h := ObjectHandle(len(ix.objects))
	ix.objects = append(ix.objects, objectEntry{ref: o})
	ix.handles[o] = h
	return h
}

func resourceKeyOf(k Key) resourceKey {
	return resourceKey{typ: k.ResourceType, id: k.ResourceID, rel: k.Relation}
}

func (ix *index) setLocked(k resourceKey, create bool) *relationSet {
	rs := ix.byResource[k]
	if rs == nil && create {
		rs = &relationSet{byObject: make(map[ObjectHandle]*history), bySubject: make(map[subjectKey]*history)}
		ix.byResource[k] = rs
		obj := &ix.objects[ix.internLocked(ObjectRef{Type: k.typ, ID: k.id})]
		obj.relations = append(obj.relations, namedSet{relation: k.rel, set: rs})
		byType := ix.byType[k.typ]
		if byType == nil {
			byType = make(map[resourceKey]*relationSet)
			ix.byType[k.typ] = byType
		}
		byType[k] = rs
	}
	return rs
}

// putLocked makes rel the live version of its key from rev on, ending any
// live version before it.
func (ix *index) putLocked(rel *Relationship, rev Revision) {
	rk := resourceKeyOf(rel.Key)
	rs := ix.setLocked(rk, true)
	object := ix.internLocked(rel.Subject.Object())
	sk := subjectKey{object: object, relation: rel.Subject.Relation}
	h := rs.history(sk)
	if h == nil {
		h = &history{}
		rs.setHistory(sk, h)
		entry := setEntry{subject: rel.Subject, object: object, hist: h}
		rs.order = append(rs.order, entry)
		if rel.Subject.Relation != Ellipsis {
			rs.subjectSets = append(rs.subjectSets, entry)
		}
		subjects := ix.bySubject[rel.Subject]
		if subjects == nil {
			subjects = make(map[resourceKey]struct{})
			ix.bySubject[rel.Subject] = subjects
		}
		subjects[rk] = struct{}{}
	}
	if n := len(h.versions); n > 0 && h.versions[n-1].deleted == 0 {
		h.versions[n-1].deleted = rev
	}
	h.versions = append(h.versions, version{rel: rel, created: rev})
}

// deleteLocked ends the live version of k at rev, if there is one.
func (ix *index) deleteLocked(k Key, rev Revision) {
	rs := ix.setLocked(resourceKeyOf(k), false)
	if rs == nil {
		return
	}
	h := rs.history(subjectKey{object: ix.handles[k.Subject.Object()], relation: k.Subject.Relation})
	if h == nil {
		return
	}
	if n := len(h.versions); n > 0 && h.versions[n-1].deleted == 0 {
		h.versions[n-1].deleted = rev
	}
}

// apply records one committed transaction.
func (ix *index) apply(commit Commit) {
	rev := commit.Revision
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i := range commit.Changes {
		c := &commit.Changes[i]
		switch c.Op {
		case OpTouch:
			ix.putLocked(c.Relationship, rev)
		case OpDelete:
			ix.deleteLocked(c.Relationship.Key, rev)
		}
	}
	for _, rc := range commit.Records {
		ix.applyRecordLocked(rc, rev)
	}
	if commit.Schema != nil {
		ix.schemas = append(ix.schemas, schemaVersion{rev: rev, text: *commit.Schema})
	}
	// Commits from other processes carry their clocks, which may lag this
	// one; revisionBefore needs the times in ascending order.
	at := commit.At
	if n := len(ix.revTimes); n > 0 && at.Before(ix.revTimes[n-1].at) {
		at = ix.revTimes[n-1].at
	}
	ix.revTimes = append(ix.revTimes, revisionTime{rev: rev, at: at})
	ix.head = rev
}

// collect drops every version that no revision at or after keep can see,
// and makes keep the oldest readable revision.
func (ix *index) collect(keep Revision) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if keep <= ix.oldest {
		return
	}
	for rk, rs := range ix.byResource {
		kept := rs.order[:0]
		for _, e := range rs.order {
			h := e.hist
			live := h.versions[:0]
			for _, v := range h.versions {
				if v.deleted == 0 || v.deleted > keep {
					live = append(live, v)
				}
			}
			h.versions = live
			if len(live) == 0 {
				rs.deleteHistory(subjectKey{object: e.object, relation: e.subject.Relation})
				if m := ix.bySubject[e.subject]; m != nil {
					delete(m, rk)
					if len(m) == 0 {
						delete(ix.bySubject, e.subject)
					}
				}
				continue
			}
			kept = append(kept, e)
		}
		clear(rs.order[len(kept):])
		rs.order = kept
		sets := rs.subjectSets[:0]
		for _, e := range rs.subjectSets {
			if len(e.hist.versions) > 0 {
				sets = append(sets, e)
			}
		}
		clear(rs.subjectSets[len(sets):])
		rs.subjectSets = sets
		if len(kept) == 0 {
			delete(ix.byResource, rk)
			delete(ix.byType[rk.typ], rk)
			ix.dropSetLocked(rk)
		}
	}
	ix.collectRecordsLocked(keep)
	// Keep the schema that was in force at keep, and every later one.
	for len(ix.schemas) > 1 && ix.schemas[1].rev <= keep {
		ix.schemas = ix.schemas[1:]
	}
	i := sort.Search(len(ix.revTimes), func(i int) bool { return ix.revTimes[i].rev >= keep })
	ix.revTimes = ix.revTimes[i:]
	ix.oldest = keep
}

// dropSetLocked removes the emptied relation set of rk from its object.
func (ix *index) dropSetLocked(rk resourceKey) {
	h, ok := ix.handles[ObjectRef{Type: rk.typ, ID: rk.id}]
	if !ok {
		return
	}
	obj := &ix.objects[h]
	for i := range obj.relations {
		if obj.relations[i].relation == rk.rel {
			obj.relations = append(obj.relations[:i], obj.relations[i+1:]...)
			return
		}
	}
}

// revisionBefore returns the newest revision committed before t, or 0.
func (ix *index) revisionBefore(t time.Time) Revision {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	i := sort.Search(len(ix.revTimes), func(i int) bool { return !ix.revTimes[i].at.Before(t) })
	if i == 0 {
		return 0
	}
	return ix.revTimes[i-1].rev
}

func (ix *index) schemaAtLocked(rev Revision) string {
	for i := len(ix.schemas) - 1; i >= 0; i-- {
		if ix.schemas[i].rev <= rev {
			return ix.schemas[i].text
		}
	}
	return ""
}
