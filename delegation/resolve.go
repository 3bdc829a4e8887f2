package delegation

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// ErrNotFound is returned for a delegation id with no record.
var ErrNotFound = errors.New("delegation not found")

// maxChainLength bounds the links followed from a delegation to its root.
const maxChainLength = 32

// Get returns delegation id at the snapshot's revision.
func Get(snap graph.Snapshot, id string) (*Delegation, error) {
	data := snap.Record(RecordKind, id)
	if data == nil {
		return nil, fmt.Errorf("delegation %q: %w", id, ErrNotFound)
	}
	return decode(data)
}

// shared is Get for readers that do not modify the delegation: it shares
// one decoding of each stored version of the record across requests.
func shared(snap graph.Snapshot, id string) (*Delegation, error) {
	d, ok, err := graph.Decoded(snap, RecordKind, id, decode)
	if !ok {
		return nil, fmt.Errorf("delegation %q: %w", id, ErrNotFound)
	}
	return d, err
}

// Filter selects delegations in List; empty fields match every one.
type Filter struct {
	// Delegator is a subject such as "agent:planner".
	Delegator string
	// Delegate is an agent id.
	Delegate string
	// IncludeRevoked also lists revoked delegations.
	IncludeRevoked bool
}

// List returns the delegations that pass f, sorted by id.
func List(snap graph.Snapshot, f Filter) ([]*Delegation, error) {
	var out []*Delegation
	var firstErr error
	snap.Records(RecordKind, func(_ string, data []byte) {
		d, err := decode(data)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		if (f.Delegator == "" || d.Delegator == f.Delegator) && (f.Delegate == "" || d.Delegate == f.Delegate) &&
			(f.IncludeRevoked || d.RevokedAt.IsZero()) {
			out = append(out, d)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, firstErr
}

// parseSubject turns "agent:a" or "user:u" into a subject reference.
func parseSubject(s string) (graph.SubjectRef, error) {
	typ, id, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return graph.SubjectRef{}, fmt.Errorf("invalid delegator %q: use user:<id>, agent:<id> or delegation:<id>", s)
	}
	switch typ {
	case schema.UserType, schema.AgentType, schema.DelegationType:
	default:
		return graph.SubjectRef{}, fmt.Errorf("invalid delegator %q: the type must be user, agent or delegation", s)
	}
	return graph.SubjectRef{Type: typ, ID: id}, nil
}

// Resolve returns the chain of delegation id as of now. A chain with a
// missing, revoked or expired link comes back with Invalid set, not as an
// error, because it simply grants nothing.
func Resolve(snap graph.Snapshot, id string, now time.Time) (*engine.Chain, error) {
	chain := &engine.Chain{}
	var delegates []graph.SubjectRef
	seen := map[string]bool{}
	cur := id
	for {
		if len(chain.Links) == maxChainLength {
			chain.Invalid = fmt.Sprintf("delegation:%s has a chain longer than %d links", id, maxChainLength)
			return chain, nil
		}
		d, err := shared(snap, cur)
		if errors.Is(err, ErrNotFound) {
			chain.Invalid = fmt.Sprintf("delegation:%s does not exist", cur)
			return chain, nil
		}
		if err != nil {
			return nil, err
		}
		switch {
		case !d.RevokedAt.IsZero():
			chain.Invalid = fmt.Sprintf("delegation:%s was revoked", cur)
			return chain, nil
		case !d.Live(now):
			chain.Invalid = fmt.Sprintf("delegation:%s expired at %s", cur, d.ExpiresAt.UTC().Format(time.RFC3339))
			return chain, nil
		}
		link := engine.Link{ID: d.ID}
		for _, sc := range d.Scope {
			it, err := sc.engineScope()
			if err != nil {
				return nil, fmt.Errorf("delegation %q: %w", d.ID, err)
			}
			link.Scope = append(link.Scope, it)
		}
		chain.Links = append(chain.Links, link)
		delegates = append(delegates, graph.SubjectRef{Type: schema.AgentType, ID: d.Delegate})
		seen[cur] = true
		parent := d.Parent()
		if parent == "" {
			root, err := parseSubject(d.Delegator)
			if err != nil {
				return nil, fmt.Errorf("delegation %q: %w", d.ID, err)
			}
			chain.Principals = append(chain.Principals, root)
			break
		}
		if seen[parent] {
			chain.Invalid = fmt.Sprintf("delegation:%s is part of a cycle", parent)
			return chain, nil
		}
		cur = parent
	}
	for i := len(delegates) - 1; i >= 0; i-- {
		chain.Principals = append(chain.Principals, delegates[i])
	}
	return chain, nil
}

// Extend adds delegation resolution to an engine policy, when the schema
// has Mandate's delegation type. Chains are resolved at the snapshot's
// revision, with now deciding expiry.
func Extend(p *engine.Policy, s *schema.Schema, snap graph.Snapshot, now time.Time) *engine.Policy {
	if p == nil || s == nil || s.Definition(schema.DelegationType) == nil {
		return p
	}
	p.DelegationType = schema.DelegationType
	// Chains are resolved once per policy: a lookup through a delegation
	// asks for the same chain for every candidate resource.
	var mu sync.Mutex
	chains := map[string]*engine.Chain{}
	p.ResolveDelegation = func(id string) (*engine.Chain, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := chains[id]; ok {
			return c, nil
		}
		c, err := Resolve(snap, id, now)
		if err == nil {
			chains[id] = c
		}
		return c, err
	}
	return p
}
