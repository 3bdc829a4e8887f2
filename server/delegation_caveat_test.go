package server_test

import (
	"testing"
	"time"

	"github.com/authzed/grpcutil"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

// A caveat on a principal's grant is evaluated with that principal's own
// attributes: production writes under business_hours_low_risk pass
// through a delegation only while the caveat holds for every principal.
func TestDelegationCaveatPerPrincipal(t *testing.T) {
	as := startAgentServer(t, wednesdayMorning)
	delegations := mandatev1.NewDelegationServiceClient(
		dialConn(t, as.addr, grpcutil.WithInsecureBearerToken(agentTestPresharedKey)))
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "planner", Owner: "alice"})
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "careful", Owner: "alice"})
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "risky", Owner: "alice", RiskLevel: "high"})
	as.touch(t,
		"system:prod#production_writer@agent:planner[business_hours_low_risk]",
		"system:prod#production_writer@agent:careful[business_hours_low_risk]",
		"system:prod#production_writer@agent:risky[business_hours_low_risk]",
	)
	for _, id := range []string{"careful", "risky"} {
		delegate(t, delegations, &mandatev1.DelegateRequest{
			Id: "prod-" + id, Delegator: "agent:planner", Delegate: id,
			Scope: []*mandatev1.Scope{scope("system:prod", "write")},
		})
	}

	requirePermissionAs(t, as.admin, "system:prod", "write", "delegation:prod-careful", hasPermission)
	// risky's own grant fails the caveat, because its risk level is high.
	requirePermissionAs(t, as.admin, "system:prod", "write", "agent:risky", noPermission)
	requirePermissionAs(t, as.admin, "system:prod", "write", "delegation:prod-risky", noPermission)

	// At 20:00 the caveat fails for planner too.
	as.clock.Set(wednesdayMorning.Add(10 * time.Hour))
	requirePermissionAs(t, as.admin, "system:prod", "write", "delegation:prod-careful", noPermission)
}
