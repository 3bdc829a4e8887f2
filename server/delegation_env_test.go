package server_test

import (
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/identity"
)

// The delegation tests run the real server with the default schema and four
// finance agents owned by alice. Each agent calls with its own Ed25519 key
// through identity.TokenCredentials, which signs tokens at the real time
// that live for one minute. So the fake clock starts at the real time, and
// a test moves it forward by seconds only: the server rejects a token that
// expired more than 30 seconds ago by its own clock.

// delegationAgents are the fixture's agents, in chain order.
var delegationAgents = []string{"planner", "researcher", "summarizer", "writer"}

// delegationRelationships give the finance department read on folder q3
// (with datasets revenue and forecast), and planner alone read on folder hr
// (with dataset payroll) and write on revenue.
var delegationRelationships = []string{
	"folder:q3#reader@department:finance#member",
	"dataset:revenue#folder@folder:q3",
	"dataset:forecast#folder@folder:q3",
	"folder:hr#reader@agent:planner",
	"dataset:payroll#folder@folder:hr",
	"dataset:revenue#writer@agent:planner",
}

// agentAPI is the clients of one agent, each call signed with its own key.
type agentAPI struct {
	v1          *authzed.Client
	delegations mandatev1.DelegationServiceClient
}

// delegationServer is a running server with the fixture's agents and
// relationships, and clients for the administrator and for every agent.
type delegationServer struct {
	*agentServer
	start time.Time
	// adminDelegations calls DelegationService with the preshared key.
	adminDelegations mandatev1.DelegationServiceClient
	as               map[string]agentAPI
}

func startDelegationServer(t *testing.T) *delegationServer {
	t.Helper()
	start := time.Now().UTC().Truncate(time.Second)
	ds := &delegationServer{agentServer: startAgentServer(t, start), start: start, as: map[string]agentAPI{}}
	ds.adminDelegations = mandatev1.NewDelegationServiceClient(
		dialConn(t, ds.addr, grpcutil.WithInsecureBearerToken(agentTestPresharedKey)))
	for _, id := range delegationAgents {
		ds.addAgent(t, id)
	}
	ds.touch(t, delegationRelationships...)
	return ds
}

// addAgent registers a finance agent owned by alice, with clients that
// sign each call with its key.
func (ds *delegationServer) addAgent(t *testing.T, id string) {
	t.Helper()
	a := ds.createAgent(t, &mandatev1.CreateAgentRequest{Id: id, Owner: "alice", Department: "finance"})
	creds := grpc.WithPerRPCCredentials(identity.TokenCredentials{AgentID: a.id, Key: a.key, Insecure: true})
	ds.as[id] = agentAPI{
		v1:          dialClient(t, ds.addr, creds),
		delegations: mandatev1.NewDelegationServiceClient(dialConn(t, ds.addr, creds)),
	}
}

// after returns the fixture's start time plus d, as a proto timestamp.
func (ds *delegationServer) after(d time.Duration) *timestamppb.Timestamp {
	return timestamppb.New(ds.start.Add(d))
}

// delegate creates a delegation through client and fails the test on error.
func delegate(t *testing.T, client mandatev1.DelegationServiceClient, req *mandatev1.DelegateRequest) *mandatev1.DelegationResponse {
	t.Helper()
	resp, err := client.Delegate(testContext(t), req)
	if err != nil {
		t.Fatalf("Delegate %s from %s to %s: %v", req.GetId(), req.GetDelegator(), req.GetDelegate(), err)
	}
	return resp
}

// scope builds one scope item.
func scope(resource string, permissions ...string) *mandatev1.Scope {
	return &mandatev1.Scope{Permissions: permissions, Resource: resource}
}

// startChain creates the three-hop chain that most delegation tests use,
// each link by the agent that holds its delegator, and returns the server:
//
//	c1: agent:planner    -> researcher  read@folder:q3/...                  max depth 2
//	c2: delegation:c1    -> summarizer  read@dataset:revenue, read@dataset:forecast  max depth 1
//	c3: delegation:c2    -> writer      read@dataset:revenue                max depth 0
//
// expires, when not nil, gives the expiry of c1 and c2 as offsets from the
// start; c3 inherits c2's.
func startChain(t *testing.T, expires map[string]time.Duration) *delegationServer {
	t.Helper()
	ds := startDelegationServer(t)
	requests := []struct {
		caller string
		req    *mandatev1.DelegateRequest
	}{
		{"planner", &mandatev1.DelegateRequest{
			Id: "c1", Delegator: "agent:planner", Delegate: "researcher", MaxDepth: 2,
			Scope: []*mandatev1.Scope{scope("folder:q3/...", "read")},
		}},
		{"researcher", &mandatev1.DelegateRequest{
			Id: "c2", Delegator: "delegation:c1", Delegate: "summarizer", MaxDepth: 1,
			Scope: []*mandatev1.Scope{scope("dataset:revenue", "read"), scope("dataset:forecast", "read")},
		}},
		{"summarizer", &mandatev1.DelegateRequest{
			Id: "c3", Delegator: "delegation:c2", Delegate: "writer",
			Scope: []*mandatev1.Scope{scope("dataset:revenue", "read")},
		}},
	}
	for _, r := range requests {
		if d, ok := expires[r.req.Id]; ok {
			r.req.ExpiresAt = ds.after(d)
		}
		delegate(t, ds.as[r.caller].delegations, r.req)
	}
	return ds
}

// chainDelegates maps each delegation of the chain to its delegate.
var chainDelegates = map[string]string{"c1": "researcher", "c2": "summarizer", "c3": "writer"}

// requireThrough fails the test unless a check of resource#permission with
// delegation:id as the subject returns want, asked both by the
// administrator and by the delegation's delegate with its own token.
func (ds *delegationServer) requireThrough(t *testing.T, id, resource, permission string, want v1.CheckPermissionResponse_Permissionship) {
	t.Helper()
	subject := "delegation:" + id
	got, err := checkAs(t, ds.admin, resource, permission, subject, nil)
	if err != nil {
		t.Errorf("check %s %s %s as admin: %v", resource, permission, subject, err)
	} else if got != want {
		t.Errorf("check %s %s %s as admin: got %s, want %s", resource, permission, subject, got, want)
	}
	delegateID := chainDelegates[id]
	got, err = checkAs(t, ds.as[delegateID].v1, resource, permission, subject, nil)
	if err != nil {
		t.Errorf("check %s %s %s as agent:%s: %v", resource, permission, subject, delegateID, err)
	} else if got != want {
		t.Errorf("check %s %s %s as agent:%s: got %s, want %s", resource, permission, subject, delegateID, got, want)
	}
}

// requireChain checks dataset:revenue read through c1, c2 and c3, which the
// whole chain grants, and fails unless each returns the permissionship
// listed for it.
func (ds *delegationServer) requireChain(t *testing.T, want map[string]v1.CheckPermissionResponse_Permissionship) {
	t.Helper()
	for _, id := range []string{"c1", "c2", "c3"} {
		ds.requireThrough(t, id, "dataset:revenue", "read", want[id])
	}
}

// allChain maps every delegation of the chain to p.
func allChain(p v1.CheckPermissionResponse_Permissionship) map[string]v1.CheckPermissionResponse_Permissionship {
	return map[string]v1.CheckPermissionResponse_Permissionship{"c1": p, "c2": p, "c3": p}
}

// explain calls ExplainCheck as the administrator and fails the test on
// error.
func (ds *delegationServer) explain(t *testing.T, id, resource, permission string) *mandatev1.ExplainCheckResponse {
	t.Helper()
	resp, err := ds.adminDelegations.ExplainCheck(testContext(t), &mandatev1.ExplainCheckRequest{
		Delegation: id, Resource: resource, Permission: permission,
	})
	if err != nil {
		t.Fatalf("ExplainCheck %s %s %s: %v", id, resource, permission, err)
	}
	return resp
}

// atLeastAsFreshAs returns a consistency that reads at or after the revision
// of a written_at token from one of Mandate's services.
func atLeastAsFreshAs(token string) *v1.Consistency {
	return &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: &v1.ZedToken{Token: token}}}
}
