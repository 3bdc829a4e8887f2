package server_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

// reviewPeriod is the period of the access reviews: a right with no
// granted decision in the last 30 days is unused.
const reviewPeriod = 30 * 24 * time.Hour

// reviewScenario is a server with agent:bot's rights used in different
// ways: through the granting path of a check, only before the period,
// never, and through a delegation.
type reviewScenario struct {
	*auditServer
	// now is the time of the review, and recent a day before it.
	now, recent time.Time
}

// startReviewScenario seeds, 60 days before the review:
//
//	dataset:logs#reader@agent:bot       used: a direct grant, checked recently
//	folder:reports#reader@agent:bot     used: on the arrow path of dataset:q3
//	dataset:budget#reader@agent:bot     used: on bot's part of a check through dplan
//	tool:mailer#invoker@agent:bot       unused: checked only 60 days ago
//	dataset:archive#reader@agent:bot    unused: never checked
//	delegation:dplan (planner -> bot)   used
//	delegation:dpeer (peer -> bot)      unused
//
// and department finance's rights: payroll (used by bot's check) and
// folder fin (unused).
func startReviewScenario(t *testing.T) *reviewScenario {
	t.Helper()
	old := wednesdayMorning
	rs := &reviewScenario{now: old.Add(60 * 24 * time.Hour)}
	rs.recent = rs.now.Add(-24 * time.Hour)
	rs.auditServer = startAuditServer(t, old, false)

	rs.createAgent(t, "create-bot", &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Department: "finance"})
	rs.createAgent(t, "create-planner", &mandatev1.CreateAgentRequest{Id: "planner", Owner: "alice", Department: "finance"})
	rs.createAgent(t, "create-peer", &mandatev1.CreateAgentRequest{Id: "peer", Owner: "alice", Department: "sales"})
	rs.write(t, "grants", v1.RelationshipUpdate_OPERATION_TOUCH,
		"dataset:logs#reader@agent:bot",
		"folder:reports#reader@agent:bot",
		"dataset:q3#folder@folder:reports",
		"dataset:budget#reader@agent:bot",
		"dataset:budget#reader@agent:planner",
		"tool:mailer#invoker@agent:bot",
		"dataset:archive#reader@agent:bot",
		"dataset:peerdata#reader@agent:peer",
		"dataset:payroll#reader@department:finance#member",
		"folder:fin#reader@department:finance#member",
	)
	delegations := []struct {
		caller string
		req    *mandatev1.DelegateRequest
	}{
		{"planner", &mandatev1.DelegateRequest{Id: "dplan", Delegator: "agent:planner", Delegate: "bot",
			Scope: []*mandatev1.Scope{scope("dataset:budget", "read")}}},
		{"peer", &mandatev1.DelegateRequest{Id: "dpeer", Delegator: "agent:peer", Delegate: "bot",
			Scope: []*mandatev1.Scope{scope("dataset:peerdata", "read")}}},
	}
	for _, d := range delegations {
		if _, err := rs.as(t, d.caller).delegations.Delegate(withRequestID(t, "create-"+d.req.GetId()), d.req); err != nil {
			t.Fatalf("Delegate %s: %v", d.req.GetId(), err)
		}
	}

	bot := rs.as(t, "bot").v1
	rs.clock.Set(old.Add(time.Hour))
	checkWithID(t, bot, "old-mailer", "tool:mailer", "invoke", "agent:bot", hasPermission)

	rs.clock.Set(rs.recent)
	checkWithID(t, bot, "logs", "dataset:logs", "read", "agent:bot", hasPermission)
	checkWithID(t, bot, "logs-again", "dataset:logs", "read", "agent:bot", hasPermission)
	checkWithID(t, bot, "q3", "dataset:q3", "read", "agent:bot", hasPermission)
	checkWithID(t, bot, "payroll", "dataset:payroll", "read", "agent:bot", hasPermission)
	checkWithID(t, bot, "through-dplan", "dataset:budget", "read", "delegation:dplan", hasPermission)
	// Denied checks use no right, even on a resource the agent may read
	// otherwise.
	checkWithID(t, bot, "denied", "dataset:archive", "write", "agent:bot", noPermission)
	checkWithID(t, bot, "denied-through-dpeer", "dataset:archive", "read", "delegation:dpeer", noPermission)

	rs.clock.Set(rs.now)
	return rs
}

// reviewedRight is what a review reports about one right.
type reviewedRight struct {
	id       string
	used     bool
	uses     uint64
	lastUsed time.Time
}

func (rs *reviewScenario) review(t *testing.T, req *mandatev1.ReviewAccessRequest) []reviewedRight {
	t.Helper()
	req.UnusedForSeconds = int64(reviewPeriod / time.Second)
	resp, err := rs.reviews.ReviewAccess(withRequestID(t, "review"), req)
	if err != nil {
		t.Fatalf("ReviewAccess %v: %v", req, err)
	}
	var out []reviewedRight
	for _, r := range resp.GetRights() {
		rr := reviewedRight{id: r.GetId(), used: r.GetUsed(), uses: r.GetUses()}
		if r.GetLastUsed() != nil {
			rr.lastUsed = r.GetLastUsed().AsTime()
		}
		out = append(out, rr)
	}
	return out
}

func requireReview(t *testing.T, got, want []reviewedRight) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("review lists %d rights, want %d:\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.id != w.id {
			t.Errorf("right %d: id %s, want %s", i, g.id, w.id)
			continue
		}
		if g.used != w.used {
			t.Errorf("%s: used %v, want %v", w.id, g.used, w.used)
		}
		if g.uses != w.uses {
			t.Errorf("%s: %d uses, want %d", w.id, g.uses, w.uses)
		}
		if !g.lastUsed.Equal(w.lastUsed) {
			t.Errorf("%s: last used %s, want %s", w.id, g.lastUsed, w.lastUsed)
		}
	}
}

func TestAuditReviewFindsUnusedRights(t *testing.T) {
	rs := startReviewScenario(t)
	recent := rs.recent
	requireReview(t, rs.review(t, &mandatev1.ReviewAccessRequest{Agent: "bot"}), []reviewedRight{
		{id: "dataset:archive#reader@agent:bot"},
		{id: "dataset:budget#reader@agent:bot", used: true, uses: 1, lastUsed: recent},
		{id: "dataset:logs#reader@agent:bot", used: true, uses: 2, lastUsed: recent},
		{id: "delegation:dpeer"},
		{id: "delegation:dplan", used: true, uses: 1, lastUsed: recent},
		{id: "folder:reports#reader@agent:bot", used: true, uses: 1, lastUsed: recent},
		{id: "tool:mailer#invoker@agent:bot"},
	})
	requireReview(t, rs.review(t, &mandatev1.ReviewAccessRequest{Department: "finance"}), []reviewedRight{
		{id: "dataset:payroll#reader@department:finance#member", used: true, uses: 1, lastUsed: recent},
		{id: "folder:fin#reader@department:finance#member"},
	})
}

func TestAuditReviewRevokesAudited(t *testing.T) {
	rs := startReviewScenario(t)
	var unused []string
	for _, r := range rs.review(t, &mandatev1.ReviewAccessRequest{Agent: "bot"}) {
		if !r.used {
			unused = append(unused, r.id)
		}
	}
	wantUnused := []string{"dataset:archive#reader@agent:bot", "delegation:dpeer", "tool:mailer#invoker@agent:bot"}
	if !slices.Equal(unused, wantUnused) {
		t.Fatalf("unused rights = %q, want %q", unused, wantUnused)
	}
	resp, err := rs.reviews.RevokeRights(withRequestID(t, "revoke-unused"), &mandatev1.RevokeRightsRequest{Ids: unused})
	if err != nil {
		t.Fatalf("RevokeRights: %v", err)
	}
	if got := resp.GetRevoked(); !slices.Equal(got, wantUnused) {
		t.Errorf("RevokeRights revoked %q, want %q", got, wantUnused)
	}

	// Exactly the unused rights are gone: the review now lists the used
	// ones only.
	after := rs.review(t, &mandatev1.ReviewAccessRequest{Agent: "bot"})
	var ids []string
	for _, r := range after {
		ids = append(ids, r.id)
		if !r.used {
			t.Errorf("%s is unused after the unused rights were revoked", r.id)
		}
	}
	wantLeft := []string{
		"dataset:budget#reader@agent:bot", "dataset:logs#reader@agent:bot", "delegation:dplan", "folder:reports#reader@agent:bot",
	}
	if !slices.Equal(ids, wantLeft) {
		t.Errorf("rights after revocation = %q, want %q", ids, wantLeft)
	}
	bot := rs.as(t, "bot").v1
	checkWithID(t, bot, "mailer-after", "tool:mailer", "invoke", "agent:bot", noPermission)
	checkWithID(t, bot, "logs-after", "dataset:logs", "read", "agent:bot", hasPermission)

	recs := rs.recordsOf(t, "revoke-unused")
	if len(recs) != len(wantUnused) {
		t.Fatalf("RevokeRights has %d audit records, want %d: %v", len(recs), len(wantUnused), recs)
	}
	for i, id := range wantUnused {
		requireRecord(t, "revocation of "+id, recs[i], wantRecord{
			kind: "review", principal: "admin", result: "ok",
			detail: map[string]string{"action": "revoke right", "right": id},
		})
	}
	rs.verifyLog(t)
}

func TestAuditRevokeUnknownRightChangesNothing(t *testing.T) {
	rs := startReviewScenario(t)
	_, err := rs.reviews.RevokeRights(withRequestID(t, "revoke-bad"), &mandatev1.RevokeRightsRequest{
		Ids: []string{"tool:mailer#invoker@agent:bot", "dataset:nothing#reader@agent:bot"},
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("RevokeRights with an unknown right: got %v, want InvalidArgument", err)
	}
	if !strings.Contains(err.Error(), "dataset:nothing#reader@agent:bot") {
		t.Errorf("RevokeRights error %q does not name the unknown right", err)
	}
	checkWithID(t, rs.as(t, "bot").v1, "mailer-after", "tool:mailer", "invoke", "agent:bot", hasPermission)
	if recs := rs.recordsOf(t, "revoke-bad"); len(recs) != 0 {
		t.Errorf("the failed RevokeRights has %d audit records, want 0: %v", len(recs), recs)
	}
}
