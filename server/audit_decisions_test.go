package server_test

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/schema"
)

// auditSchemaExtension adds to the default schema a definition with an
// intersection and a caveat that needs request context, the two shapes
// the default schema lacks.
const auditSchemaExtension = `
/** on_network holds when the request comes from the corporate network. */
caveat on_network(network string) {
    network == "corp"
}

/** report needs both a viewer grant and a clearance to view. */
definition report {
    relation viewer: agent | department#member
    relation cleared: agent
    relation remote_viewer: agent with on_network
    permission view = viewer & cleared
    permission remote_view = remote_viewer
}
`

// auditGrants reach agent:bot directly, through its department, through a
// folder and through an intersection, and give the delegation chain's
// agents read on folder fin (through the department) and on dataset
// budget (planner and researcher only).
var auditGrants = []string{
	"dataset:logs#reader@agent:bot",
	"dataset:payroll#reader@department:finance#member",
	"folder:reports#reader@agent:bot",
	"dataset:q3#folder@folder:reports",
	"report:r1#viewer@agent:bot",
	"report:r1#cleared@agent:bot",
	"report:r1#remote_viewer@agent:bot[on_network]",
	"folder:fin#reader@department:finance#member",
	"dataset:revenue#folder@folder:fin",
	"dataset:forecast#folder@folder:fin",
	"dataset:budget#reader@agent:planner",
	"dataset:budget#reader@agent:researcher",
}

// wantRecord is the expected content of one audit record. Empty fields
// must be empty in the record too.
type wantRecord struct {
	kind, principal, resource, permission, subject, result, why, purpose, delegation string
	actors                                                                           []string
	detail                                                                           map[string]string
	// anyWhy skips the comparison of why.
	anyWhy bool
}

// requireRecord compares every field of rec that wantRecord names, and
// fails the test for each one that differs.
func requireRecord(t *testing.T, name string, rec *mandatev1.AuditRecord, want wantRecord) {
	t.Helper()
	fields := []struct{ field, got, want string }{
		{"kind", rec.GetKind(), want.kind},
		{"principal", rec.GetPrincipal(), want.principal},
		{"resource", rec.GetResource(), want.resource},
		{"permission", rec.GetPermission(), want.permission},
		{"subject", rec.GetSubject(), want.subject},
		{"result", rec.GetResult(), want.result},
		{"why", rec.GetWhy(), want.why},
		{"purpose", rec.GetPurpose(), want.purpose},
		{"delegation", rec.GetDelegation(), want.delegation},
	}
	if want.anyWhy {
		fields = slices.DeleteFunc(fields, func(f struct{ field, got, want string }) bool { return f.field == "why" })
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("%s: record %s = %q, want %q", name, f.field, f.got, f.want)
		}
	}
	if !slices.Equal(rec.GetActors(), want.actors) {
		t.Errorf("%s: record actors = %q, want %q", name, rec.GetActors(), want.actors)
	}
	if !maps.Equal(rec.GetDetail(), want.detail) {
		t.Errorf("%s: record detail = %v, want %v", name, rec.GetDetail(), want.detail)
	}
	if rec.GetRevision() == 0 {
		t.Errorf("%s: record has no revision", name)
	}
}

// auditScenario is a server seeded for the decision tests, with the
// times of its phases.
type auditScenario struct {
	*auditServer
	// setup is when agents, grants and delegations were written.
	setup time.Time
	// decisions, delegated and events start the later phases, one hour
	// apart.
	decisions, delegated, events time.Time
}

// startAuditScenario writes the extended schema, the agents bot, peer,
// planner, researcher and summarizer (all in finance), the grants, and a
// two-hop delegation chain:
//
//	d1: agent:planner -> researcher  read@folder:fin/..., read@dataset:budget
//	d2: delegation:d1 -> summarizer  read@dataset:revenue, read@dataset:budget
func startAuditScenario(t *testing.T) *auditScenario {
	t.Helper()
	sc := &auditScenario{setup: wednesdayMorning}
	sc.decisions = sc.setup.Add(time.Hour)
	sc.delegated = sc.setup.Add(2 * time.Hour)
	sc.events = sc.setup.Add(3 * time.Hour)
	sc.auditServer = startAuditServer(t, sc.setup, false)

	if _, err := sc.admin.WriteSchema(withRequestID(t, "write-schema"), &v1.WriteSchemaRequest{
		Schema: schema.AgentIAM + auditSchemaExtension,
	}); err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	sc.createAgent(t, "create-bot", &mandatev1.CreateAgentRequest{
		Id: "bot", Owner: "alice", Department: "finance", Role: "analyst", Purpose: "monthly report",
	})
	for _, id := range []string{"peer", "planner", "researcher", "summarizer"} {
		sc.createAgent(t, "create-"+id, &mandatev1.CreateAgentRequest{Id: id, Owner: "alice", Department: "finance"})
	}
	sc.write(t, "write-grants", v1.RelationshipUpdate_OPERATION_TOUCH, auditGrants...)

	if _, err := sc.as(t, "planner").delegations.Delegate(withRequestID(t, "create-d1"), &mandatev1.DelegateRequest{
		Id: "d1", Delegator: "agent:planner", Delegate: "researcher", MaxDepth: 1,
		Scope: []*mandatev1.Scope{scope("folder:fin/...", "read"), scope("dataset:budget", "read")},
	}); err != nil {
		t.Fatalf("Delegate d1: %v", err)
	}
	if _, err := sc.as(t, "researcher").delegations.Delegate(withRequestID(t, "create-d2"), &mandatev1.DelegateRequest{
		Id: "d2", Delegator: "delegation:d1", Delegate: "summarizer",
		Scope: []*mandatev1.Scope{scope("dataset:revenue", "read"), scope("dataset:budget", "read")},
	}); err != nil {
		t.Fatalf("Delegate d2: %v", err)
	}
	return sc
}

// runBotDecisions sends, as agent:bot in the decisions phase, one check of
// each kind, a bulk check and a lookup.
func (sc *auditScenario) runBotDecisions(t *testing.T) {
	t.Helper()
	sc.clock.Set(sc.decisions)
	bot := sc.as(t, "bot").v1
	checkWithID(t, bot, "direct", "dataset:logs", "read", "agent:bot", hasPermission)
	checkWithID(t, bot, "department", "dataset:payroll", "read", "agent:bot", hasPermission)
	checkWithID(t, bot, "arrow", "dataset:q3", "read", "agent:bot", hasPermission)
	checkWithID(t, bot, "intersection", "report:r1", "view", "agent:bot", hasPermission)
	checkWithID(t, bot, "denial", "dataset:secret", "read", "agent:bot", noPermission)
	checkWithID(t, bot, "conditional", "report:r1", "remote_view", "agent:bot",
		v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION)

	bulk := &v1.CheckBulkPermissionsRequest{Consistency: fullyConsistent()}
	for _, item := range []struct{ resource, permission string }{
		{"dataset:logs", "read"},
		{"dataset:secret", "read"},
		{"dataset:q3", "read"},
		// An invalid item gets its own error and is no decision, so it
		// has no record.
		{"dataset:logs", "no_such_permission"},
	} {
		bulk.Items = append(bulk.Items, &v1.CheckBulkPermissionsRequestItem{
			Resource: objectRefOfString(t, item.resource), Permission: item.permission, Subject: subjectRef(t, "agent:bot"),
		})
	}
	resp, err := bot.CheckBulkPermissions(withRequestID(t, "bulk"), bulk)
	if err != nil {
		t.Fatalf("CheckBulkPermissions: %v", err)
	}
	if n := len(resp.GetPairs()); n != 4 {
		t.Fatalf("CheckBulkPermissions returned %d pairs, want 4", n)
	}
	if resp.GetPairs()[3].GetError() == nil {
		t.Errorf("bulk item with an unknown permission: got %v, want an error", resp.GetPairs()[3])
	}

	got, err := lookupResourcesWithID(t, bot, "lookup", "dataset", "read", "agent:bot")
	if err != nil {
		t.Fatalf("LookupResources: %v", err)
	}
	if want := []string{"forecast", "logs", "payroll", "q3", "revenue"}; !slices.Equal(got, want) {
		t.Errorf("LookupResources dataset read agent:bot = %q, want %q", got, want)
	}
}

// runDelegatedDecisions sends, as agent:summarizer in the delegated phase,
// checks through delegation:d2 that pass, fail on a link's scope and fail
// on a principal, and an ExplainCheck as the administrator.
func (sc *auditScenario) runDelegatedDecisions(t *testing.T) {
	t.Helper()
	sc.clock.Set(sc.delegated)
	summarizer := sc.as(t, "summarizer").v1
	checkWithID(t, summarizer, "chain-grant", "dataset:revenue", "read", "delegation:d2", hasPermission)
	checkWithID(t, summarizer, "chain-scope", "dataset:forecast", "read", "delegation:d2", noPermission)
	checkWithID(t, summarizer, "chain-principal", "dataset:budget", "read", "delegation:d2", noPermission)
	resp, err := sc.delegations.ExplainCheck(withRequestID(t, "explain"), &mandatev1.ExplainCheckRequest{
		Delegation: "d2", Resource: "dataset:revenue", Permission: "read",
	})
	if err != nil {
		t.Fatalf("ExplainCheck: %v", err)
	}
	if resp.GetPermissionship() != "has_permission" {
		t.Errorf("ExplainCheck d2 dataset:revenue read = %q, want has_permission", resp.GetPermissionship())
	}
}

// runEvents revokes d2, suspends bot, checks bot while suspended,
// reactivates it and deletes its direct grant, in the events phase.
func (sc *auditScenario) runEvents(t *testing.T) {
	t.Helper()
	sc.clock.Set(sc.events)
	if _, err := sc.as(t, "researcher").delegations.Revoke(withRequestID(t, "revoke-d2"), &mandatev1.RevokeRequest{Id: "d2"}); err != nil {
		t.Fatalf("Revoke d2: %v", err)
	}
	if _, err := sc.agents.SuspendAgent(withRequestID(t, "suspend-bot"), &mandatev1.SuspendAgentRequest{Id: "bot", Reason: "audit test"}); err != nil {
		t.Fatalf("SuspendAgent bot: %v", err)
	}
	checkWithID(t, sc.admin, "check-suspended", "dataset:logs", "read", "agent:bot", noPermission)
	if _, err := sc.agents.ReactivateAgent(withRequestID(t, "reactivate-bot"), &mandatev1.ReactivateAgentRequest{Id: "bot"}); err != nil {
		t.Fatalf("ReactivateAgent bot: %v", err)
	}
	if _, err := sc.admin.DeleteRelationships(withRequestID(t, "delete-grant"), &v1.DeleteRelationshipsRequest{
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "dataset", OptionalResourceId: "logs", OptionalRelation: "reader"},
	}); err != nil {
		t.Fatalf("DeleteRelationships: %v", err)
	}
}

// lookupResourcesWithID returns the sorted ids of resourceType on which
// subject has permission, sending requestID.
func lookupResourcesWithID(t *testing.T, client *authzed.Client, requestID, resourceType, permission, subject string) ([]string, error) {
	t.Helper()
	stream, err := client.LookupResources(withRequestID(t, requestID), &v1.LookupResourcesRequest{
		Consistency:        fullyConsistent(),
		ResourceObjectType: resourceType,
		Permission:         permission,
		Subject:            subjectRef(t, subject),
	})
	if err != nil {
		return nil, err
	}
	out := []string{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetResourceObjectId())
	}
	slices.Sort(out)
	return out, nil
}

func TestAuditRecordsEachDecision(t *testing.T) {
	sc := startAuditScenario(t)
	sc.runBotDecisions(t)
	sc.runDelegatedDecisions(t)

	bot := wantRecord{kind: "check", principal: "agent:bot", subject: "agent:bot", purpose: "monthly report", permission: "read"}
	cases := []struct {
		requestID string
		want      func(w wantRecord) wantRecord
	}{
		{"direct", func(w wantRecord) wantRecord {
			w.resource, w.result, w.why = "dataset:logs", "has_permission", "dataset:logs#reader@agent:bot"
			return w
		}},
		{"department", func(w wantRecord) wantRecord {
			w.resource, w.result = "dataset:payroll", "has_permission"
			w.why = "dataset:payroll#reader@department:finance#member -> department:finance#member@agent:bot"
			return w
		}},
		{"arrow", func(w wantRecord) wantRecord {
			w.resource, w.result = "dataset:q3", "has_permission"
			w.why = "dataset:q3#folder@folder:reports -> folder:reports#reader@agent:bot"
			return w
		}},
		{"intersection", func(w wantRecord) wantRecord {
			w.resource, w.permission, w.result = "report:r1", "view", "has_permission"
			w.why = "report:r1#viewer@agent:bot & report:r1#cleared@agent:bot"
			return w
		}},
		{"denial", func(w wantRecord) wantRecord {
			w.resource, w.result = "dataset:secret", "no_permission"
			return w
		}},
		{"conditional", func(w wantRecord) wantRecord {
			w.resource, w.permission, w.result = "report:r1", "remote_view", "conditional_permission"
			w.detail = map[string]string{"missing_context": "network"}
			return w
		}},
		{"lookup", func(w wantRecord) wantRecord {
			w.kind, w.resource, w.result = "lookup_resources", "dataset", "5 resources"
			return w
		}},
	}
	for _, tc := range cases {
		rec := sc.recordOf(t, tc.requestID)
		requireRecord(t, tc.requestID, rec, tc.want(bot))
		if got := rec.GetTime().AsTime(); !got.Equal(sc.decisions) {
			t.Errorf("%s: record time %s, want %s", tc.requestID, got, sc.decisions)
		}
	}

	bulk := sc.recordsOf(t, "bulk")
	wantBulk := []wantRecord{
		{resource: "dataset:logs", result: "has_permission", why: "dataset:logs#reader@agent:bot"},
		{resource: "dataset:secret", result: "no_permission"},
		{resource: "dataset:q3", result: "has_permission", why: "dataset:q3#folder@folder:reports -> folder:reports#reader@agent:bot"},
	}
	if len(bulk) != len(wantBulk) {
		t.Fatalf("bulk check has %d records, want %d: %v", len(bulk), len(wantBulk), bulk)
	}
	for i, w := range wantBulk {
		w.kind, w.principal, w.subject, w.purpose, w.permission = "check", "agent:bot", "agent:bot", "monthly report", "read"
		requireRecord(t, fmt.Sprintf("bulk item %d", i), bulk[i], w)
	}

	chain := []string{"agent:planner", "agent:researcher", "agent:summarizer"}
	delegated := wantRecord{
		kind: "check", principal: "agent:summarizer", subject: "delegation:d2", permission: "read",
		delegation: "d2", actors: chain,
	}
	revenuePath := func(agent string) string {
		return agent + ": dataset:revenue#folder@folder:fin -> folder:fin#reader@department:finance#member -> department:finance#member@" + agent
	}
	grantWhy := revenuePath("agent:planner") + "; " + revenuePath("agent:researcher") + "; " + revenuePath("agent:summarizer")
	delegatedCases := []struct {
		requestID string
		want      func(w wantRecord) wantRecord
	}{
		{"chain-grant", func(w wantRecord) wantRecord {
			w.resource, w.result, w.why = "dataset:revenue", "has_permission", grantWhy
			return w
		}},
		{"chain-scope", func(w wantRecord) wantRecord {
			w.resource, w.result, w.why = "dataset:forecast", "no_permission", "denied by scope of delegation:d2"
			return w
		}},
		{"chain-principal", func(w wantRecord) wantRecord {
			w.resource, w.result, w.why = "dataset:budget", "no_permission", "denied by agent:summarizer"
			return w
		}},
		{"explain", func(w wantRecord) wantRecord {
			w.principal, w.resource, w.result, w.why = "admin", "dataset:revenue", "has_permission", grantWhy
			return w
		}},
	}
	for _, tc := range delegatedCases {
		requireRecord(t, tc.requestID, sc.recordOf(t, tc.requestID), tc.want(delegated))
	}
	sc.verifyLog(t)
}

func TestAuditRecordsEachEvent(t *testing.T) {
	sc := startAuditScenario(t)
	sc.runEvents(t)

	cases := []struct {
		requestID string
		want      wantRecord
	}{
		{"write-schema", wantRecord{kind: "schema", principal: "admin", result: "ok"}},
		{"create-bot", wantRecord{kind: "lifecycle", principal: "admin", subject: "agent:bot", result: "ok",
			detail: map[string]string{"action": "create agent", "state": "active"}}},
		{"write-grants", wantRecord{kind: "write", principal: "admin", resource: "dataset:logs", result: "ok",
			detail: map[string]string{"updates": "12", "first": "OPERATION_TOUCH dataset:logs#reader@agent:bot"}}},
		{"create-d1", wantRecord{kind: "delegation", principal: "agent:planner", subject: "agent:researcher", result: "ok",
			delegation: "d1", actors: []string{"agent:planner", "agent:researcher"},
			detail: map[string]string{"action": "delegate", "delegator": "agent:planner"}}},
		{"create-d2", wantRecord{kind: "delegation", principal: "agent:researcher", subject: "agent:summarizer", result: "ok",
			delegation: "d2", actors: []string{"agent:planner", "agent:researcher", "agent:summarizer"},
			detail: map[string]string{"action": "delegate", "delegator": "delegation:d1"}}},
		{"revoke-d2", wantRecord{kind: "delegation", principal: "agent:researcher", result: "ok", delegation: "d2",
			detail: map[string]string{"action": "revoke", "revoked": "d2"}}},
		{"suspend-bot", wantRecord{kind: "lifecycle", principal: "admin", subject: "agent:bot", result: "ok",
			detail: map[string]string{"action": "suspend agent", "state": "suspended"}}},
		{"check-suspended", wantRecord{kind: "check", principal: "admin", resource: "dataset:logs", permission: "read",
			subject: "agent:bot", result: "no_permission", why: "denied by agent:bot is not active"}},
		{"reactivate-bot", wantRecord{kind: "lifecycle", principal: "admin", subject: "agent:bot", result: "ok",
			detail: map[string]string{"action": "reactivate agent", "state": "active"}}},
		{"delete-grant", wantRecord{kind: "write", principal: "admin", resource: "dataset:logs", result: "ok",
			detail: map[string]string{"deleted": "1", "filter": "dataset:logs#reader"}}},
	}
	for _, tc := range cases {
		requireRecord(t, tc.requestID, sc.recordOf(t, tc.requestID), tc.want)
	}
	// Events are recorded after they commit, at the revision they created,
	// so the records of later events carry later revisions.
	var last uint64
	for _, id := range []string{"revoke-d2", "suspend-bot", "reactivate-bot", "delete-grant"} {
		rev := sc.recordOf(t, id).GetRevision()
		if rev <= last {
			t.Errorf("%s: revision %d is not after the previous event's %d", id, rev, last)
		}
		last = rev
	}
	sc.verifyLog(t)
}

func TestAuditQueryFilters(t *testing.T) {
	sc := startAuditScenario(t)
	sc.runBotDecisions(t)
	sc.runDelegatedDecisions(t)
	sc.runEvents(t)

	cases := []struct {
		name string
		req  *mandatev1.QueryRecordsRequest
		want []string
	}{
		{"agent bot", &mandatev1.QueryRecordsRequest{Agent: "bot"}, []string{
			"create-bot", "direct", "department", "arrow", "intersection", "denial", "conditional",
			"bulk", "bulk", "bulk", "lookup", "suspend-bot", "check-suspended", "reactivate-bot",
		}},
		{"agent researcher", &mandatev1.QueryRecordsRequest{Agent: "researcher"}, []string{
			"create-researcher", "create-d1", "create-d2", "chain-grant", "chain-scope", "chain-principal",
			"explain", "revoke-d2",
		}},
		{"resource dataset:logs", &mandatev1.QueryRecordsRequest{Resource: "dataset:logs"}, []string{
			"write-grants", "direct", "bulk", "check-suspended", "delete-grant",
		}},
		{"delegated phase", &mandatev1.QueryRecordsRequest{
			Since: timestamppb.New(sc.delegated), Until: timestamppb.New(sc.events),
		}, []string{"chain-grant", "chain-scope", "chain-principal", "explain"}},
		{"decisions phase", &mandatev1.QueryRecordsRequest{
			Since: timestamppb.New(sc.decisions), Until: timestamppb.New(sc.delegated),
		}, []string{
			"direct", "department", "arrow", "intersection", "denial", "conditional", "bulk", "bulk", "bulk", "lookup",
		}},
		{"result no_permission", &mandatev1.QueryRecordsRequest{Result: "no_permission"}, []string{
			"denial", "bulk", "chain-scope", "chain-principal", "check-suspended",
		}},
		{"result conditional_permission", &mandatev1.QueryRecordsRequest{Result: "conditional_permission"}, []string{"conditional"}},
		{"delegation d2", &mandatev1.QueryRecordsRequest{Delegation: "d2"}, []string{
			"create-d2", "chain-grant", "chain-scope", "chain-principal", "explain", "revoke-d2",
		}},
		{"kind lifecycle", &mandatev1.QueryRecordsRequest{Kind: "lifecycle"}, []string{
			"create-bot", "create-peer", "create-planner", "create-researcher", "create-summarizer",
			"suspend-bot", "reactivate-bot",
		}},
		{"agent bot with no_permission in decisions phase", &mandatev1.QueryRecordsRequest{
			Agent: "bot", Result: "no_permission",
			Since: timestamppb.New(sc.decisions), Until: timestamppb.New(sc.delegated),
		}, []string{"denial", "bulk"}},
		{"limit", &mandatev1.QueryRecordsRequest{Agent: "bot", Limit: 2}, []string{"create-bot", "direct"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := requestIDs(sc.query(t, tc.req))
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("QueryRecords %v:\ngot  %q\nwant %q", tc.req, got, want)
			}
		})
	}

	// Records come back in log order, so a caller can page with after_seq.
	all := sc.query(t, &mandatev1.QueryRecordsRequest{})
	for i := 1; i < len(all); i++ {
		if all[i].GetSeq() != all[i-1].GetSeq()+1 {
			t.Fatalf("record %d follows record %d", all[i].GetSeq(), all[i-1].GetSeq())
		}
	}
	after := sc.query(t, &mandatev1.QueryRecordsRequest{AfterSeq: all[10].GetSeq()})
	if len(after) != len(all)-10 || after[0].GetSeq() != all[10].GetSeq() {
		t.Errorf("QueryRecords after_seq %d returned %d records from seq %d, want %d from seq %d",
			all[10].GetSeq(), len(after), after[0].GetSeq(), len(all)-10, all[10].GetSeq())
	}
}

func TestAuditQueryNeedsAdmin(t *testing.T) {
	sc := startAuditScenario(t)
	stream, err := sc.as(t, "bot").audit.QueryRecords(testContext(t), &mandatev1.QueryRecordsRequest{Agent: "bot"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("QueryRecords as agent:bot: got %v, want PermissionDenied", err)
	}
}

// TestAuditGeneratedRequestIDShared sends requests without x-request-id
// that each produce several records: the records of one request must
// share the id the server generated, and two requests must differ.
func TestAuditGeneratedRequestIDShared(t *testing.T) {
	sc := startAuditScenario(t)
	bot := sc.as(t, "bot").v1
	bulk := &v1.CheckBulkPermissionsRequest{Consistency: fullyConsistent()}
	for _, resource := range []string{"dataset:logs", "dataset:secret", "dataset:q3"} {
		bulk.Items = append(bulk.Items, &v1.CheckBulkPermissionsRequestItem{
			Resource: objectRefOfString(t, resource), Permission: "read", Subject: subjectRef(t, "agent:bot"),
		})
	}
	for range 2 {
		if _, err := bot.CheckBulkPermissions(testContext(t), bulk); err != nil {
			t.Fatalf("CheckBulkPermissions: %v", err)
		}
	}
	if _, err := sc.reviews.RevokeRights(testContext(t), &mandatev1.RevokeRightsRequest{
		Ids: []string{"dataset:logs#reader@agent:bot", "folder:reports#reader@agent:bot"},
	}); err != nil {
		t.Fatalf("RevokeRights: %v", err)
	}

	checks := sc.query(t, &mandatev1.QueryRecordsRequest{Kind: "check", Agent: "bot"})
	if len(checks) != 6 {
		t.Fatalf("two bulk checks of 3 items have %d records, want 6", len(checks))
	}
	first, second := checks[0].GetRequestId(), checks[3].GetRequestId()
	if first == "" || first == second {
		t.Errorf("the two bulk checks have request ids %q and %q, want two different ids", first, second)
	}
	for i, rec := range checks {
		want := first
		if i >= 3 {
			want = second
		}
		if rec.GetRequestId() != want {
			t.Errorf("bulk record %d has request id %q, want %q like the other items of its request", i, rec.GetRequestId(), want)
		}
	}
	revocations := sc.query(t, &mandatev1.QueryRecordsRequest{Kind: "review"})
	if len(revocations) != 2 {
		t.Fatalf("RevokeRights of 2 rights has %d records, want 2", len(revocations))
	}
	if a, b := revocations[0].GetRequestId(), revocations[1].GetRequestId(); a == "" || a != b {
		t.Errorf("the revocations of one request have request ids %q and %q, want one id", a, b)
	}
}
