package server_test

import (
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

// agentStore is everything an agent call could change: the head revision,
// every relationship and every agent record.
type agentStore struct {
	head   string
	rels   []string
	agents []string
}

func (as *agentServer) readAgentStore(t *testing.T) agentStore {
	t.Helper()
	resp, err := as.agents.ListAgents(testContext(t), &mandatev1.ListAgentsRequest{})
	if err != nil {
		t.Fatalf("ListAgents: %v", err)
	}
	st := agentStore{head: as.headToken(t), rels: as.readEverything(t)}
	for _, a := range resp.GetAgents() {
		st.agents = append(st.agents, a.String())
	}
	return st
}

func requireAgentStoreUnchanged(t *testing.T, before, after agentStore) {
	t.Helper()
	if after.head != before.head {
		t.Errorf("head revision moved from %s to %s", before.head, after.head)
	}
	if !slices.Equal(after.rels, before.rels) {
		t.Errorf("relationships changed:\ngot  %q\nwant %q", after.rels, before.rels)
	}
	if !slices.Equal(after.agents, before.agents) {
		t.Errorf("agent records changed:\ngot  %q\nwant %q", after.agents, before.agents)
	}
}

func TestAgentCreateInvalid(t *testing.T) {
	t.Parallel()
	as := startAgentServer(t, wednesdayMorning)
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "existing", Owner: "alice", Department: "finance"})
	pub, _ := newAgentKey(t)
	valid := func() *mandatev1.CreateAgentRequest {
		return &mandatev1.CreateAgentRequest{
			Id: "new-bot", Owner: "alice", Department: "finance", Role: "analyst",
			Purpose: "reads reports", RiskLevel: "low", PublicKey: pub,
		}
	}
	longID := strings.Repeat("a", 1025)
	tests := []struct {
		name      string
		edit      func(*mandatev1.CreateAgentRequest)
		fragments []string
	}{
		{"empty id", func(r *mandatev1.CreateAgentRequest) { r.Id = "" }, []string{"agent id is required"}},
		{"id with a space", func(r *mandatev1.CreateAgentRequest) { r.Id = "bad bot" }, []string{`invalid agent id "bad bot"`}},
		{"id with a colon", func(r *mandatev1.CreateAgentRequest) { r.Id = "agent:bot" }, []string{`invalid agent id "agent:bot"`}},
		{"id with a hash", func(r *mandatev1.CreateAgentRequest) { r.Id = "bot#owner" }, []string{`invalid agent id "bot#owner"`}},
		{"id of 1025 characters", func(r *mandatev1.CreateAgentRequest) { r.Id = longID }, []string{"invalid agent id", "1 to 1024 characters"}},
		{"wildcard id", func(r *mandatev1.CreateAgentRequest) { r.Id = "*" }, []string{`invalid agent id "*"`}},
		{"empty owner", func(r *mandatev1.CreateAgentRequest) { r.Owner = "" }, []string{"owner is required"}},
		{"owner with a space", func(r *mandatev1.CreateAgentRequest) { r.Owner = "alice smith" }, []string{`invalid owner "alice smith"`}},
		{"owner with a type", func(r *mandatev1.CreateAgentRequest) { r.Owner = "user:alice" }, []string{`invalid owner "user:alice"`}},
		{"department with a space", func(r *mandatev1.CreateAgentRequest) { r.Department = "fin ance" }, []string{`invalid department "fin ance"`}},
		{"role with a hash", func(r *mandatev1.CreateAgentRequest) { r.Role = "analyst#assignee" }, []string{`invalid role "analyst#assignee"`}},
		{"unknown risk level", func(r *mandatev1.CreateAgentRequest) { r.RiskLevel = "extreme" }, []string{`invalid risk level "extreme"`, "low, medium or high"}},
		{"risk level in capitals", func(r *mandatev1.CreateAgentRequest) { r.RiskLevel = "LOW" }, []string{`invalid risk level "LOW"`}},
		{"purpose over 1024 bytes", func(r *mandatev1.CreateAgentRequest) { r.Purpose = strings.Repeat("p", 1025) }, []string{"purpose is 1025 bytes", "1024"}},
		{"no public key", func(r *mandatev1.CreateAgentRequest) { r.PublicKey = nil }, []string{"public key", "got 0"}},
		{"public key of 31 bytes", func(r *mandatev1.CreateAgentRequest) { r.PublicKey = pub[:31] }, []string{"public key", "32 bytes, got 31"}},
		{"public key of 33 bytes", func(r *mandatev1.CreateAgentRequest) { r.PublicKey = append(slices.Clone(pub), 0) }, []string{"public key", "got 33"}},
		{"private key instead of public key", func(r *mandatev1.CreateAgentRequest) {
			_, priv := newAgentKey(t)
			r.PublicKey = []byte(priv)
		}, []string{"public key", "got 64"}},
	}
	before := as.readAgentStore(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := valid()
			tc.edit(req)
			_, err := as.agents.CreateAgent(testContext(t), req)
			requireStatus(t, err, codes.InvalidArgument, tc.fragments...)
		})
	}
	requireAgentStoreUnchanged(t, before, as.readAgentStore(t))

	// The valid request itself succeeds, so each case failed on its edit.
	if _, err := as.agents.CreateAgent(testContext(t), valid()); err != nil {
		t.Fatalf("CreateAgent of the valid request: %v", err)
	}
}

func TestAgentCreateDuplicate(t *testing.T) {
	t.Parallel()
	as := startAgentServer(t, wednesdayMorning)
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Department: "finance"})
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "old", Owner: "alice", Department: "finance"})
	if _, err := as.agents.DecommissionAgent(testContext(t), &mandatev1.DecommissionAgentRequest{Id: "old"}); err != nil {
		t.Fatalf("DecommissionAgent: %v", err)
	}
	before := as.readAgentStore(t)

	for _, id := range []string{"bot", "old"} {
		pub, _ := newAgentKey(t)
		_, err := as.agents.CreateAgent(testContext(t), &mandatev1.CreateAgentRequest{
			Id: id, Owner: "mallory", Department: "sales", PublicKey: pub,
		})
		requireStatus(t, err, codes.AlreadyExists, `agent "`+id+`"`)
	}
	requireAgentStoreUnchanged(t, before, as.readAgentStore(t))
}

// A failed update or lifecycle change must leave the agent as it was,
// also when the identity package already rewrote relationships in the
// transaction before it found the invalid value.
func TestAgentUpdateInvalid(t *testing.T) {
	t.Parallel()
	as := startAgentServer(t, wednesdayMorning)
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Department: "finance", Role: "analyst"})
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "gone", Owner: "alice"})
	if _, err := as.agents.DecommissionAgent(testContext(t), &mandatev1.DecommissionAgentRequest{Id: "gone"}); err != nil {
		t.Fatalf("DecommissionAgent: %v", err)
	}
	before := as.readAgentStore(t)
	ctx := testContext(t)
	str := proto.String

	tests := []struct {
		name      string
		call      func() error
		code      codes.Code
		fragments []string
	}{
		{"risk level", func() error {
			_, err := as.agents.UpdateAgent(ctx, &mandatev1.UpdateAgentRequest{Id: "bot", RiskLevel: str("critical")})
			return err
		}, codes.InvalidArgument, []string{`invalid risk level "critical"`}},
		{"department with a new department and an invalid risk", func() error {
			_, err := as.agents.UpdateAgent(ctx, &mandatev1.UpdateAgentRequest{Id: "bot", Department: str("sales"), RiskLevel: str("")})
			return err
		}, codes.InvalidArgument, []string{`invalid risk level ""`}},
		{"owner cleared", func() error {
			_, err := as.agents.UpdateAgent(ctx, &mandatev1.UpdateAgentRequest{Id: "bot", Owner: str("")})
			return err
		}, codes.InvalidArgument, []string{"owner is required"}},
		{"department with a space", func() error {
			_, err := as.agents.UpdateAgent(ctx, &mandatev1.UpdateAgentRequest{Id: "bot", Department: str("fin ance")})
			return err
		}, codes.InvalidArgument, []string{`invalid department "fin ance"`}},
		{"unknown agent", func() error {
			_, err := as.agents.UpdateAgent(ctx, &mandatev1.UpdateAgentRequest{Id: "ghost", RiskLevel: str("low")})
			return err
		}, codes.NotFound, []string{`agent "ghost"`}},
		{"suspend unknown agent", func() error {
			_, err := as.agents.SuspendAgent(ctx, &mandatev1.SuspendAgentRequest{Id: "ghost"})
			return err
		}, codes.NotFound, []string{`agent "ghost"`}},
		{"get unknown agent", func() error {
			_, err := as.agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: "ghost"})
			return err
		}, codes.NotFound, []string{`agent "ghost"`}},
		{"update decommissioned agent", func() error {
			_, err := as.agents.UpdateAgent(ctx, &mandatev1.UpdateAgentRequest{Id: "gone", RiskLevel: str("low")})
			return err
		}, codes.FailedPrecondition, []string{`agent "gone" is decommissioned`}},
		{"reactivate decommissioned agent", func() error {
			_, err := as.agents.ReactivateAgent(ctx, &mandatev1.ReactivateAgentRequest{Id: "gone"})
			return err
		}, codes.FailedPrecondition, []string{`agent "gone" is decommissioned`}},
		{"suspend decommissioned agent", func() error {
			_, err := as.agents.SuspendAgent(ctx, &mandatev1.SuspendAgentRequest{Id: "gone"})
			return err
		}, codes.FailedPrecondition, []string{`agent "gone" is decommissioned`}},
		{"decommission decommissioned agent", func() error {
			_, err := as.agents.DecommissionAgent(ctx, &mandatev1.DecommissionAgentRequest{Id: "gone"})
			return err
		}, codes.FailedPrecondition, []string{`agent "gone" is decommissioned`}},
		{"unknown operational state", func() error {
			_, err := as.operations.SetOperationalState(ctx, &mandatev1.SetOperationalStateRequest{State: "panic"})
			return err
		}, codes.InvalidArgument, []string{`invalid operational state "panic"`, "normal, incident or maintenance"}},
		{"unknown state filter", func() error {
			_, err := as.agents.ListAgents(ctx, &mandatev1.ListAgentsRequest{State: mandatev1.AgentState(42)})
			return err
		}, codes.InvalidArgument, []string{"42"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireStatus(t, tc.call(), tc.code, tc.fragments...)
		})
	}
	requireAgentStoreUnchanged(t, before, as.readAgentStore(t))
	resp, err := as.operations.GetOperationalState(ctx, &mandatev1.GetOperationalStateRequest{})
	if err != nil {
		t.Fatalf("GetOperationalState: %v", err)
	}
	if got := resp.GetState(); got != "normal" {
		t.Errorf("operational state after an invalid change: got %q, want \"normal\"", got)
	}
}

// An administrator's WriteSchema may not drop the agent definitions while
// agents exist, because the identity records depend on them.
func TestAgentSchemaKeepsAgentTypes(t *testing.T) {
	t.Parallel()
	as := startAgentServer(t, wednesdayMorning)
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice"})
	before := as.readAgentStore(t)
	_, err := as.admin.WriteSchema(testContext(t), &v1.WriteSchemaRequest{Schema: "definition user {}\n\ndefinition dataset {\n  relation reader: user\n}\n"})
	requireStatus(t, err, codes.FailedPrecondition, "part of Mandate's agent schema and cannot be removed")
	requireAgentStoreUnchanged(t, before, as.readAgentStore(t))
}

// The public key is stored as sent: the agent's record returns it, and
// tokens signed with the matching private key are accepted.
func TestAgentCreateStoresKey(t *testing.T) {
	t.Parallel()
	as := startAgentServer(t, wednesdayMorning)
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Purpose: "reads reports"})
	resp, err := as.connectAs(t, bot).agents.GetAgent(testContext(t), &mandatev1.GetAgentRequest{Id: "bot"})
	if err != nil {
		t.Fatalf("GetAgent as itself: %v", err)
	}
	a := resp.GetAgent()
	if got, want := ed25519.PublicKey(a.GetPublicKey()), bot.key.Public().(ed25519.PublicKey); !got.Equal(want) {
		t.Errorf("public key: got %x, want %x", got, want)
	}
	if got, want := a.GetRiskLevel(), "low"; got != want {
		t.Errorf("risk level when none is given: got %q, want %q", got, want)
	}
	if got, want := a.GetState(), mandatev1.AgentState_AGENT_STATE_ACTIVE; got != want {
		t.Errorf("state: got %s, want %s", got, want)
	}
	if got, want := a.GetCreatedAt().AsTime(), wednesdayMorning; !got.Equal(want) {
		t.Errorf("created at: got %s, want %s (the server clock)", got, want)
	}
}
