package engine

import "github.com/mandate-iam/mandate/graph"

// Policy carries the server's own rules about subjects into the walker.
// A nil Policy, or a nil field, changes nothing, so a schema without
// Mandate's agent types behaves exactly as in SpiceDB.
type Policy struct {
	// Allowed reports whether a subject may hold any permission at all.
	// It returns false for a suspended or decommissioned agent.
	Allowed func(graph.SubjectRef) bool
	// TrustedContext returns caveat context that the server vouches for,
	// such as the request time and the agent's risk level. It overrides
	// both the request's context and the relationship's, so neither a
	// client nor a stored relationship can forge it.
	TrustedContext func(graph.SubjectRef) map[string]any
	// DelegationType is the object type whose objects are delegations, and
	// ResolveDelegation returns the chain of one. A check or lookup whose
	// subject is a delegation (without a subject relation) is answered
	// through its chain. Either being unset turns this off.
	DelegationType    string
	ResolveDelegation func(id string) (*Chain, error)
}

func (p *Policy) allows(s graph.SubjectRef) bool {
	return p == nil || p.Allowed == nil || p.Allowed(s)
}

func (p *Policy) trusted(s graph.SubjectRef) map[string]any {
	if p == nil || p.TrustedContext == nil {
		return nil
	}
	return p.TrustedContext(s)
}
