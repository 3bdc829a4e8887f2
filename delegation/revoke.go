package delegation

import (
	"fmt"
	"time"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// Revoke marks delegation id and every descendant revoked and deletes
// their relationships. Checks through any of them are denied from the
// revision of tx on; the records stay for the audit history. It returns
// the ids revoked.
func Revoke(tx *graph.Tx, id string, now time.Time) ([]string, error) {
	data := tx.GetRecord(RecordKind, id)
	if data == nil {
		return nil, fmt.Errorf("delegation %q: %w", id, ErrNotFound)
	}
	var revoked []string
	queue := []string{id}
	seen := map[string]bool{}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if seen[cur] {
			continue
		}
		seen[cur] = true
		data := tx.GetRecord(RecordKind, cur)
		if data == nil {
			continue
		}
		d, err := decode(data)
		if err != nil {
			return nil, err
		}
		queue = append(queue, d.Children...)
		if !d.RevokedAt.IsZero() {
			continue
		}
		d.RevokedAt = now.UTC()
		updated, err := encode(d)
		if err != nil {
			return nil, err
		}
		tx.PutRecord(RecordKind, d.ID, updated)
		for _, rel := range []string{"delegator", "delegate"} {
			for _, r := range tx.Snapshot().Subjects(schema.DelegationType, d.ID, rel) {
				tx.Delete(r.Key)
			}
		}
		revoked = append(revoked, d.ID)
	}
	return revoked, nil
}

// RevokeInvolving revokes every live delegation whose delegator or
// delegate is the agent, as when it is decommissioned.
func RevokeInvolving(tx *graph.Tx, agentID string, now time.Time) ([]string, error) {
	all, err := List(tx.Snapshot(), Filter{})
	if err != nil {
		return nil, err
	}
	var revoked []string
	for _, d := range all {
		if d.Delegate != agentID && d.Delegator != schema.AgentType+":"+agentID {
			continue
		}
		ids, err := Revoke(tx, d.ID, now)
		if err != nil {
			return nil, err
		}
		revoked = append(revoked, ids...)
	}
	return revoked, nil
}
