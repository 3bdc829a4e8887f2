package delegation

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
	"github.com/mandate-iam/mandate/schema"
)

var (
	// ErrInvalid marks a request with an invalid value; the message names it.
	ErrInvalid = errors.New("invalid delegation request")
	// ErrNotHeld is returned when the delegator lacks a permission it tries
	// to hand on.
	ErrNotHeld = errors.New("delegator does not hold the permission")
	// ErrLimit is returned when a depth, fan-out or expiry limit inherited
	// from the parent would be exceeded.
	ErrLimit = errors.New("delegation limit exceeded")
	// ErrExists is returned when the requested id is taken, also by a
	// revoked delegation, whose record is kept.
	ErrExists = errors.New("delegation already exists")
)

// DefaultMaxFanout is the fan-out of a root delegation that sets none.
const DefaultMaxFanout = 16

// Request asks for a new delegation. Zero values of ExpiresAt and
// MaxFanout inherit the parent's.
type Request struct {
	ID        string
	Delegator string
	Delegate  string
	Scope     []Scope
	ExpiresAt time.Time
	MaxDepth  int
	MaxFanout int
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Create checks every rule and writes the delegation in tx:
//   - the delegate is an active agent, and not the delegator;
//   - the delegator is a user, an active agent, or a live delegation whose
//     agents are all active and whose limits allow one more hop and one
//     more child;
//   - the delegator holds every permission it names on a single resource;
//   - the scope stays inside the parent's, the expiry does not outlive the
//     parent's, and depth and fan-out only shrink;
//   - the delegate does not appear earlier in the chain.
func Create(s *schema.Schema, tx *graph.Tx, req Request, now time.Time) (*Delegation, error) {
	snap := tx.Snapshot()
	if req.ID == "" {
		req.ID = newID()
	}
	if err := identity.ValidateID("delegation id", req.ID); err != nil {
		return nil, invalid("%v", err)
	}
	if tx.GetRecord(RecordKind, req.ID) != nil {
		return nil, fmt.Errorf("delegation %q: %w; choose another id or leave it empty to have one generated", req.ID, ErrExists)
	}
	delegator, err := parseSubject(req.Delegator)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if err := requireActiveAgent(snap, req.Delegate, "delegate"); err != nil {
		return nil, err
	}
	if delegator.Type == schema.AgentType {
		if delegator.ID == req.Delegate {
			return nil, invalid("agent %q cannot delegate to itself", req.Delegate)
		}
		if err := requireActiveAgent(snap, delegator.ID, "delegator"); err != nil {
			return nil, err
		}
	}
	if req.MaxDepth < 0 {
		return nil, invalid("max depth %d is negative", req.MaxDepth)
	}
	if req.MaxFanout < 0 {
		return nil, invalid("max fan-out %d is negative", req.MaxFanout)
	}
	if !req.ExpiresAt.IsZero() && !now.Before(req.ExpiresAt) {
		return nil, invalid("expiry %s is in the past", req.ExpiresAt.UTC().Format(time.RFC3339))
	}
	scope, err := validateScope(s, req.Scope)
	if err != nil {
		return nil, err
	}

	d := &Delegation{
		ID: req.ID, Delegator: req.Delegator, Delegate: req.Delegate, Scope: req.Scope,
		ExpiresAt: req.ExpiresAt, MaxDepth: req.MaxDepth, MaxFanout: req.MaxFanout, CreatedAt: now.UTC(),
	}
	if delegator.Type == schema.DelegationType {
		if err := applyParent(s, tx, d, delegator.ID, scope, now); err != nil {
			return nil, err
		}
	} else if d.MaxFanout == 0 {
		d.MaxFanout = DefaultMaxFanout
	}
	if err := checkHeld(s, snap, delegator, req.Scope, now); err != nil {
		return nil, err
	}

	data, err := encode(d)
	if err != nil {
		return nil, err
	}
	tx.PutRecord(RecordKind, d.ID, data)
	tx.Touch(&graph.Relationship{Key: graph.Key{
		ResourceType: schema.DelegationType, ResourceID: d.ID, Relation: "delegator", Subject: delegator,
	}})
	tx.Touch(&graph.Relationship{Key: graph.Key{
		ResourceType: schema.DelegationType, ResourceID: d.ID, Relation: "delegate",
		Subject: graph.SubjectRef{Type: schema.AgentType, ID: d.Delegate},
	}})
	return d, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "d-" + hex.EncodeToString(b[:])
}

func requireActiveAgent(snap graph.Snapshot, id, role string) error {
	a, err := identity.Get(snap, id)
	if errors.Is(err, identity.ErrNotFound) {
		return invalid("%s agent %q is not registered", role, id)
	}
	if err != nil {
		return err
	}
	if !a.CanHoldPermissions() {
		return fmt.Errorf("%w: %s agent %q is %s", ErrLimit, role, id, a.State)
	}
	return nil
}

// validateScope checks that every scope names a defined type and, for a
// single type, permissions defined on it.
func validateScope(s *schema.Schema, scopes []Scope) ([]engine.ScopeItem, error) {
	if len(scopes) == 0 {
		return nil, invalid("scope is empty: name at least one permission and resource")
	}
	items := make([]engine.ScopeItem, 0, len(scopes))
	for _, sc := range scopes {
		it, err := sc.engineScope()
		if err != nil {
			return nil, invalid("%v", err)
		}
		if len(sc.Permissions) == 0 {
			return nil, invalid("scope %q names no permission", sc.Resource)
		}
		typ := it.Resource.Type
		if it.Container.Type != "" {
			typ = it.Container.Type
		}
		def := s.Definition(typ)
		if def == nil {
			return nil, invalid("scope %q: object definition %q not found", sc.Resource, typ)
		}
		if it.Container.Type == "" {
			for _, p := range sc.Permissions {
				if def.Relations[p] == nil {
					return nil, invalid("scope %q: permission %q not found on definition %q", sc.Resource, p, typ)
				}
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// applyParent enforces the limits a parent delegation passes down and
// records the child on it.
func applyParent(s *schema.Schema, tx *graph.Tx, d *Delegation, parentID string, scope []engine.ScopeItem, now time.Time) error {
	snap := tx.Snapshot()
	data := tx.GetRecord(RecordKind, parentID)
	if data == nil {
		return invalid("parent delegation %q does not exist", parentID)
	}
	parent, err := decode(data)
	if err != nil {
		return err
	}
	if !parent.Live(now) {
		return fmt.Errorf("%w: parent delegation %q is revoked or expired", ErrLimit, parentID)
	}
	if parent.MaxDepth < 1 {
		return fmt.Errorf("%w: delegation %q does not allow re-delegation (max depth 0)", ErrLimit, parentID)
	}
	if d.MaxDepth > parent.MaxDepth-1 {
		return fmt.Errorf("%w: max depth %d exceeds the %d left under delegation %q", ErrLimit, d.MaxDepth, parent.MaxDepth-1, parentID)
	}
	if d.MaxFanout == 0 || d.MaxFanout > parent.MaxFanout {
		if d.MaxFanout > parent.MaxFanout {
			return fmt.Errorf("%w: max fan-out %d exceeds the parent's %d", ErrLimit, d.MaxFanout, parent.MaxFanout)
		}
		d.MaxFanout = parent.MaxFanout
	}
	live := 0
	for _, child := range parent.Children {
		if c, err := Get(snap, child); err == nil && c.Live(now) {
			live++
		}
	}
	if live >= parent.MaxFanout {
		return fmt.Errorf("%w: delegation %q already has %d live children, its maximum fan-out", ErrLimit, parentID, live)
	}
	if !parent.ExpiresAt.IsZero() {
		if d.ExpiresAt.IsZero() {
			d.ExpiresAt = parent.ExpiresAt
		} else if d.ExpiresAt.After(parent.ExpiresAt) {
			return fmt.Errorf("%w: expiry %s is after the parent's %s", ErrLimit,
				d.ExpiresAt.UTC().Format(time.RFC3339), parent.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	chain, err := Resolve(snap, parentID, now)
	if err != nil {
		return err
	}
	if chain.Invalid != "" {
		return fmt.Errorf("%w: %s", ErrLimit, chain.Invalid)
	}
	// A suspended principal grants nothing, so its chain cannot be handed
	// on: without this, a suspended delegate could still add children
	// with type-wide or container scopes, which checkHeld does not check.
	for _, p := range chain.Principals {
		if p.Type != schema.AgentType {
			continue
		}
		if a, err := identity.Get(snap, p.ID); err == nil && !a.CanHoldPermissions() {
			return fmt.Errorf("%w: agent %q in the chain of delegation %q is %s", ErrLimit, p.ID, parentID, a.State)
		}
	}
	for _, p := range chain.Principals {
		if p.Type == schema.AgentType && p.ID == d.Delegate {
			return invalid("agent %q is already in the chain of delegation %q; delegating to it would form a cycle", d.Delegate, parentID)
		}
	}
	parentLink := chain.Links[0]
	for i, it := range scope {
		if it.Resource.ID == "" {
			continue
		}
		for _, p := range it.Permissions {
			if !engine.LinkCovers(s, snap, parentLink, it.Resource, p) {
				return invalid("scope %s on %q is outside the scope of delegation %q", p, d.Scope[i].Resource, parentID)
			}
		}
	}
	parent.Children = append(parent.Children, d.ID)
	updated, err := encode(parent)
	if err != nil {
		return err
	}
	tx.PutRecord(RecordKind, parent.ID, updated)
	return nil
}

// checkHeld fails unless the delegator has every permission that the scope
// names on a single resource. Type-wide and container scopes are not
// checked here: every check through the delegation intersects with the
// delegator's own access anyway.
func checkHeld(s *schema.Schema, snap graph.Snapshot, delegator graph.SubjectRef, scopes []Scope, now time.Time) error {
	policy := Extend(identity.Policy(s, snap, now), s, snap, now)
	for _, sc := range scopes {
		it, _ := sc.engineScope()
		if it.Resource.ID == "" {
			continue
		}
		for _, p := range sc.Permissions {
			res, err := engine.Check(s, snap, engine.Limits{}, engine.CheckRequest{
				Resource: it.Resource, Permission: p, Subject: delegator, Policy: policy,
			})
			if err != nil {
				return err
			}
			if res.Membership != engine.HasPermission {
				return fmt.Errorf("%w: %s does not hold %s on %s", ErrNotHeld, delegator, p, sc.Resource)
			}
		}
	}
	return nil
}
