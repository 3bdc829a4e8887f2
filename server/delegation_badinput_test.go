package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

// startBadInputChain starts the chain with c1 expiring in an hour, and adds
// what the bad-input cases need:
//
//	wide:   agent:planner  -> researcher  read@dataset:*        max depth 1
//	fan:    agent:planner  -> researcher  read@dataset:revenue  max depth 1, max fan-out 1
//	fan1:   delegation:fan -> summarizer  read@dataset:revenue  (fan's only child)
//	old:    agent:planner  -> writer      read@dataset:revenue  (revoked)
//	lapsed: agent:planner  -> idle        read@folder:q3/...    max depth 1
//
// and two more agents: spare (active) and idle (suspended after lapsed was
// created).
func startBadInputChain(t *testing.T) *delegationServer {
	t.Helper()
	ds := startChain(t, map[string]time.Duration{"c1": time.Hour})
	ds.addAgent(t, "spare")
	ds.addAgent(t, "idle")
	delegate(t, ds.adminDelegations, &mandatev1.DelegateRequest{
		Id: "lapsed", Delegator: "agent:planner", Delegate: "idle", MaxDepth: 1,
		Scope: []*mandatev1.Scope{scope("folder:q3/...", "read")},
	})
	if _, err := ds.agents.SuspendAgent(testContext(t), &mandatev1.SuspendAgentRequest{Id: "idle", Reason: "unused"}); err != nil {
		t.Fatalf("SuspendAgent idle: %v", err)
	}
	revenue := []*mandatev1.Scope{scope("dataset:revenue", "read")}
	for _, req := range []*mandatev1.DelegateRequest{
		{Id: "wide", Delegator: "agent:planner", Delegate: "researcher", MaxDepth: 1, Scope: []*mandatev1.Scope{scope("dataset:*", "read")}},
		{Id: "fan", Delegator: "agent:planner", Delegate: "researcher", MaxDepth: 1, MaxFanout: 1, Scope: revenue},
		{Id: "fan1", Delegator: "delegation:fan", Delegate: "summarizer", Scope: revenue},
		{Id: "old", Delegator: "agent:planner", Delegate: "writer", Scope: revenue},
	} {
		delegate(t, ds.adminDelegations, req)
	}
	if _, err := ds.adminDelegations.Revoke(testContext(t), &mandatev1.RevokeRequest{Id: "old"}); err != nil {
		t.Fatalf("Revoke old: %v", err)
	}
	return ds
}

// callers returns the clients of caller: an agent id, or "" for the
// administrator.
func (ds *delegationServer) callers(caller string) agentAPI {
	if caller == "" {
		return agentAPI{v1: ds.admin, delegations: ds.adminDelegations}
	}
	return ds.as[caller]
}

// allDelegations returns every delegation record, revoked ones included.
func (ds *delegationServer) allDelegations(t *testing.T) []*mandatev1.Delegation {
	t.Helper()
	resp, err := ds.adminDelegations.ListDelegations(testContext(t), &mandatev1.ListDelegationsRequest{IncludeRevoked: true})
	if err != nil {
		t.Fatalf("ListDelegations: %v", err)
	}
	return resp.GetDelegations()
}

// delegationBadInput is one request that must fail with code, with a
// message that contains every fragment.
type delegationBadInput struct {
	name string
	// caller is the agent that sends the request, or "" for the
	// administrator.
	caller    string
	call      func(ctx context.Context, t *testing.T, clients agentAPI) error
	code      codes.Code
	fragments []string
}

// delegating returns a call that sends req to Delegate.
func delegating(req *mandatev1.DelegateRequest) func(context.Context, *testing.T, agentAPI) error {
	return func(ctx context.Context, _ *testing.T, clients agentAPI) error {
		_, err := clients.delegations.Delegate(ctx, req)
		return err
	}
}

func delegationBadInputs(ds *delegationServer) []delegationBadInput {
	revenue := []*mandatev1.Scope{scope("dataset:revenue", "read")}
	withScope := func(resource string, permissions ...string) *mandatev1.DelegateRequest {
		return &mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "researcher",
			Scope: []*mandatev1.Scope{scope(resource, permissions...)},
		}
	}
	return []delegationBadInput{
		// Unknown agents and delegations.
		{"unknown delegate", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "ghost", Scope: revenue,
		}), codes.InvalidArgument, []string{`"ghost"`, "not registered"}},
		{"unknown delegator agent", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:ghost", Delegate: "writer", Scope: revenue,
		}), codes.InvalidArgument, []string{`"ghost"`, "not registered"}},
		{"unknown parent delegation", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:nope", Delegate: "writer", Scope: revenue,
		}), codes.InvalidArgument, []string{`"nope"`, "does not exist"}},
		{"unknown parent as agent", "writer", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:nope", Delegate: "spare", Scope: revenue,
		}), codes.PermissionDenied, []string{`"delegation:nope"`}},
		{"revoke unknown delegation", "", func(ctx context.Context, _ *testing.T, clients agentAPI) error {
			_, err := clients.delegations.Revoke(ctx, &mandatev1.RevokeRequest{Id: "nope"})
			return err
		}, codes.NotFound, []string{`"nope"`}},
		{"get unknown delegation", "", func(ctx context.Context, _ *testing.T, clients agentAPI) error {
			_, err := clients.delegations.GetDelegation(ctx, &mandatev1.GetDelegationRequest{Id: "nope"})
			return err
		}, codes.NotFound, []string{`"nope"`}},

		// Scope the delegator does not hold.
		{"scope not held by agent", "planner", delegating(withScope("dataset:forecast", "write")),
			codes.PermissionDenied, []string{"agent:planner", "write", "dataset:forecast"}},
		{"scope not held through chain", "researcher", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:wide", Delegate: "spare", Scope: []*mandatev1.Scope{scope("dataset:payroll", "read")},
		}), codes.PermissionDenied, []string{"delegation:wide", "read", "dataset:payroll"}},
		{"scope outside parent's", "researcher", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c1", Delegate: "spare", Scope: []*mandatev1.Scope{scope("dataset:revenue", "write")},
		}), codes.InvalidArgument, []string{"write", `"dataset:revenue"`, `"c1"`, "outside the scope"}},

		// Limits inherited from the parent.
		{"expiry past the parent's", "researcher", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c1", Delegate: "spare", Scope: revenue, ExpiresAt: ds.after(2 * time.Hour),
		}), codes.FailedPrecondition, []string{ds.start.Add(2 * time.Hour).Format(time.RFC3339), "after the parent's"}},
		{"depth exhausted", "writer", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c3", Delegate: "spare", Scope: revenue,
		}), codes.FailedPrecondition, []string{`"c3"`, "max depth 0"}},
		{"depth over the remaining", "researcher", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c1", Delegate: "spare", Scope: revenue, MaxDepth: 2,
		}), codes.FailedPrecondition, []string{"max depth 2", "1 left", `"c1"`}},
		{"fan-out exhausted", "researcher", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:fan", Delegate: "writer", Scope: revenue,
		}), codes.FailedPrecondition, []string{`"fan"`, "1 live children", "fan-out"}},
		{"fan-out over the parent's", "researcher", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c1", Delegate: "spare", Scope: revenue, MaxFanout: 99,
		}), codes.FailedPrecondition, []string{"max fan-out 99", "16"}},
		{"revoked parent", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:old", Delegate: "spare", Scope: revenue,
		}), codes.FailedPrecondition, []string{`"old"`, "revoked"}},
		{"suspended delegate", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "idle", Scope: revenue,
		}), codes.FailedPrecondition, []string{`"idle"`, "suspended"}},
		{"suspended delegator", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:idle", Delegate: "spare", Scope: revenue,
		}), codes.FailedPrecondition, []string{`"idle"`, "suspended"}},
		{"suspended agent in the parent chain", "idle", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:lapsed", Delegate: "spare", Scope: []*mandatev1.Scope{scope("folder:q3/...", "read")},
		}), codes.FailedPrecondition, []string{`"idle"`, `"lapsed"`, "suspended"}},

		// Delegation to oneself and cycles.
		{"delegation to itself", "planner", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "planner", Scope: revenue,
		}), codes.InvalidArgument, []string{`"planner"`, "itself"}},
		{"cycle to the root", "summarizer", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c2", Delegate: "planner", Scope: revenue,
		}), codes.InvalidArgument, []string{`"planner"`, `"c2"`, "cycle"}},
		{"cycle to a middle agent", "summarizer", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c2", Delegate: "researcher", Scope: revenue,
		}), codes.InvalidArgument, []string{`"researcher"`, "cycle"}},
		{"cycle to the holder", "summarizer", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c2", Delegate: "summarizer", Scope: revenue,
		}), codes.InvalidArgument, []string{`"summarizer"`, "cycle"}},

		// Invalid scopes and values.
		{"scope without type", "", delegating(withScope("revenue", "read")),
			codes.InvalidArgument, []string{`"revenue"`}},
		{"scope without id", "", delegating(withScope("dataset:", "read")),
			codes.InvalidArgument, []string{`"dataset:"`}},
		{"scope of wildcard container", "", delegating(withScope("folder:*/...", "read")),
			codes.InvalidArgument, []string{`"folder:*/..."`, "container"}},
		{"scope of unknown type", "", delegating(withScope("widget:x", "read")),
			codes.InvalidArgument, []string{`"widget"`}},
		{"scope of unknown permission", "", delegating(withScope("dataset:revenue", "fly")),
			codes.InvalidArgument, []string{`"fly"`, `"dataset"`}},
		{"scope without permissions", "", delegating(withScope("dataset:revenue")),
			codes.InvalidArgument, []string{`"dataset:revenue"`, "no permission"}},
		{"empty scope", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "researcher",
		}), codes.InvalidArgument, []string{"scope is empty"}},
		{"delegator of another type", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "department:finance", Delegate: "researcher", Scope: revenue,
		}), codes.InvalidArgument, []string{`"department:finance"`}},
		{"delegator without id", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "planner", Delegate: "researcher", Scope: revenue,
		}), codes.InvalidArgument, []string{`"planner"`}},
		{"invalid id", "", delegating(&mandatev1.DelegateRequest{
			Id: "bad id", Delegator: "agent:planner", Delegate: "researcher", Scope: revenue,
		}), codes.InvalidArgument, []string{`"bad id"`}},
		{"taken id", "", delegating(&mandatev1.DelegateRequest{
			Id: "c1", Delegator: "agent:planner", Delegate: "researcher", Scope: revenue,
		}), codes.AlreadyExists, []string{`"c1"`, "already exists"}},
		{"id of a revoked delegation", "", delegating(&mandatev1.DelegateRequest{
			Id: "old", Delegator: "agent:planner", Delegate: "writer", Scope: revenue,
		}), codes.AlreadyExists, []string{`"old"`, "already exists"}},
		{"negative max depth", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "researcher", Scope: revenue, MaxDepth: -1,
		}), codes.InvalidArgument, []string{"max depth -1"}},
		{"negative max fan-out", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "researcher", Scope: revenue, MaxFanout: -2,
		}), codes.InvalidArgument, []string{"max fan-out -2"}},
		{"expiry in the past", "", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "researcher", Scope: revenue, ExpiresAt: ds.after(-time.Minute),
		}), codes.InvalidArgument, []string{ds.start.Add(-time.Minute).Format(time.RFC3339), "in the past"}},

		// Agents acting for someone else.
		{"agent on another agent's behalf", "writer", delegating(&mandatev1.DelegateRequest{
			Delegator: "agent:planner", Delegate: "spare", Scope: revenue,
		}), codes.PermissionDenied, []string{"agent:writer", `"agent:planner"`}},
		{"agent from a delegation it does not hold", "researcher", delegating(&mandatev1.DelegateRequest{
			Delegator: "delegation:c2", Delegate: "spare", Scope: revenue,
		}), codes.PermissionDenied, []string{"agent:researcher", `"delegation:c2"`}},
		{"agent on a user's behalf", "planner", delegating(&mandatev1.DelegateRequest{
			Delegator: "user:alice", Delegate: "spare", Scope: revenue,
		}), codes.PermissionDenied, []string{"agent:planner", `"user:alice"`}},
		{"agent revokes outside its chains", "spare", func(ctx context.Context, _ *testing.T, clients agentAPI) error {
			_, err := clients.delegations.Revoke(ctx, &mandatev1.RevokeRequest{Id: "c1"})
			return err
		}, codes.PermissionDenied, []string{"agent:spare", `"c1"`}},
		{"agent checks through a delegation it does not hold", "researcher", func(ctx context.Context, t *testing.T, clients agentAPI) error {
			_, err := clients.v1.CheckPermission(ctx, &v1.CheckPermissionRequest{
				Consistency: fullyConsistent(),
				Resource:    objectRefOfString(t, "dataset:revenue"),
				Permission:  "read",
				Subject:     subjectRef(t, "delegation:c3"),
			})
			return err
		}, codes.PermissionDenied, []string{`"researcher"`, "delegation:c3"}},
		{"agent explains a delegation it does not hold", "spare", func(ctx context.Context, _ *testing.T, clients agentAPI) error {
			_, err := clients.delegations.ExplainCheck(ctx, &mandatev1.ExplainCheckRequest{
				Delegation: "c1", Resource: "dataset:revenue", Permission: "read",
			})
			return err
		}, codes.PermissionDenied, []string{`"spare"`, "delegation:c1"}},
		{"explain with invalid resource", "", func(ctx context.Context, _ *testing.T, clients agentAPI) error {
			_, err := clients.delegations.ExplainCheck(ctx, &mandatev1.ExplainCheckRequest{
				Delegation: "c1", Resource: "revenue", Permission: "read",
			})
			return err
		}, codes.InvalidArgument, []string{`"revenue"`}},
		{"explain with unknown permission", "", func(ctx context.Context, _ *testing.T, clients agentAPI) error {
			_, err := clients.delegations.ExplainCheck(ctx, &mandatev1.ExplainCheckRequest{
				Delegation: "c1", Resource: "dataset:revenue", Permission: "fly",
			})
			return err
		}, codes.FailedPrecondition, []string{`"fly"`, `"dataset"`}},
	}
}

func TestDelegationBadInput(t *testing.T) {
	ds := startBadInputChain(t)
	for _, c := range delegationBadInputs(ds) {
		t.Run(c.name, func(t *testing.T) {
			headBefore := ds.headToken(t)
			recordsBefore := ds.allDelegations(t)
			relationshipsBefore := ds.readEverything(t)

			err := c.call(testContext(t), t, ds.callers(c.caller))
			requireStatus(t, err, c.code, c.fragments...)

			if headAfter := ds.headToken(t); headAfter != headBefore {
				t.Errorf("the head revision moved: token %q before, %q after", headBefore, headAfter)
			}
			recordsAfter := ds.allDelegations(t)
			if !slices.EqualFunc(recordsBefore, recordsAfter, func(a, b *mandatev1.Delegation) bool { return proto.Equal(a, b) }) {
				t.Errorf("delegation records changed:\nbefore %v\nafter  %v", recordsBefore, recordsAfter)
			}
			if relationshipsAfter := ds.readEverything(t); !slices.Equal(relationshipsBefore, relationshipsAfter) {
				t.Errorf("relationships changed:\nbefore %v\nafter  %v", relationshipsBefore, relationshipsAfter)
			}
		})
	}
}

// An unknown delegation is not an error in a check: it grants nothing, and
// ExplainCheck names the reason.
func TestDelegationUnknownGrantsNothing(t *testing.T) {
	ds := startDelegationServer(t)
	requirePermissionAs(t, ds.admin, "dataset:revenue", "read", "delegation:nope", noPermission)
	explained := ds.explain(t, "nope", "dataset:revenue", "read")
	if explained.GetPermissionship() != "no_permission" {
		t.Errorf("ExplainCheck of unknown delegation: %q, want no_permission", explained.GetPermissionship())
	}
	if want := "delegation:nope does not exist"; explained.GetLimitedBy() != want {
		t.Errorf("ExplainCheck of unknown delegation: limited_by %q, want %q", explained.GetLimitedBy(), want)
	}
}
