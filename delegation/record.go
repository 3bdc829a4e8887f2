package delegation

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
)

// RecordKind is the graph record kind of delegations.
const RecordKind = "delegation"

// Delegation is the record of one delegation.
type Delegation struct {
	ID string `json:"id"`
	// Delegator is "user:<id>", "agent:<id>" or "delegation:<id>".
	Delegator string `json:"delegator"`
	// Delegate is the id of the delegate agent.
	Delegate string  `json:"delegate"`
	Scope    []Scope `json:"scope"`
	// ExpiresAt is when the delegation stops granting anything; zero
	// means it inherits its parent's expiry, or never expires at the root.
	ExpiresAt time.Time `json:"expires_at,omitempty"`
	// MaxDepth is how many further hops may be delegated below this one;
	// 0 means the delegate cannot re-delegate.
	MaxDepth int `json:"max_depth"`
	// MaxFanout is how many live child delegations this one may have.
	MaxFanout int       `json:"max_fanout"`
	CreatedAt time.Time `json:"created_at"`
	// RevokedAt is set when the delegation was revoked; the record is
	// kept for the audit history.
	RevokedAt time.Time `json:"revoked_at,omitempty"`
	Children  []string  `json:"children,omitempty"`
}

// Scope grants permissions on resources: "dataset:payroll" (one object),
// "dataset:*" (every dataset), or "folder:q3/..." (everything inside the
// folder, through the relations the schema follows with arrows).
type Scope struct {
	Permissions []string `json:"permissions"`
	Resource    string   `json:"resource"`
}

// Parent returns the id of the parent delegation, or "".
func (d *Delegation) Parent() string {
	id, ok := strings.CutPrefix(d.Delegator, "delegation:")
	if !ok {
		return ""
	}
	return id
}

// Live reports whether the delegation grants anything at t.
func (d *Delegation) Live(t time.Time) bool {
	return d.RevokedAt.IsZero() && (d.ExpiresAt.IsZero() || t.Before(d.ExpiresAt))
}

// containerSuffix marks a scope resource that means everything inside it.
const containerSuffix = "/..."

// engineScope converts a stored scope into the engine's form.
func (s Scope) engineScope() (engine.ScopeItem, error) {
	it := engine.ScopeItem{Permissions: s.Permissions}
	res := s.Resource
	container := strings.HasSuffix(res, containerSuffix)
	res = strings.TrimSuffix(res, containerSuffix)
	typ, id, ok := strings.Cut(res, ":")
	if !ok || typ == "" || id == "" {
		return it, fmt.Errorf("invalid scope resource %q: use type:id, type:* or type:id/...", s.Resource)
	}
	switch {
	case container:
		if id == "*" {
			return it, fmt.Errorf("invalid scope resource %q: a container must be one object", s.Resource)
		}
		it.Container = graph.ObjectRef{Type: typ, ID: id}
	case id == "*":
		it.Resource = graph.ObjectRef{Type: typ}
	default:
		it.Resource = graph.ObjectRef{Type: typ, ID: id}
	}
	return it, nil
}

func encode(d *Delegation) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode delegation %q: %w", d.ID, err)
	}
	return b, nil
}

func decode(b []byte) (*Delegation, error) {
	var d Delegation
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode delegation record: %w", err)
	}
	return &d, nil
}
