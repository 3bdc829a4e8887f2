// Package review finds the rights an agent or a department holds but has
// not used within a period, from the audit log, so owners can remove
// them.
package review

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/delegation"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// Right is one grant under review.
type Right struct {
	// ID is the relationship ("dataset:payroll#reader@agent:bot") or the
	// delegation ("delegation:d1").
	ID       string
	Kind     string // "relationship" or "delegation"
	Uses     uint64
	LastUsed time.Time

	rel        *graph.Relationship
	delegation string
}

// Used reports whether the right was used within the period.
func (r *Right) Used() bool { return r.Uses > 0 }

// Target names whose rights are reviewed: one agent or one department.
type Target struct {
	Agent      string
	Department string
}

// managedRelations are relationships Mandate's own services keep in step
// with identities and delegations; they are reviewed through those, not
// as grants.
var managedRelations = map[string]bool{
	schema.DepartmentType + "#member": true,
	schema.RoleType + "#assignee":     true,
}

// Rights lists the grants of the target at snap: relationships whose
// subject is the agent (or the department's members), and live
// delegations to the agent.
func Rights(snap graph.Snapshot, t Target, now time.Time) ([]*Right, error) {
	var subject graph.SubjectRef
	switch {
	case t.Agent != "" && t.Department == "":
		subject = graph.SubjectRef{Type: schema.AgentType, ID: t.Agent}
	case t.Department != "" && t.Agent == "":
		subject = graph.SubjectRef{Type: schema.DepartmentType, ID: t.Department, Relation: "member"}
	default:
		return nil, fmt.Errorf("review: name exactly one agent or one department")
	}
	var out []*Right
	for _, r := range snap.Resources(subject, "", "") {
		if managedRelations[r.ResourceType+"#"+r.Relation] || r.ResourceType == schema.AgentType ||
			r.ResourceType == schema.DelegationType {
			continue
		}
		out = append(out, &Right{ID: r.Key.String(), Kind: "relationship", rel: r})
	}
	if t.Agent != "" {
		ds, err := delegation.List(snap, delegation.Filter{Delegate: t.Agent})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.Live(now) {
				out = append(out, &Right{ID: schema.DelegationType + ":" + d.ID, Kind: "delegation", delegation: d.ID})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// CountUses fills each right's uses from the granted decisions of the log
// since the given time. A relationship counts as used when it is on the
// recorded path that granted a decision; for a record without a path, when
// a member of the target was granted any permission on its resource. A
// delegation counts as used when a decision was granted through it.
func CountUses(l *audit.Log, snap graph.Snapshot, t Target, rights []*Right, since time.Time) error {
	members := map[string]bool{}
	if t.Agent != "" {
		members[schema.AgentType+":"+t.Agent] = true
	} else {
		for _, r := range snap.Subjects(schema.DepartmentType, t.Department, "member") {
			members[r.Subject.String()] = true
		}
	}
	byID := map[string]*Right{}
	byResource := map[string][]*Right{}
	byDelegation := map[string]*Right{}
	for _, r := range rights {
		if r.rel != nil {
			byID[r.ID] = r
			res := r.rel.ResourceType + ":" + r.rel.ResourceID
			byResource[res] = append(byResource[res], r)
		} else {
			byDelegation[r.delegation] = r
		}
	}
	mark := func(r *Right, at time.Time) {
		r.Uses++
		if at.After(r.LastUsed) {
			r.LastUsed = at
		}
	}
	return l.Scan(audit.Query{Kind: audit.KindCheck, Since: since}, func(rec *audit.Record) bool {
		if rec.Result != "has_permission" {
			return true
		}
		if r := byDelegation[rec.Delegation]; r != nil {
			mark(r, rec.Time)
		}
		if rec.Why != "" {
			for _, step := range pathSteps(rec.Why) {
				if r := byID[step]; r != nil {
					mark(r, rec.Time)
				}
			}
			return true
		}
		if members[rec.Subject] {
			for _, r := range byResource[rec.Resource] {
				mark(r, rec.Time)
			}
		}
		return true
	})
}

// pathSteps splits a recorded path into relationship keys, dropping the
// principal prefixes of delegated paths and the caveat and expiration
// suffixes.
func pathSteps(why string) []string {
	var out []string
	for _, part := range strings.Split(why, "; ") {
		if _, rest, ok := strings.Cut(part, ": "); ok && !strings.Contains(part[:len(part)-len(rest)], "#") {
			part = rest
		}
		for _, branch := range strings.Split(part, " & ") {
			for _, step := range strings.Split(branch, " -> ") {
				if i := strings.IndexByte(step, '['); i >= 0 {
					step = step[:i]
				}
				out = append(out, step)
			}
		}
	}
	return out
}

// Revoke removes the rights with the given ids in tx: relationships are
// deleted, delegations revoked with everything below them. Unknown ids
// are an error that names them, and nothing is removed.
func Revoke(tx *graph.Tx, ids []string, now time.Time) ([]string, error) {
	var revoked []string
	for _, id := range ids {
		if d, ok := cutPrefix(id, schema.DelegationType+":"); ok && !containsAny(d, "#@") {
			ids, err := delegation.Revoke(tx, d, now)
			if err != nil {
				return nil, fmt.Errorf("revoke %q: %w", id, err)
			}
			for _, r := range ids {
				revoked = append(revoked, schema.DelegationType+":"+r)
			}
			continue
		}
		key, err := parseKey(id)
		if err != nil {
			return nil, err
		}
		if !tx.Delete(key) {
			return nil, fmt.Errorf("revoke %q: no such relationship", id)
		}
		revoked = append(revoked, id)
	}
	return revoked, nil
}
