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

// recordKey joins kind and id with NUL; kinds never contain it.
func recordKey(k RecordKey) []byte { return []byte(k.Kind + "\x00" + k.ID) }

func decodeRecordKey(b []byte) (RecordKey, error) {
	kind, id, ok := strings.Cut(string(b), "\x00")
	if !ok {
		return RecordKey{}, fmt.Errorf("malformed record key %q", b)
	}
	return RecordKey{Kind: kind, ID: id}, nil
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
		for _, ch := range c.Changes {
			k := encodeKey(ch.Relationship.Key)
			v := valueOf(ch.Relationship)
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
		b, err := MarshalCommit(c)
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
			commit, err := UnmarshalCommit(Revision(binary.BigEndian.Uint64(k)), v)
			if err != nil {
				return err
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
