package server_test

import (
	"slices"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc/codes"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

// lifecycleChecks are the checks of agent:bot in the lifecycle fixture,
// with the results while bot is active. Each reaches bot another
// way: through its department, directly, through its role and a folder,
// and through a caveat that holds on the fixture's clock.
var lifecycleChecks = []struct {
	resource, permission string
	active               v1.CheckPermissionResponse_Permissionship
}{
	{"dataset:payroll", "read", hasPermission},
	{"dataset:logs", "read", hasPermission},
	{"dataset:q3", "read", hasPermission},
	{"tool:mailer", "invoke", hasPermission},
	{"system:prod", "write", hasPermission},
	{"dataset:payroll", "write", noPermission},
	{"dataset:hr", "read", noPermission},
}

// startLifecycleFixture starts a server with two finance agents, bot and
// peer, and relationships that reach bot through each kind of path.
func startLifecycleFixture(t *testing.T) (*agentServer, *testAgent) {
	t.Helper()
	as := startAgentServer(t, wednesdayMorning)
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{
		Id: "bot", Owner: "alice", Department: "finance", Role: "analyst", Purpose: "monthly report",
	})
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "peer", Owner: "alice", Department: "finance"})
	as.touch(t,
		"dataset:payroll#reader@department:finance#member",
		"dataset:logs#reader@agent:bot",
		"folder:reports#reader@role:analyst#assignee",
		"dataset:q3#folder@folder:reports",
		"tool:mailer#invoker@agent:bot",
		"system:prod#production_writer@agent:bot[business_hours_low_risk]",
		"dataset:hr#reader@user:alice",
	)
	return as, bot
}

// requireLifecycleChecks sends every lifecycle check about agent:bot
// through client, one call each and in one bulk call, and fails unless
// each result is want(result while active).
func requireLifecycleChecks(t *testing.T, client *authzed.Client, want func(active v1.CheckPermissionResponse_Permissionship) v1.CheckPermissionResponse_Permissionship) {
	t.Helper()
	bulk := &v1.CheckBulkPermissionsRequest{Consistency: fullyConsistent()}
	for _, c := range lifecycleChecks {
		requirePermissionAs(t, client, c.resource, c.permission, "agent:bot", want(c.active))
		bulk.Items = append(bulk.Items, &v1.CheckBulkPermissionsRequestItem{
			Resource: objectRefOfString(t, c.resource), Permission: c.permission, Subject: subjectRef(t, "agent:bot"),
		})
	}
	resp, err := client.CheckBulkPermissions(testContext(t), bulk)
	if err != nil {
		t.Fatalf("CheckBulkPermissions: %v", err)
	}
	for i, pair := range resp.GetPairs() {
		c := lifecycleChecks[i]
		if pair.GetError() != nil {
			t.Errorf("bulk %s %s agent:bot: error %v", c.resource, c.permission, pair.GetError())
			continue
		}
		if got := pair.GetItem().GetPermissionship(); got != want(c.active) {
			t.Errorf("bulk %s %s agent:bot: got %s, want %s", c.resource, c.permission, got, want(c.active))
		}
	}
}

func asActive(p v1.CheckPermissionResponse_Permissionship) v1.CheckPermissionResponse_Permissionship {
	return p
}

func denied(v1.CheckPermissionResponse_Permissionship) v1.CheckPermissionResponse_Permissionship {
	return noPermission
}

// requireLookups fails unless the lookups of datasets bot reads, and of the
// agents that read payroll and invoke the mailer, return the given ids.
func requireLookups(t *testing.T, as *agentServer, bot agentClients, botDatasets, payrollReaders, mailerInvokers []string) {
	t.Helper()
	got, err := lookupResourcesAs(t, bot.v1, "dataset", "read", "agent:bot")
	if err != nil {
		t.Fatalf("LookupResources as agent:bot: %v", err)
	}
	if !slices.Equal(got, botDatasets) {
		t.Errorf("LookupResources dataset read agent:bot: got %q, want %q", got, botDatasets)
	}
	for _, q := range []struct {
		resource, permission string
		want                 []string
	}{
		{"dataset:payroll", "read", payrollReaders},
		{"tool:mailer", "invoke", mailerInvokers},
	} {
		got, err := lookupSubjectsAs(t, as.admin, q.resource, q.permission, "agent")
		if err != nil {
			t.Fatalf("LookupSubjects %s %s agent: %v", q.resource, q.permission, err)
		}
		if !slices.Equal(got, q.want) {
			t.Errorf("LookupSubjects %s %s agent: got %q, want %q", q.resource, q.permission, got, q.want)
		}
	}
}

func TestAgentOwnChecksAndLookups(t *testing.T) {
	t.Parallel()
	as, botAgent := startLifecycleFixture(t)
	bot := as.connectAs(t, botAgent)
	requireLifecycleChecks(t, bot.v1, asActive)
	requireLifecycleChecks(t, as.admin, asActive)
	requireLookups(t, as, bot, []string{"logs", "payroll", "q3"}, []string{"bot", "peer"}, []string{"bot"})
}

func TestAgentSuspendAndReactivate(t *testing.T) {
	t.Parallel()
	as, botAgent := startLifecycleFixture(t)
	bot := as.connectAs(t, botAgent)
	ctx := testContext(t)
	requireLifecycleChecks(t, bot.v1, asActive)

	resp, err := as.agents.SuspendAgent(ctx, &mandatev1.SuspendAgentRequest{Id: "bot", Reason: "unexpected exports"})
	if err != nil {
		t.Fatalf("SuspendAgent: %v", err)
	}
	if got, want := resp.GetAgent().GetState(), mandatev1.AgentState_AGENT_STATE_SUSPENDED; got != want {
		t.Errorf("SuspendAgent returned state %s, want %s", got, want)
	}

	// The suspended agent still authenticates, and from the next call on
	// every check about it is denied, to itself and to the admin.
	requireLifecycleChecks(t, bot.v1, denied)
	requireLifecycleChecks(t, as.admin, denied)
	requireLookups(t, as, bot, []string{}, []string{"peer"}, []string{})
	got, err := bot.agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: "bot"})
	if err != nil {
		t.Fatalf("GetAgent as the suspended agent: %v", err)
	}
	if st, reason := got.GetAgent().GetState(), got.GetAgent().GetStateReason(); st != mandatev1.AgentState_AGENT_STATE_SUSPENDED || reason != "unexpected exports" {
		t.Errorf("GetAgent of the suspended agent: got state %s with reason %q, want SUSPENDED with \"unexpected exports\"", st, reason)
	}
	// The suspension drops the agent, not its department: the other
	// member still reads payroll.
	requirePermissionAs(t, as.admin, "dataset:payroll", "read", "agent:peer", hasPermission)

	if _, err := as.agents.ReactivateAgent(ctx, &mandatev1.ReactivateAgentRequest{Id: "bot"}); err != nil {
		t.Fatalf("ReactivateAgent: %v", err)
	}
	requireLifecycleChecks(t, bot.v1, asActive)
	requireLifecycleChecks(t, as.admin, asActive)
	requireLookups(t, as, bot, []string{"logs", "payroll", "q3"}, []string{"bot", "peer"}, []string{"bot"})
	got, err = bot.agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: "bot"})
	if err != nil {
		t.Fatalf("GetAgent after reactivation: %v", err)
	}
	if st, reason := got.GetAgent().GetState(), got.GetAgent().GetStateReason(); st != mandatev1.AgentState_AGENT_STATE_ACTIVE || reason != "" {
		t.Errorf("GetAgent after reactivation: got state %s with reason %q, want ACTIVE with no reason", st, reason)
	}
}

// A ZedToken from before the suspension must not bring back a right: a
// suspended agent is denied at every revision it can name.
func TestAgentSuspendedAtOldRevision(t *testing.T) {
	t.Parallel()
	as, botAgent := startLifecycleFixture(t)
	bot := as.connectAs(t, botAgent)
	ctx := testContext(t)
	old := as.touch(t, "dataset:archive#reader@agent:bot")
	if _, err := as.agents.SuspendAgent(ctx, &mandatev1.SuspendAgentRequest{Id: "bot"}); err != nil {
		t.Fatalf("SuspendAgent: %v", err)
	}
	for _, c := range []struct {
		name        string
		consistency *v1.Consistency
	}{
		{"at_exact_snapshot", &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: old}}},
		{"at_least_as_fresh", &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: old}}},
		{"minimize_latency", &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}},
	} {
		for name, client := range map[string]*authzed.Client{"agent:bot": bot.v1, "admin": as.admin} {
			resp, err := client.CheckPermission(ctx, &v1.CheckPermissionRequest{
				Consistency: c.consistency,
				Resource:    objectRef("dataset", "archive"),
				Permission:  "read",
				Subject:     subjectRef(t, "agent:bot"),
			})
			if err != nil {
				t.Errorf("%s check by %s: %v", c.name, name, err)
				continue
			}
			if got := resp.GetPermissionship(); got != noPermission {
				t.Errorf("%s check by %s of the suspended agent: got %s, want %s", c.name, name, got, noPermission)
			}
		}
	}
}

// isAboutBot reports whether a relationship has agent:bot as its resource
// or its subject.
func isAboutBot(r string) bool {
	return strings.HasPrefix(r, "agent:bot#") || strings.Contains(r, "@agent:bot")
}

func TestAgentDecommission(t *testing.T) {
	t.Parallel()
	as, botAgent := startLifecycleFixture(t)
	bot := as.connectAs(t, botAgent)
	ctx := testContext(t)

	var aboutBot []string
	for _, r := range as.readEverything(t) {
		if isAboutBot(r) {
			aboutBot = append(aboutBot, r)
		}
	}
	wantBefore := []string{
		"agent:bot#department@department:finance",
		"agent:bot#owner@user:alice",
		"agent:bot#role@role:analyst",
		"dataset:logs#reader@agent:bot",
		"department:finance#member@agent:bot",
		"role:analyst#assignee@agent:bot",
		"system:prod#production_writer@agent:bot[business_hours_low_risk]",
		"tool:mailer#invoker@agent:bot",
	}
	slices.Sort(aboutBot)
	if !slices.Equal(aboutBot, wantBefore) {
		t.Fatalf("relationships of agent:bot before decommissioning: got %q, want %q", aboutBot, wantBefore)
	}

	resp, err := as.agents.DecommissionAgent(ctx, &mandatev1.DecommissionAgentRequest{Id: "bot"})
	if err != nil {
		t.Fatalf("DecommissionAgent: %v", err)
	}
	if got, want := resp.GetAgent().GetState(), mandatev1.AgentState_AGENT_STATE_DECOMMISSIONED; got != want {
		t.Errorf("DecommissionAgent returned state %s, want %s", got, want)
	}

	// No relationship has the agent as resource or subject.
	for _, r := range as.readEverything(t) {
		if isAboutBot(r) {
			t.Errorf("relationship %s survived decommissioning", r)
		}
	}
	for _, typ := range agentIAMResourceTypes {
		got := as.readAll(t, &v1.RelationshipFilter{
			ResourceType:          typ,
			OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "agent", OptionalSubjectId: "bot"},
		})
		if len(got) != 0 {
			t.Errorf("ReadRelationships of %s with subject agent:bot: got %q, want none", typ, got)
		}
	}
	if got := as.readAll(t, &v1.RelationshipFilter{ResourceType: "agent", OptionalResourceId: "bot"}); len(got) != 0 {
		t.Errorf("ReadRelationships of resource agent:bot: got %q, want none", got)
	}
	// The other agent of the department keeps its relationships and rights.
	requirePermissionAs(t, as.admin, "dataset:payroll", "read", "agent:peer", hasPermission)

	// The key is refused on every service.
	_, err = checkAs(t, bot.v1, "dataset:payroll", "read", "agent:bot", nil)
	requireStatus(t, err, codes.Unauthenticated, `agent "bot" is not registered, is decommissioned, or did not sign this token`)
	_, err = bot.agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: "bot"})
	requireStatus(t, err, codes.Unauthenticated, `agent "bot" is not registered, is decommissioned, or did not sign this token`)

	// The record stays, decommissioned, with its attributes.
	got, err := as.agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: "bot"})
	if err != nil {
		t.Fatalf("GetAgent of the decommissioned agent: %v", err)
	}
	a := got.GetAgent()
	if a.GetState() != mandatev1.AgentState_AGENT_STATE_DECOMMISSIONED || a.GetOwner() != "alice" || a.GetDepartment() != "finance" || a.GetPurpose() != "monthly report" {
		t.Errorf("GetAgent of the decommissioned agent: got %v, want state DECOMMISSIONED with owner alice, department finance, purpose \"monthly report\"", a)
	}
	list, err := as.agents.ListAgents(ctx, &mandatev1.ListAgentsRequest{State: mandatev1.AgentState_AGENT_STATE_DECOMMISSIONED})
	if err != nil {
		t.Fatalf("ListAgents of decommissioned agents: %v", err)
	}
	if n := len(list.GetAgents()); n != 1 || list.GetAgents()[0].GetId() != "bot" {
		t.Errorf("ListAgents of decommissioned agents: got %v, want only bot", list.GetAgents())
	}

	// A relationship written for the agent afterwards grants nothing.
	as.touch(t, "dataset:late#reader@agent:bot")
	requirePermissionAs(t, as.admin, "dataset:late", "read", "agent:bot", noPermission)
	subjects, err := lookupSubjectsAs(t, as.admin, "dataset:late", "read", "agent")
	if err != nil {
		t.Fatalf("LookupSubjects: %v", err)
	}
	if len(subjects) != 0 {
		t.Errorf("LookupSubjects dataset:late read agent after decommissioning: got %q, want none", subjects)
	}
}

// UpdateAgent moves the relationships that mirror the record, so rights
// granted to the old department end and those of the new one begin.
func TestAgentUpdateMovesDepartment(t *testing.T) {
	t.Parallel()
	as, botAgent := startLifecycleFixture(t)
	bot := as.connectAs(t, botAgent)
	as.touch(t, "dataset:leads#reader@department:sales#member")
	sales := "sales"
	if _, err := as.agents.UpdateAgent(testContext(t), &mandatev1.UpdateAgentRequest{Id: "bot", Department: &sales}); err != nil {
		t.Fatalf("UpdateAgent: %v", err)
	}
	requirePermissionAs(t, bot.v1, "dataset:payroll", "read", "agent:bot", noPermission)
	requirePermissionAs(t, bot.v1, "dataset:leads", "read", "agent:bot", hasPermission)
	got := as.readAll(t, &v1.RelationshipFilter{ResourceType: "department"})
	want := []string{"department:finance#member@agent:peer", "department:sales#member@agent:bot"}
	if !slices.Equal(got, want) {
		t.Errorf("department relationships: got %q, want %q", got, want)
	}

	none := ""
	if _, err := as.agents.UpdateAgent(testContext(t), &mandatev1.UpdateAgentRequest{Id: "bot", Department: &none}); err != nil {
		t.Fatalf("UpdateAgent clearing the department: %v", err)
	}
	requirePermissionAs(t, bot.v1, "dataset:leads", "read", "agent:bot", noPermission)
	if got := as.readAll(t, &v1.RelationshipFilter{ResourceType: "agent", OptionalResourceId: "bot", OptionalRelation: "department"}); len(got) != 0 {
		t.Errorf("agent:bot#department after clearing it: got %q, want none", got)
	}
}
