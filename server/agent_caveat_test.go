package server_test

import (
	"slices"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

// The default schema's business_hours_low_risk caveat holds on weekdays
// from 08:00 to 18:00 UTC, while the agent's risk level is low and the
// operational state is normal. The server supplies all three values, so
// these tests send no caveat context unless they try to forge one.

// startCaveatFixture starts a server with agent bot, a low-risk finance
// agent that writes system:prod directly and system:warehouse through its
// department, both under business_hours_low_risk.
func startCaveatFixture(t *testing.T) (*agentServer, agentClients) {
	t.Helper()
	as := startAgentServer(t, wednesdayMorning)
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Department: "finance", RiskLevel: "low"})
	as.touch(t,
		"system:prod#production_writer@agent:bot[business_hours_low_risk]",
		"system:warehouse#production_writer@department:finance#member[business_hours_low_risk]",
	)
	return as, as.connectAs(t, bot)
}

// requireProductionWrite fails unless bot's write permission on
// system:prod and system:warehouse is want, asked by the agent itself and
// by the administrator, and unless the agent's lookup and the
// administrator's lookup of writers agree with it.
func requireProductionWrite(t *testing.T, as *agentServer, bot agentClients, want v1.CheckPermissionResponse_Permissionship) {
	t.Helper()
	for name, client := range map[string]*authzed.Client{"agent:bot": bot.v1, "admin": as.admin} {
		for _, system := range []string{"system:prod", "system:warehouse"} {
			got, err := checkAs(t, client, system, "write", "agent:bot", nil)
			if err != nil {
				t.Fatalf("check %s write agent:bot by %s: %v", system, name, err)
			}
			if got != want {
				t.Errorf("check %s write agent:bot by %s at %s: got %s, want %s",
					system, name, as.clock.Now().Format(time.RFC1123), got, want)
			}
		}
	}
	wantSystems, wantWriters := []string{}, []string{}
	if want == hasPermission {
		wantSystems, wantWriters = []string{"prod", "warehouse"}, []string{"bot"}
	}
	systems, err := lookupResourcesAs(t, bot.v1, "system", "write", "agent:bot")
	if err != nil {
		t.Fatalf("LookupResources system write agent:bot: %v", err)
	}
	if !slices.Equal(systems, wantSystems) {
		t.Errorf("LookupResources system write agent:bot: got %q, want %q", systems, wantSystems)
	}
	writers, err := lookupSubjectsAs(t, as.admin, "system:prod", "write", "agent")
	if err != nil {
		t.Fatalf("LookupSubjects system:prod write agent: %v", err)
	}
	if !slices.Equal(writers, wantWriters) {
		t.Errorf("LookupSubjects system:prod write agent: got %q, want %q", writers, wantWriters)
	}
}

func TestAgentCaveatBusinessHours(t *testing.T) {
	t.Parallel()
	as, bot := startCaveatFixture(t)
	day := func(d int, hour, minute, second int) time.Time {
		return time.Date(2025, time.June, d, hour, minute, second, 0, time.UTC)
	}
	tests := []struct {
		weekday time.Weekday
		at      time.Time
		want    v1.CheckPermissionResponse_Permissionship
	}{
		{time.Wednesday, day(11, 10, 0, 0), hasPermission},
		{time.Wednesday, day(11, 8, 0, 0), hasPermission},
		{time.Wednesday, day(11, 7, 59, 59), noPermission},
		{time.Wednesday, day(11, 17, 59, 59), hasPermission},
		{time.Wednesday, day(11, 18, 0, 0), noPermission},
		{time.Wednesday, day(11, 19, 0, 0), noPermission},
		{time.Saturday, day(14, 10, 0, 0), noPermission},
		{time.Sunday, day(15, 10, 0, 0), noPermission},
		{time.Monday, day(9, 10, 0, 0), hasPermission},
		{time.Friday, day(13, 17, 0, 0), hasPermission},
	}
	for _, tc := range tests {
		if got := tc.at.Weekday(); got != tc.weekday {
			t.Fatalf("case %s is on a %s, want a %s", tc.at, got, tc.weekday)
		}
		as.clock.Set(tc.at)
		t.Logf("server clock %s", tc.at.Format(time.RFC1123))
		requireProductionWrite(t, as, bot, tc.want)
	}
}

func TestAgentCaveatRiskLevel(t *testing.T) {
	t.Parallel()
	as, bot := startCaveatFixture(t)
	for _, tc := range []struct {
		risk string
		want v1.CheckPermissionResponse_Permissionship
	}{
		{"high", noPermission},
		{"medium", noPermission},
		{"low", hasPermission},
	} {
		risk := tc.risk
		if _, err := as.agents.UpdateAgent(testContext(t), &mandatev1.UpdateAgentRequest{Id: "bot", RiskLevel: &risk}); err != nil {
			t.Fatalf("UpdateAgent risk level %s: %v", risk, err)
		}
		t.Logf("risk level %s", risk)
		requireProductionWrite(t, as, bot, tc.want)
	}
}

func TestAgentCaveatOperationalState(t *testing.T) {
	t.Parallel()
	as, bot := startCaveatFixture(t)
	for _, tc := range []struct {
		state string
		want  v1.CheckPermissionResponse_Permissionship
	}{
		{"incident", noPermission},
		{"maintenance", noPermission},
		{"normal", hasPermission},
	} {
		resp, err := as.operations.SetOperationalState(testContext(t), &mandatev1.SetOperationalStateRequest{State: tc.state})
		if err != nil {
			t.Fatalf("SetOperationalState %s: %v", tc.state, err)
		}
		if got := resp.GetState(); got != tc.state {
			t.Errorf("SetOperationalState %s returned %q", tc.state, got)
		}
		t.Logf("operational state %s", tc.state)
		requireProductionWrite(t, as, bot, tc.want)
	}
}

// Neither the request's caveat context nor a stored relationship's can
// replace the values that the server supplies.
func TestAgentCaveatContextNotForgeable(t *testing.T) {
	t.Parallel()
	as, bot := startCaveatFixture(t)
	forged := map[string]any{
		"request_time":      wednesdayMorning.Format(time.RFC3339),
		"operational_state": "normal",
		"agent_risk_level":  "low",
		"agent_id":          "bot",
	}
	as.touch(t, `system:staging#production_writer@agent:bot[business_hours_low_risk:{"request_time":"2025-06-11T10:00:00Z","operational_state":"normal","agent_risk_level":"low"}]`)

	high := "high"
	scenarios := []struct {
		name  string
		apply func(t *testing.T)
		undo  func(t *testing.T)
	}{
		{"on a Saturday", func(*testing.T) { as.clock.Set(wednesdayMorning.AddDate(0, 0, 3)) }, func(*testing.T) { as.clock.Set(wednesdayMorning) }},
		{"at 19:00", func(*testing.T) { as.clock.Set(wednesdayMorning.Add(9 * time.Hour)) }, func(*testing.T) { as.clock.Set(wednesdayMorning) }},
		{"during an incident", func(t *testing.T) {
			if _, err := as.operations.SetOperationalState(testContext(t), &mandatev1.SetOperationalStateRequest{State: "incident"}); err != nil {
				t.Fatalf("SetOperationalState incident: %v", err)
			}
		}, func(t *testing.T) {
			if _, err := as.operations.SetOperationalState(testContext(t), &mandatev1.SetOperationalStateRequest{State: "normal"}); err != nil {
				t.Fatalf("SetOperationalState normal: %v", err)
			}
		}},
		{"at high risk", func(t *testing.T) {
			if _, err := as.agents.UpdateAgent(testContext(t), &mandatev1.UpdateAgentRequest{Id: "bot", RiskLevel: &high}); err != nil {
				t.Fatalf("UpdateAgent risk level high: %v", err)
			}
		}, func(t *testing.T) {
			low := "low"
			if _, err := as.agents.UpdateAgent(testContext(t), &mandatev1.UpdateAgentRequest{Id: "bot", RiskLevel: &low}); err != nil {
				t.Fatalf("UpdateAgent risk level low: %v", err)
			}
		}},
	}
	// A user has no agent attributes, so a client cannot supply them either.
	as.touch(t, "role:ops#assignee@user:alice", "system:prod#production_writer@role:ops#assignee[business_hours_low_risk]")
	if got, err := checkAs(t, as.admin, "system:prod", "write", "user:alice", forged); err != nil || got != noPermission {
		t.Errorf("check system:prod write user:alice with forged context %v: got %s (error %v), want %s", forged, got, err, noPermission)
	}

	for _, sc := range scenarios {
		sc.apply(t)
		for name, client := range map[string]*authzed.Client{"agent:bot": bot.v1, "admin": as.admin} {
			for _, system := range []string{"system:prod", "system:warehouse", "system:staging"} {
				got, err := checkAs(t, client, system, "write", "agent:bot", forged)
				if err != nil {
					t.Fatalf("%s: check %s write agent:bot by %s: %v", sc.name, system, name, err)
				}
				if got != noPermission {
					t.Errorf("%s: check %s write agent:bot by %s with forged context %v: got %s, want %s",
						sc.name, system, name, forged, got, noPermission)
				}
			}
		}
		sc.undo(t)
		// With the condition lifted, the same request is allowed, so the
		// denial above came from the condition.
		requirePermissionAs(t, bot.v1, "system:staging", "write", "agent:bot", hasPermission)
	}
}

// A ZedToken from before an incident or a risk change must not bring back
// the right: the server's values are the current ones at every revision a
// client can name.
func TestAgentCaveatAtOldRevision(t *testing.T) {
	t.Parallel()
	as, bot := startCaveatFixture(t)
	old := as.touch(t, "system:archive#production_writer@agent:bot[business_hours_low_risk]")
	atOld := &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: old}}
	checkAtOld := func(t *testing.T, client *authzed.Client) v1.CheckPermissionResponse_Permissionship {
		t.Helper()
		resp, err := client.CheckPermission(testContext(t), &v1.CheckPermissionRequest{
			Consistency: atOld, Resource: objectRef("system", "archive"), Permission: "write", Subject: subjectRef(t, "agent:bot"),
		})
		if err != nil {
			t.Fatalf("check at the old revision: %v", err)
		}
		return resp.GetPermissionship()
	}
	if got := checkAtOld(t, bot.v1); got != hasPermission {
		t.Fatalf("check at the old revision before any change: got %s, want %s", got, hasPermission)
	}

	if _, err := as.operations.SetOperationalState(testContext(t), &mandatev1.SetOperationalStateRequest{State: "incident"}); err != nil {
		t.Fatalf("SetOperationalState incident: %v", err)
	}
	if got := checkAtOld(t, bot.v1); got != noPermission {
		t.Errorf("check at a revision from before the incident: got %s, want %s", got, noPermission)
	}
	if _, err := as.operations.SetOperationalState(testContext(t), &mandatev1.SetOperationalStateRequest{State: "normal"}); err != nil {
		t.Fatalf("SetOperationalState normal: %v", err)
	}

	high := "high"
	if _, err := as.agents.UpdateAgent(testContext(t), &mandatev1.UpdateAgentRequest{Id: "bot", RiskLevel: &high}); err != nil {
		t.Fatalf("UpdateAgent risk level high: %v", err)
	}
	if got := checkAtOld(t, bot.v1); got != noPermission {
		t.Errorf("check at a revision from before the risk level rose: got %s, want %s", got, noPermission)
	}
}
