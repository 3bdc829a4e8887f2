package graph

import "sync/atomic"

// Records are small documents stored beside relationships and committed in
// the same transactions: agent identities, delegations and other state
// that the graph's relationships refer to. A record is addressed by a kind
// and an id, holds opaque bytes, and is read at a revision like a
// relationship.

// RecordKey addresses one record.
type RecordKey struct {
	Kind string
	ID   string
}

// RecordChange is one committed record mutation. Data is nil for a
// deletion.
type RecordChange struct {
	Key  RecordKey
	Data []byte
}

type recordVersion struct {
	data    []byte
	created Revision
	deleted Revision
	// decoded holds what Decoded last made of data.
	decoded atomic.Pointer[decodedRecord]
}

// decodedRecord is a reader's decoding of one record version.
type decodedRecord struct {
	value any
	err   error
}

type recordHistory struct {
	versions []*recordVersion
}

func (h *recordHistory) version(rev Revision) *recordVersion {
	for i := len(h.versions) - 1; i >= 0; i-- {
		v := h.versions[i]
		if v.created <= rev && (v.deleted == 0 || rev < v.deleted) {
			return v
		}
	}
	return nil
}

func (h *recordHistory) at(rev Revision) []byte {
	if v := h.version(rev); v != nil {
		return v.data
	}
	return nil
}

// applyRecordLocked records one record change at rev.
func (ix *index) applyRecordLocked(c RecordChange, rev Revision) {
	byKind := ix.records[c.Key.Kind]
	if byKind == nil {
		byKind = make(map[string]*recordHistory)
		ix.records[c.Key.Kind] = byKind
	}
	h := byKind[c.Key.ID]
	if h == nil {
		h = &recordHistory{}
		byKind[c.Key.ID] = h
	}
	if n := len(h.versions); n > 0 && h.versions[n-1].deleted == 0 {
		h.versions[n-1].deleted = rev
	}
	if c.Data != nil {
		h.versions = append(h.versions, &recordVersion{data: c.Data, created: rev})
	}
}

// collectRecordsLocked drops record versions that no revision at or after
// keep can see.
func (ix *index) collectRecordsLocked(keep Revision) {
	for kind, byKind := range ix.records {
		for id, h := range byKind {
			live := h.versions[:0]
			for _, v := range h.versions {
				if v.deleted == 0 || v.deleted > keep {
					live = append(live, v)
				}
			}
			h.versions = live
			if len(live) == 0 {
				delete(byKind, id)
			}
		}
		if len(byKind) == 0 {
			delete(ix.records, kind)
		}
	}
}

// Record returns the data of a record, or nil when it does not exist.
// The caller must not modify the returned bytes.
func (s Snapshot) Record(kind, id string) []byte {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	h := s.ix.records[kind][id]
	if h == nil {
		return nil
	}
	return h.at(s.Revision)
}

// Decoded returns decode applied to a record at the snapshot's revision,
// and ok false when the record does not exist. The result is kept with the
// stored version, and later readers of that version asking for the same
// result type share it instead of decoding again, so callers must not
// modify what it returns. A record that changes gets a new version, so no
// reader sees a decoding of data other than what it would read.
func Decoded[T any](s Snapshot, kind, id string, decode func([]byte) (T, error)) (value T, ok bool, err error) {
	s.ix.mu.RLock()
	var v *recordVersion
	if h := s.ix.records[kind][id]; h != nil {
		v = h.version(s.Revision)
	}
	s.ix.mu.RUnlock()
	if v == nil {
		return value, false, nil
	}
	if d := v.decoded.Load(); d != nil {
		if t, same := d.value.(T); same {
			return t, true, d.err
		}
	}
	value, err = decode(v.data)
	v.decoded.Store(&decodedRecord{value: value, err: err})
	return value, true, err
}

// Records calls fn for every record of kind that exists at the snapshot's
// revision, in no particular order.
func (s Snapshot) Records(kind string, fn func(id string, data []byte)) {
	type item struct {
		id   string
		data []byte
	}
	s.ix.mu.RLock()
	var items []item
	for id, h := range s.ix.records[kind] {
		if d := h.at(s.Revision); d != nil {
			items = append(items, item{id, d})
		}
	}
	s.ix.mu.RUnlock()
	for _, it := range items {
		fn(it.id, it.data)
	}
}

// GetRecord returns a record as the transaction sees it.
func (tx *Tx) GetRecord(kind, id string) []byte {
	k := RecordKey{Kind: kind, ID: id}
	for i := len(tx.records) - 1; i >= 0; i-- {
		if tx.records[i].Key == k {
			return tx.records[i].Data
		}
	}
	return tx.snap.Record(kind, id)
}

// PutRecord creates or replaces a record.
func (tx *Tx) PutRecord(kind, id string, data []byte) {
	tx.records = append(tx.records, RecordChange{Key: RecordKey{Kind: kind, ID: id}, Data: data})
}

// DeleteRecord removes a record.
func (tx *Tx) DeleteRecord(kind, id string) {
	tx.records = append(tx.records, RecordChange{Key: RecordKey{Kind: kind, ID: id}})
}
