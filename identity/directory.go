package identity

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// ErrNotFound is returned for an agent id with no identity record.
var ErrNotFound = errors.New("agent not found")

// Get returns the identity of agent id at the snapshot's revision.
func Get(snap graph.Snapshot, id string) (*Agent, error) {
	data := snap.Record(RecordKind, id)
	if data == nil {
		return nil, fmt.Errorf("agent %q: %w", id, ErrNotFound)
	}
	return decodeAgent(data)
}

// Filter selects agents in List; empty fields match every agent.
type Filter struct {
	Department string
	Owner      string
	State      State
}

// shared is Get for readers that do not modify the agent: it shares one
// decoding of each stored version of the record across requests.
func shared(snap graph.Snapshot, id string) (*Agent, error) {
	a, ok, err := graph.Decoded(snap, RecordKind, id, decodeAgent)
	if !ok {
		return nil, fmt.Errorf("agent %q: %w", id, ErrNotFound)
	}
	return a, err
}

// List returns the agents that pass f, sorted by id.
func List(snap graph.Snapshot, f Filter) ([]*Agent, error) {
	var out []*Agent
	var firstErr error
	snap.Records(RecordKind, func(id string, data []byte) {
		a, err := decodeAgent(data)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		if (f.Department == "" || a.Department == f.Department) && (f.Owner == "" || a.Owner == f.Owner) &&
			(f.State == "" || a.State == f.State) {
			out = append(out, a)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, firstErr
}

// Trusted caveat parameters that Mandate supplies on every check. A client
// may not set them: the server's values replace any the request or a
// stored relationship carries. For a subject that is not a registered
// agent, the agent_* parameters are empty strings.
const (
	ParamRequestTime      = "request_time"
	ParamOperationalState = "operational_state"
	ParamAgentID          = "agent_id"
	ParamAgentPurpose     = "agent_purpose"
	ParamAgentRiskLevel   = "agent_risk_level"
	ParamAgentDepartment  = "agent_department"
	ParamAgentRole        = "agent_role"
)

// Policy returns the engine policy for requests at snap: a subject that is
// a registered agent holds permissions only while it is active, and every
// caveat sees the request time, the operational state and, for an agent
// subject, the agent's attributes. It returns nil when the schema has no
// agent type, so such a schema behaves exactly as in SpiceDB.
//
// An agent that appears in relationships without an identity record is
// treated as an ordinary object and is allowed.
func Policy(s *schema.Schema, snap graph.Snapshot, now time.Time) *engine.Policy {
	if s == nil || !s.HasAgentTypes() {
		return nil
	}
	state := OperationalState(snap)
	requestTime := now.UTC().Format(time.RFC3339Nano)
	agents := &agentMemo{snap: snap, byID: map[string]agentLookup{}}
	return &engine.Policy{
		Allowed: func(subject graph.SubjectRef) bool {
			if subject.Type != schema.AgentType {
				return true
			}
			a, err := agents.get(subject.ID)
			if errors.Is(err, ErrNotFound) {
				return true
			}
			return err == nil && a.CanHoldPermissions()
		},
		TrustedContext: func(subject graph.SubjectRef) map[string]any {
			ctx := map[string]any{
				ParamRequestTime:      requestTime,
				ParamOperationalState: state,
				ParamAgentID:          "",
				ParamAgentPurpose:     "",
				ParamAgentRiskLevel:   "",
				ParamAgentDepartment:  "",
				ParamAgentRole:        "",
			}
			if subject.Type != schema.AgentType {
				return ctx
			}
			a, err := agents.get(subject.ID)
			if err != nil {
				return ctx
			}
			ctx[ParamAgentID] = a.ID
			ctx[ParamAgentPurpose] = a.Purpose
			ctx[ParamAgentRiskLevel] = a.RiskLevel
			ctx[ParamAgentDepartment] = a.Department
			ctx[ParamAgentRole] = a.Role
			return ctx
		},
	}
}

// agentMemo decodes each agent record at most once per policy, because a
// check through a delegation asks about every principal several times.
type agentMemo struct {
	snap graph.Snapshot
	mu   sync.Mutex
	byID map[string]agentLookup
}

type agentLookup struct {
	agent *Agent
	err   error
}

func (m *agentMemo) get(id string) (*Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.byID[id]; ok {
		return l.agent, l.err
	}
	a, err := shared(m.snap, id)
	m.byID[id] = agentLookup{agent: a, err: err}
	return a, err
}
