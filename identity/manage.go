package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

var (
	// ErrInvalid marks a request with an invalid value; the message names it.
	ErrInvalid = errors.New("invalid agent request")
	// ErrExists is returned when creating an agent whose id is taken, also
	// by a decommissioned agent.
	ErrExists = errors.New("agent already exists")
	// ErrState is returned for a lifecycle change the current state does not
	// allow, such as reactivating a decommissioned agent.
	ErrState = errors.New("agent state does not allow this")
)

// Create registers a new, active agent in tx and writes the relationships
// that describe it.
func Create(tx *graph.Tx, a *Agent, now time.Time) error {
	if a.RiskLevel == "" {
		a.RiskLevel = RiskLow
	}
	if err := a.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if tx.GetRecord(RecordKind, a.ID) != nil {
		return fmt.Errorf("agent %q: %w (decommissioned ids are not reused)", a.ID, ErrExists)
	}
	a.State = StateActive
	a.CreatedAt, a.UpdatedAt = now.UTC(), now.UTC()
	writeRelationships(tx, a, true)
	return put(tx, a)
}

// Update is a change to an agent's attributes; nil fields stay as they are.
type Update struct {
	Owner, Department, Role, Purpose, RiskLevel *string
}

// Apply changes the attributes of agent id in tx and rewrites its
// relationships.
func Apply(tx *graph.Tx, id string, u Update, now time.Time) (*Agent, error) {
	a, err := getLive(tx, id)
	if err != nil {
		return nil, err
	}
	writeRelationships(tx, a, false)
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&a.Owner, u.Owner)
	set(&a.Department, u.Department)
	set(&a.Role, u.Role)
	set(&a.Purpose, u.Purpose)
	set(&a.RiskLevel, u.RiskLevel)
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	writeRelationships(tx, a, true)
	a.UpdatedAt = now.UTC()
	return a, put(tx, a)
}

// Suspend marks agent id suspended in tx.
func Suspend(tx *graph.Tx, id, reason string, now time.Time) (*Agent, error) {
	a, err := getLive(tx, id)
	if err != nil {
		return nil, err
	}
	a.State, a.Reason, a.UpdatedAt = StateSuspended, reason, now.UTC()
	return a, put(tx, a)
}

// Reactivate makes a suspended agent active again.
func Reactivate(tx *graph.Tx, id string, now time.Time) (*Agent, error) {
	a, err := getLive(tx, id)
	if err != nil {
		return nil, err
	}
	a.State, a.Reason, a.UpdatedAt = StateActive, "", now.UTC()
	return a, put(tx, a)
}

// Decommission removes every relationship in which agent id is the resource
// or the subject, and marks its record decommissioned, which refuses its
// key. The record itself is kept for the audit history.
func Decommission(s *schema.Schema, tx *graph.Tx, id string, now time.Time) (*Agent, error) {
	a, err := getLive(tx, id)
	if err != nil {
		return nil, err
	}
	snap := tx.Snapshot()
	for _, r := range snap.Scan(graph.Filter{ResourceType: schema.AgentType, ResourceID: id}) {
		tx.Delete(r.Key)
	}
	refs := []graph.SubjectRef{{Type: schema.AgentType, ID: id}}
	if def := s.Definition(schema.AgentType); def != nil {
		for _, name := range def.Order {
			refs = append(refs, graph.SubjectRef{Type: schema.AgentType, ID: id, Relation: name})
		}
	}
	for _, ref := range refs {
		for _, r := range snap.Resources(ref, "", "") {
			tx.Delete(r.Key)
		}
	}
	a.State, a.UpdatedAt = StateDecommissioned, now.UTC()
	return a, put(tx, a)
}

// getLive returns the agent as tx sees it, failing for an unknown or
// decommissioned agent.
func getLive(tx *graph.Tx, id string) (*Agent, error) {
	data := tx.GetRecord(RecordKind, id)
	if data == nil {
		return nil, fmt.Errorf("agent %q: %w", id, ErrNotFound)
	}
	a, err := decodeAgent(data)
	if err != nil {
		return nil, err
	}
	if a.State == StateDecommissioned {
		return nil, fmt.Errorf("agent %q is decommissioned: %w", id, ErrState)
	}
	return a, nil
}

func put(tx *graph.Tx, a *Agent) error {
	data, err := encodeAgent(a)
	if err != nil {
		return err
	}
	tx.PutRecord(RecordKind, a.ID, data)
	return nil
}

// writeRelationships adds (or, with add false, removes) the relationships
// that mirror the agent's owner, department and role in the graph.
func writeRelationships(tx *graph.Tx, a *Agent, add bool) {
	agent := graph.SubjectRef{Type: schema.AgentType, ID: a.ID}
	var rels []*graph.Relationship
	rel := func(resType, resID, relation string, subject graph.SubjectRef) {
		rels = append(rels, &graph.Relationship{Key: graph.Key{
			ResourceType: resType, ResourceID: resID, Relation: relation, Subject: subject,
		}})
	}
	rel(schema.AgentType, a.ID, "owner", graph.SubjectRef{Type: schema.UserType, ID: a.Owner})
	if a.Department != "" {
		rel(schema.AgentType, a.ID, "department", graph.SubjectRef{Type: schema.DepartmentType, ID: a.Department})
		rel(schema.DepartmentType, a.Department, "member", agent)
	}
	if a.Role != "" {
		rel(schema.AgentType, a.ID, "role", graph.SubjectRef{Type: schema.RoleType, ID: a.Role})
		rel(schema.RoleType, a.Role, "assignee", agent)
	}
	for _, r := range rels {
		if add {
			tx.Touch(r)
		} else {
			tx.Delete(r.Key)
		}
	}
}
