package graph

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The change log format below is shared by every durable store: BoltStore
// keeps it as the value of each revision in its changes bucket, and SQL
// stores keep it in the payload column of their change log table.

// MarshalCommit encodes the changes, records, schema and time of c as JSON.
// The revision is not part of the encoding; stores keep it as the key.
func MarshalCommit(c Commit) ([]byte, error) {
	record := storedRevision{At: c.At.UTC(), Schema: c.Schema, Changes: make([]storedChange, 0, len(c.Changes))}
	for _, ch := range c.Changes {
		record.Changes = append(record.Changes, storedChange{
			Op: ch.Op, Key: string(encodeKey(ch.Relationship.Key)), Val: valueOf(ch.Relationship),
		})
	}
	for _, rc := range c.Records {
		record.Records = append(record.Records, storedRecord{Kind: rc.Key.Kind, ID: rc.Key.ID, Data: rc.Data})
	}
	b, err := json.Marshal(record)
	if err != nil {
		return nil, fmt.Errorf("encode revision %d: %w", c.Revision, err)
	}
	return b, nil
}

// UnmarshalCommit decodes what MarshalCommit encoded, as revision rev.
func UnmarshalCommit(rev Revision, data []byte) (Commit, error) {
	var record storedRevision
	if err := json.Unmarshal(data, &record); err != nil {
		return Commit{}, fmt.Errorf("change log record %d: %w", rev, err)
	}
	commit := Commit{Revision: rev, At: record.At, Schema: record.Schema}
	for _, sr := range record.Records {
		commit.Records = append(commit.Records, RecordChange{Key: RecordKey{Kind: sr.Kind, ID: sr.ID}, Data: sr.Data})
	}
	for _, sc := range record.Changes {
		key, err := decodeKey([]byte(sc.Key))
		if err != nil {
			return Commit{}, fmt.Errorf("change log record %d: %w", rev, err)
		}
		commit.Changes = append(commit.Changes, Change{Op: sc.Op, Relationship: sc.Val.relationship(key)})
	}
	return commit, nil
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
