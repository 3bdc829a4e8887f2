package graph

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta          = []byte("meta")
	bucketRelationships = []byte("relationships")
	bucketChanges       = []byte("changes")
	bucketRecords       = []byte("records")

	keyHead   = []byte("head")
	keySchema = []byte("schema")
)

// BoltStore is the embedded durable store: one bbolt file in a data
// directory. Every Commit is one bbolt transaction, fsynced before it
// returns, so a crash keeps every acknowledged write and never a part of one.
type BoltStore struct {
	db *bolt.DB
}

// OpenBolt opens or creates the store in dir.
func OpenBolt(dir string) (*BoltStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open embedded store: create data directory %q: %w", dir, err)
	}
	path := filepath.Join(dir, "mandate.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open embedded store %q: another process holds it open", path)
		}
		return nil, fmt.Errorf("open embedded store %q: %w", path, err)
	}
	err = db.Update(func(btx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketRelationships, bucketChanges, bucketRecords} {
			if _, err := btx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open embedded store %q: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// storedValue is the value of a relationship in the store; the key holds
// its identity.
type storedValue struct {
	Caveat     string         `json:"caveat,omitempty"`
	Context    map[string]any `json:"context,omitempty"`
	Expiration *time.Time     `json:"expiration,omitempty"`
}

// storedChange is one entry of a revision's change log record.
type storedChange struct {
	Op  Op          `json:"op"`
	Key string      `json:"key"`
	Val storedValue `json:"val"`
}

type storedRevision struct {
	At      time.Time      `json:"at"`
	Changes []storedChange `json:"changes"`
	Records []storedRecord `json:"records,omitempty"`
	Schema  *string        `json:"schema,omitempty"`
}

// storedRecord is a record change in the change log; Data is nil for a
// deletion.
type storedRecord struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Data []byte `json:"data,omitempty"`
}

// recordKey joins kind and id with NUL; kinds never contain it.
func recordKey(k RecordKey) []byte { return []byte(k.Kind + "\x00" + k.ID) }

func decodeRecordKey(b []byte) (RecordKey, error) {
	kind, id, ok := strings.Cut(string(b), "\x00")
	if !ok {
		return RecordKey{}, fmt.Errorf("malformed record key %q", b)
	}
	return RecordKey{Kind: kind, ID: id}, nil
}

// encodeKey joins the six parts of a key with NUL, which no valid type,
// id or relation contains.
func encodeKey(k Key) []byte {
	return []byte(strings.Join([]string{
		k.ResourceType, k.ResourceID, k.Relation,
		k.Subject.Type, k.Subject.ID, k.Subject.Relation,
	}, "\x00"))
}

func decodeKey(b []byte) (Key, error) {
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 6 {
		return Key{}, fmt.Errorf("malformed relationship key %q", b)
	}
	return Key{
		ResourceType: parts[0], ResourceID: parts[1], Relation: parts[2],
		Subject: SubjectRef{Type: parts[3], ID: parts[4], Relation: parts[5]},
	}, nil
}

func valueOf(r *Relationship) storedValue {
	v := storedValue{Caveat: r.Caveat, Context: r.CaveatContext}
	if !r.Expiration.IsZero() {
		t := r.Expiration.UTC()
		v.Expiration = &t
	}
	return v
}

func (v storedValue) relationship(k Key) *Relationship {
	r := &Relationship{Key: k, Caveat: v.Caveat, CaveatContext: v.Context}
	if v.Expiration != nil {
		r.Expiration = *v.Expiration
	}
	return r
}

func revisionKey(rev Revision) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(rev))
	return b[:]
}

// Load implements Store.
func (s *BoltStore) Load() (State, error) {
	var st State
	err := s.db.View(func(btx *bolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		if b := meta.Get(keyHead); b != nil {
			st.Head = Revision(binary.BigEndian.Uint64(b))
		}
		st.SchemaText = string(meta.Get(keySchema))
		err := btx.Bucket(bucketRelationships).ForEach(func(k, v []byte) error {
			key, err := decodeKey(k)
			if err != nil {
				return err
			}
			var sv storedValue
			if err := json.Unmarshal(v, &sv); err != nil {
				return fmt.Errorf("relationship %s: %w", key, err)
			}
			st.Relationships = append(st.Relationships, sv.relationship(key))
			return nil
		})
		if err != nil {
			return err
		}
		return btx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			key, err := decodeRecordKey(k)
			if err != nil {
				return err
			}
			st.Records = append(st.Records, RecordChange{Key: key, Data: append([]byte(nil), v...)})
			return nil
		})
	})
	if err != nil {
		return State{}, fmt.Errorf("load embedded store: %w", err)
	}
	return st, nil
}

// Commit implements Store.
func (s *BoltStore) Commit(c Commit) error {
	return s.db.Update(func(btx *bolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		var head Revision
		if b := meta.Get(keyHead); b != nil {
			head = Revision(binary.BigEndian.Uint64(b))
		}
		if c.Revision != head+1 {
			return fmt.Errorf("commit revision %d: store head is %d", c.Revision, head)
		}
		rels := btx.Bucket(bucketRelationships)
		record := storedRevision{At: c.At.UTC(), Schema: c.Schema, Changes: make([]storedChange, 0, len(c.Changes))}
		for _, ch := range c.Changes {
			k := encodeKey(ch.Relationship.Key)
			v := valueOf(ch.Relationship)
			record.Changes = append(record.Changes, storedChange{Op: ch.Op, Key: string(k), Val: v})
			switch ch.Op {
			case OpTouch:
				b, err := json.Marshal(v)
				if err != nil {
					return fmt.Errorf("encode %s: %w", ch.Relationship.Key, err)
				}
				if err := rels.Put(k, b); err != nil {
					return err
				}
			case OpDelete:
				if err := rels.Delete(k); err != nil {
					return err
				}
			}
		}
		records := btx.Bucket(bucketRecords)
		for _, rc := range c.Records {
			record.Records = append(record.Records, storedRecord{Kind: rc.Key.Kind, ID: rc.Key.ID, Data: rc.Data})
			var err error
			if rc.Data == nil {
				err = records.Delete(recordKey(rc.Key))
			} else {
				err = records.Put(recordKey(rc.Key), rc.Data)
			}
			if err != nil {
				return err
			}
		}
		if c.Schema != nil {
			if err := meta.Put(keySchema, []byte(*c.Schema)); err != nil {
				return err
			}
		}
		b, err := json.Marshal(record)
		if err != nil {
			return err
		}
		if err := btx.Bucket(bucketChanges).Put(revisionKey(c.Revision), b); err != nil {
			return err
		}
		return meta.Put(keyHead, revisionKey(c.Revision))
	})
}

// maxCommitsPerRead bounds the commits one Changes call reads into memory.
const maxCommitsPerRead = 1000

// Changes implements Store. It returns at most maxCommitsPerRead commits;
// callers continue from the last revision they saw.
//
// NOTE: the change log is never trimmed; it grows with every write.
func (s *BoltStore) Changes(after Revision, fn func(Commit) error) error {
	var commits []Commit
	err := s.db.View(func(btx *bolt.Tx) error {
		c := btx.Bucket(bucketChanges).Cursor()
		for k, v := c.Seek(revisionKey(after + 1)); k != nil; k, v = c.Next() {
			var record storedRevision
			if err := json.Unmarshal(v, &record); err != nil {
				return fmt.Errorf("change log record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			commit := Commit{Revision: Revision(binary.BigEndian.Uint64(k)), At: record.At, Schema: record.Schema}
			for _, sr := range record.Records {
				commit.Records = append(commit.Records, RecordChange{Key: RecordKey{Kind: sr.Kind, ID: sr.ID}, Data: sr.Data})
			}
			for _, sc := range record.Changes {
				key, err := decodeKey([]byte(sc.Key))
				if err != nil {
					return err
				}
				commit.Changes = append(commit.Changes, Change{Op: sc.Op, Relationship: sc.Val.relationship(key)})
			}
			commits = append(commits, commit)
			if len(commits) == maxCommitsPerRead {
				break
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read change log: %w", err)
	}
	// fn runs outside the bbolt transaction so a slow consumer does not
	// hold the database's read lock.
	for _, c := range commits {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }
