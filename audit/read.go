package audit

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Query selects records; empty fields match every record.
type Query struct {
	// Agent matches records whose principal, subject or actors name
	// agent:<Agent>.
	Agent      string
	Resource   string
	Result     string
	Delegation string
	Kind       string
	Since      time.Time
	Until      time.Time
	// After skips records with a sequence number below it.
	After uint64
	// Limit stops after this many records; 0 means no limit.
	Limit int
}

// Matches reports whether r passes q.
func (q *Query) Matches(r *Record) bool {
	if q.Agent != "" {
		agent := "agent:" + q.Agent
		found := r.Principal == agent || r.Subject == agent
		for _, a := range r.Actors {
			found = found || a == agent
		}
		if !found {
			return false
		}
	}
	switch {
	case q.Resource != "" && r.Resource != q.Resource:
		return false
	case q.Result != "" && !strings.EqualFold(r.Result, q.Result):
		return false
	case q.Delegation != "" && r.Delegation != q.Delegation:
		return false
	case q.Kind != "" && r.Kind != q.Kind:
		return false
	case !q.Since.IsZero() && r.Time.Before(q.Since):
		return false
	case !q.Until.IsZero() && !r.Time.Before(q.Until):
		return false
	}
	return true
}

// Scan calls fn for every record that passes q, in sequence order, until
// fn returns false.
func (l *Log) Scan(q Query, fn func(*Record) bool) error {
	// Records are read in pages so that fn never runs inside a bbolt read
	// transaction, which would hold back the writer's file growth.
	next := q.After
	sent := 0
	for {
		var page []*Record
		err := l.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, next)); k != nil && len(page) < 1000; k, v = c.Next() {
				var r Record
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("audit record %d: %w", binary.BigEndian.Uint64(k), err)
				}
				next = r.Seq + 1
				page = append(page, &r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, r := range page {
			if !q.Matches(r) {
				continue
			}
			if q.Limit > 0 && sent == q.Limit {
				return nil
			}
			sent++
			if !fn(r) {
				return nil
			}
		}
	}
}

// RawRecords calls fn with every stored record's bytes and leaf hash, in
// order, for verification.
func (l *Log) RawRecords(fn func(seq uint64, data []byte, leaf Hash) error) error {
	return l.db.View(func(tx *bolt.Tx) error {
		leaves := tx.Bucket(bucketLeaves)
		return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			var leaf Hash
			copy(leaf[:], leaves.Get(k))
			return fn(binary.BigEndian.Uint64(k), v, leaf)
		})
	})
}

// RawRecordsPage calls fn with the bytes and stored leaf hash of up to max
// records from sequence number from on, in order, and returns the
// sequence number after the last one (from when there was none). The
// bytes are copies, so fn may keep them, and fn runs after the read
// transaction has ended.
func (l *Log) RawRecordsPage(from uint64, max int, fn func(seq uint64, data []byte, leaf Hash) error) (uint64, error) {
	type raw struct {
		seq  uint64
		data []byte
		leaf Hash
	}
	var page []raw
	err := l.db.View(func(tx *bolt.Tx) error {
		leaves := tx.Bucket(bucketLeaves)
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, from)); k != nil && len(page) < max; k, v = c.Next() {
			r := raw{seq: binary.BigEndian.Uint64(k), data: append([]byte(nil), v...)}
			copy(r.leaf[:], leaves.Get(k))
			page = append(page, r)
		}
		return nil
	})
	if err != nil {
		return from, err
	}
	next := from
	for _, r := range page {
		if err := fn(r.seq, r.data, r.leaf); err != nil {
			return next, err
		}
		next = r.seq + 1
	}
	return next, nil
}

// Heads returns every stored tree head, by size.
func (l *Log) Heads() ([]TreeHead, error) {
	var out []TreeHead
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHeads).ForEach(func(_, v []byte) error {
			var h TreeHead
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			out = append(out, h)
			return nil
		})
	})
	return out, err
}

// Leaves returns the stored leaf hashes of the first n records.
func (l *Log) Leaves(n uint64) ([]Hash, error) {
	out := make([]Hash, 0, n)
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLeaves).Cursor()
		for k, v := c.First(); k != nil && uint64(len(out)) < n; k, v = c.Next() {
			var h Hash
			copy(h[:], v)
			out = append(out, h)
		}
		return nil
	})
	if err == nil && uint64(len(out)) < n {
		err = fmt.Errorf("audit log has %d leaves, fewer than %d", len(out), n)
	}
	return out, err
}
