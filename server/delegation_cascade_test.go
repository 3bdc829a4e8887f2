package server_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

func TestDelegationChainNarrows(t *testing.T) {
	ds := startChain(t, nil)
	ds.requireChain(t, allChain(hasPermission))

	// payroll is outside c1's scope, and only planner may read it.
	ds.requireThrough(t, "c1", "dataset:payroll", "read", noPermission)
	// planner may write revenue, but no link's scope grants write.
	ds.requireThrough(t, "c1", "dataset:revenue", "write", noPermission)
	// c2's scope covers forecast, c3's does not.
	ds.requireThrough(t, "c2", "dataset:forecast", "read", hasPermission)
	ds.requireThrough(t, "c3", "dataset:forecast", "read", noPermission)

	lookups := map[string][]string{
		"c1": {"forecast", "revenue"},
		"c2": {"forecast", "revenue"},
		"c3": {"revenue"},
	}
	for id, want := range lookups {
		got, err := lookupResourcesAs(t, ds.as[chainDelegates[id]].v1, "dataset", "read", "delegation:"+id)
		if err != nil {
			t.Fatalf("LookupResources dataset read delegation:%s: %v", id, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("LookupResources dataset read delegation:%s = %v, want %v", id, got, want)
		}
	}

	allowed := ds.explain(t, "c3", "dataset:revenue", "read")
	wantChain := []string{"agent:planner", "agent:researcher", "agent:summarizer", "agent:writer"}
	if !slices.Equal(allowed.GetChain(), wantChain) {
		t.Errorf("ExplainCheck c3 chain = %v, want %v", allowed.GetChain(), wantChain)
	}
	if allowed.GetPermissionship() != "has_permission" {
		t.Errorf("ExplainCheck c3 dataset:revenue read = %q, want has_permission", allowed.GetPermissionship())
	}
	if allowed.GetLimitedBy() != "" {
		t.Errorf("ExplainCheck c3 dataset:revenue read: limited_by %q on an allowed check", allowed.GetLimitedBy())
	}
	denied := ds.explain(t, "c3", "dataset:forecast", "read")
	if denied.GetLimitedBy() != "scope of delegation:c3" {
		t.Errorf("ExplainCheck c3 dataset:forecast read: limited_by %q, want %q", denied.GetLimitedBy(), "scope of delegation:c3")
	}
}

func TestDelegationRevokeMiddleLink(t *testing.T) {
	ds := startChain(t, nil)
	ds.requireChain(t, allChain(hasPermission))

	// researcher is c1's delegate, so it may revoke c2, which it created.
	resp, err := ds.as["researcher"].delegations.Revoke(testContext(t), &mandatev1.RevokeRequest{Id: "c2"})
	if err != nil {
		t.Fatalf("Revoke c2 as researcher: %v", err)
	}
	if want := []string{"c2", "c3"}; !slices.Equal(resp.GetRevoked(), want) {
		t.Errorf("Revoke c2 revoked %v, want %v", resp.GetRevoked(), want)
	}

	// The very next request, read at least as fresh as the revocation,
	// already denies the bottom link.
	got, err := ds.as["writer"].v1.CheckPermission(testContext(t), &v1.CheckPermissionRequest{
		Consistency: atLeastAsFreshAs(resp.GetWrittenAt()),
		Resource:    objectRefOfString(t, "dataset:revenue"),
		Permission:  "read",
		Subject:     subjectRef(t, "delegation:c3"),
	})
	if err != nil {
		t.Fatalf("check through c3 at the revocation's token: %v", err)
	}
	if got.GetPermissionship() != noPermission {
		t.Errorf("check through c3 at the revocation's token: got %s, want %s", got.GetPermissionship(), noPermission)
	}

	ds.requireChain(t, map[string]v1.CheckPermissionResponse_Permissionship{
		"c1": hasPermission, "c2": noPermission, "c3": noPermission,
	})
	for _, id := range []string{"c2", "c3"} {
		ids, err := lookupResourcesAs(t, ds.admin, "dataset", "read", "delegation:"+id)
		if err != nil {
			t.Fatalf("LookupResources through %s: %v", id, err)
		}
		if len(ids) != 0 {
			t.Errorf("LookupResources through revoked %s = %v, want none", id, ids)
		}
	}
	explained := ds.explain(t, "c3", "dataset:revenue", "read")
	if !strings.Contains(explained.GetLimitedBy(), "delegation:c3 was revoked") {
		t.Errorf("ExplainCheck c3: limited_by %q, want it to name the revoked delegation:c3", explained.GetLimitedBy())
	}

	// The records stay, marked revoked; their relationships are gone.
	for _, id := range []string{"c2", "c3"} {
		got, err := ds.adminDelegations.GetDelegation(testContext(t), &mandatev1.GetDelegationRequest{Id: id})
		if err != nil {
			t.Fatalf("GetDelegation %s: %v", id, err)
		}
		if got.GetDelegation().GetRevokedAt() == nil {
			t.Errorf("GetDelegation %s: revoked_at is not set", id)
		}
		if rels := ds.readAll(t, &v1.RelationshipFilter{ResourceType: "delegation", OptionalResourceId: id}); len(rels) != 0 {
			t.Errorf("relationships of revoked delegation %s remain: %v", id, rels)
		}
	}
	if rels := ds.readAll(t, &v1.RelationshipFilter{ResourceType: "delegation", OptionalResourceId: "c1"}); len(rels) != 2 {
		t.Errorf("relationships of c1 after revoking c2 = %v, want its delegator and delegate", rels)
	}

	// A revoked delegation cannot be delegated from again.
	_, err = ds.as["summarizer"].delegations.Delegate(testContext(t), &mandatev1.DelegateRequest{
		Id: "c2b", Delegator: "delegation:c2", Delegate: "writer",
		Scope: []*mandatev1.Scope{scope("dataset:revenue", "read")},
	})
	requireStatus(t, err, codes.FailedPrecondition, `"c2"`, "revoked")
}

func TestDelegationExpiryCascades(t *testing.T) {
	ds := startChain(t, map[string]time.Duration{"c1": 20 * time.Second, "c2": 10 * time.Second})
	ds.requireChain(t, allChain(hasPermission))

	c3, err := ds.adminDelegations.GetDelegation(testContext(t), &mandatev1.GetDelegationRequest{Id: "c3"})
	if err != nil {
		t.Fatalf("GetDelegation c3: %v", err)
	}
	if got, want := c3.GetDelegation().GetExpiresAt().AsTime(), ds.start.Add(10*time.Second); !got.Equal(want) {
		t.Errorf("c3 expires at %v, want c2's expiry %v, which it inherits", got, want)
	}

	// At c2's expiry, c2 and everything below it stop granting at once.
	ds.clock.Set(ds.start.Add(10 * time.Second))
	ds.requireChain(t, map[string]v1.CheckPermissionResponse_Permissionship{
		"c1": hasPermission, "c2": noPermission, "c3": noPermission,
	})
	// c3 carries the expiry it inherited, so it is the first expired link
	// found on the way up.
	explained := ds.explain(t, "c3", "dataset:revenue", "read")
	if want := "delegation:c3 expired at " + ds.start.Add(10*time.Second).Format(time.RFC3339); explained.GetLimitedBy() != want {
		t.Errorf("ExplainCheck c3 after c2's expiry: limited_by %q, want %q", explained.GetLimitedBy(), want)
	}
	ids, err := lookupResourcesAs(t, ds.admin, "dataset", "read", "delegation:c3")
	if err != nil {
		t.Fatalf("LookupResources through c3: %v", err)
	}
	if len(ids) != 0 {
		t.Errorf("LookupResources through expired c3 = %v, want none", ids)
	}

	// At c1's expiry, the whole chain denies.
	ds.clock.Set(ds.start.Add(20 * time.Second))
	ds.requireChain(t, allChain(noPermission))
	explained = ds.explain(t, "c3", "dataset:revenue", "read")
	if !strings.Contains(explained.GetLimitedBy(), "expired") {
		t.Errorf("ExplainCheck c3 after c1's expiry: limited_by %q, want an expired link", explained.GetLimitedBy())
	}
}

func TestDelegationSuspendFirstAgent(t *testing.T) {
	ds := startChain(t, nil)

	if _, err := ds.agents.SuspendAgent(testContext(t), &mandatev1.SuspendAgentRequest{Id: "planner", Reason: "investigation"}); err != nil {
		t.Fatalf("SuspendAgent planner: %v", err)
	}
	ds.requireChain(t, allChain(noPermission))
	for _, id := range []string{"c1", "c2", "c3"} {
		ids, err := lookupResourcesAs(t, ds.as[chainDelegates[id]].v1, "dataset", "read", "delegation:"+id)
		if err != nil {
			t.Fatalf("LookupResources through %s: %v", id, err)
		}
		if len(ids) != 0 {
			t.Errorf("LookupResources through %s with planner suspended = %v, want none", id, ids)
		}
	}
	explained := ds.explain(t, "c3", "dataset:revenue", "read")
	if explained.GetLimitedBy() != "agent:planner is not active" {
		t.Errorf("ExplainCheck c3 with planner suspended: limited_by %q, want %q", explained.GetLimitedBy(), "agent:planner is not active")
	}

	if _, err := ds.agents.ReactivateAgent(testContext(t), &mandatev1.ReactivateAgentRequest{Id: "planner"}); err != nil {
		t.Fatalf("ReactivateAgent planner: %v", err)
	}
	ds.requireChain(t, allChain(hasPermission))
}

func TestDelegationSuspendMiddleAgent(t *testing.T) {
	ds := startChain(t, nil)

	if _, err := ds.agents.SuspendAgent(testContext(t), &mandatev1.SuspendAgentRequest{Id: "summarizer", Reason: "investigation"}); err != nil {
		t.Fatalf("SuspendAgent summarizer: %v", err)
	}
	ds.requireChain(t, map[string]v1.CheckPermissionResponse_Permissionship{
		"c1": hasPermission, "c2": noPermission, "c3": noPermission,
	})

	if _, err := ds.agents.ReactivateAgent(testContext(t), &mandatev1.ReactivateAgentRequest{Id: "summarizer"}); err != nil {
		t.Fatalf("ReactivateAgent summarizer: %v", err)
	}
	ds.requireChain(t, allChain(hasPermission))
}

func TestDelegationDecommissionMiddleAgent(t *testing.T) {
	ds := startChain(t, nil)

	if _, err := ds.agents.DecommissionAgent(testContext(t), &mandatev1.DecommissionAgentRequest{Id: "researcher"}); err != nil {
		t.Fatalf("DecommissionAgent researcher: %v", err)
	}

	// researcher's key is no longer accepted, so only the administrator
	// can ask about c1.
	_, err := checkAs(t, ds.as["researcher"].v1, "dataset:revenue", "read", "delegation:c1", nil)
	requireStatus(t, err, codes.Unauthenticated, `"researcher"`, "decommissioned")
	requirePermissionAs(t, ds.admin, "dataset:revenue", "read", "delegation:c1", noPermission)
	for _, id := range []string{"c2", "c3"} {
		ds.requireThrough(t, id, "dataset:revenue", "read", noPermission)
	}

	for _, id := range []string{"c1", "c2", "c3"} {
		got, err := ds.adminDelegations.GetDelegation(testContext(t), &mandatev1.GetDelegationRequest{Id: id})
		if err != nil {
			t.Fatalf("GetDelegation %s: %v", id, err)
		}
		if got.GetDelegation().GetRevokedAt() == nil {
			t.Errorf("GetDelegation %s after decommissioning researcher: revoked_at is not set", id)
		}
	}
	if rels := ds.readAll(t, &v1.RelationshipFilter{ResourceType: "delegation"}); len(rels) != 0 {
		t.Errorf("delegation relationships after decommissioning researcher: %v, want none", rels)
	}
	listed, err := ds.adminDelegations.ListDelegations(testContext(t), &mandatev1.ListDelegationsRequest{})
	if err != nil {
		t.Fatalf("ListDelegations: %v", err)
	}
	if n := len(listed.GetDelegations()); n != 0 {
		t.Errorf("ListDelegations without revoked ones returned %d delegations, want 0", n)
	}

	// planner's own access is untouched.
	requirePermissionAs(t, ds.admin, "dataset:revenue", "read", "agent:planner", hasPermission)
}

func TestDelegationDecommissionLastAgent(t *testing.T) {
	ds := startChain(t, nil)

	if _, err := ds.agents.DecommissionAgent(testContext(t), &mandatev1.DecommissionAgentRequest{Id: "writer"}); err != nil {
		t.Fatalf("DecommissionAgent writer: %v", err)
	}
	requirePermissionAs(t, ds.admin, "dataset:revenue", "read", "delegation:c3", noPermission)
	ds.requireThrough(t, "c1", "dataset:revenue", "read", hasPermission)
	ds.requireThrough(t, "c2", "dataset:revenue", "read", hasPermission)

	listed, err := ds.adminDelegations.ListDelegations(testContext(t), &mandatev1.ListDelegationsRequest{IncludeRevoked: true})
	if err != nil {
		t.Fatalf("ListDelegations: %v", err)
	}
	for _, d := range listed.GetDelegations() {
		if revoked := d.GetRevokedAt() != nil; revoked != (d.GetId() == "c3") {
			t.Errorf("delegation %s after decommissioning writer: revoked %t, want %t", d.GetId(), revoked, d.GetId() == "c3")
		}
	}
}
