package server_test

import (
	"errors"
	"io"
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/schema"
)

// drain reads a server stream to its end and returns the first error.
func drain[T any](recv func() (T, error)) error {
	for {
		if _, err := recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// startAuthzFixture starts a server with two finance agents, bot and peer,
// and a dataset that finance members read.
func startAuthzFixture(t *testing.T) (*agentServer, agentClients) {
	t.Helper()
	as := startAgentServer(t, wednesdayMorning)
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Department: "finance"})
	as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "peer", Owner: "alice", Department: "finance"})
	as.touch(t, "dataset:payroll#reader@department:finance#member", "dataset:logs#reader@agent:peer")
	return as, as.connectAs(t, bot)
}

func TestAgentAsksAboutAnotherAgent(t *testing.T) {
	t.Parallel()
	_, bot := startAuthzFixture(t)

	for _, subject := range []string{"agent:peer", "user:alice", "department:finance#member"} {
		_, err := checkAs(t, bot.v1, "dataset:payroll", "read", subject, nil)
		requireStatus(t, err, codes.PermissionDenied, `agent "bot" may only ask about itself`, subject)

		_, err = lookupResourcesAs(t, bot.v1, "dataset", "read", subject)
		requireStatus(t, err, codes.PermissionDenied, `agent "bot" may only ask about itself`, subject)
	}

	// In a bulk check only the item about another agent fails, and the
	// item about the caller itself gets a result.
	resp, err := bot.v1.CheckBulkPermissions(testContext(t), &v1.CheckBulkPermissionsRequest{
		Consistency: fullyConsistent(),
		Items: []*v1.CheckBulkPermissionsRequestItem{
			{Resource: objectRef("dataset", "payroll"), Permission: "read", Subject: subjectRef(t, "agent:bot")},
			{Resource: objectRef("dataset", "logs"), Permission: "read", Subject: subjectRef(t, "agent:peer")},
		},
	})
	if err != nil {
		t.Fatalf("CheckBulkPermissions: %v", err)
	}
	if n := len(resp.GetPairs()); n != 2 {
		t.Fatalf("CheckBulkPermissions returned %d pairs, want 2", n)
	}
	own := resp.GetPairs()[0]
	if got, want := own.GetItem().GetPermissionship(), v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION; got != want {
		t.Errorf("bulk item about agent:bot: got %s (error %v), want %s", got, own.GetError(), want)
	}
	other := resp.GetPairs()[1]
	if got := codes.Code(other.GetError().GetCode()); got != codes.PermissionDenied {
		t.Errorf("bulk item about agent:peer: got code %s (item %v), want PermissionDenied", got, other.GetItem())
	}
	t.Logf("bulk item about agent:peer: %s", other.GetError().GetMessage())
}

func TestAgentCallsAdminOnlyAPI(t *testing.T) {
	t.Parallel()
	as, bot := startAuthzFixture(t)
	before := as.headToken(t)
	ctx := testContext(t)

	calls := []struct {
		name string
		call func() error
	}{
		{"CreateAgent", func() error {
			pub, _ := newAgentKey(t)
			_, err := bot.agents.CreateAgent(ctx, &mandatev1.CreateAgentRequest{Id: "spawn", Owner: "alice", PublicKey: pub})
			return err
		}},
		{"ListAgents", func() error {
			_, err := bot.agents.ListAgents(ctx, &mandatev1.ListAgentsRequest{})
			return err
		}},
		{"GetAgent of another agent", func() error {
			_, err := bot.agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: "peer"})
			return err
		}},
		{"UpdateAgent of itself", func() error {
			risk := "low"
			_, err := bot.agents.UpdateAgent(ctx, &mandatev1.UpdateAgentRequest{Id: "bot", RiskLevel: &risk})
			return err
		}},
		{"SuspendAgent of another agent", func() error {
			_, err := bot.agents.SuspendAgent(ctx, &mandatev1.SuspendAgentRequest{Id: "peer"})
			return err
		}},
		{"ReactivateAgent of itself", func() error {
			_, err := bot.agents.ReactivateAgent(ctx, &mandatev1.ReactivateAgentRequest{Id: "bot"})
			return err
		}},
		{"DecommissionAgent of another agent", func() error {
			_, err := bot.agents.DecommissionAgent(ctx, &mandatev1.DecommissionAgentRequest{Id: "peer"})
			return err
		}},
		{"SetOperationalState", func() error {
			_, err := bot.operations.SetOperationalState(ctx, &mandatev1.SetOperationalStateRequest{State: "incident"})
			return err
		}},
		{"LookupSubjects", func() error {
			_, err := lookupSubjectsAs(t, bot.v1, "dataset:payroll", "read", "agent")
			return err
		}},
		{"ReadRelationships", func() error {
			stream, err := bot.v1.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: "dataset"},
			})
			if err != nil {
				return err
			}
			return drain(stream.Recv)
		}},
		{"ExpandPermissionTree", func() error {
			_, err := bot.v1.ExpandPermissionTree(ctx, &v1.ExpandPermissionTreeRequest{
				Resource: objectRef("dataset", "payroll"), Permission: "read",
			})
			return err
		}},
		{"ExportBulkRelationships", func() error {
			stream, err := bot.v1.ExportBulkRelationships(ctx, &v1.ExportBulkRelationshipsRequest{})
			if err != nil {
				return err
			}
			return drain(stream.Recv)
		}},
		{"Watch", func() error {
			stream, err := bot.v1.Watch(ctx, &v1.WatchRequest{})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
		{"WriteSchema", func() error {
			_, err := bot.v1.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schema.AgentIAM + "\ndefinition extra {}\n"})
			return err
		}},
		{"WriteRelationships without the graph right", func() error {
			_, err := bot.v1.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{
				update(v1.RelationshipUpdate_OPERATION_TOUCH, rel(t, "dataset:payroll#reader@agent:bot")),
			}})
			return err
		}},
		{"DeleteRelationships without the graph right", func() error {
			_, err := bot.v1.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: "dataset"},
			})
			return err
		}},
		{"ImportBulkRelationships without the graph right", func() error {
			stream, err := bot.v1.ImportBulkRelationships(ctx)
			if err != nil {
				return err
			}
			if err := stream.Send(&v1.ImportBulkRelationshipsRequest{
				Relationships: []*v1.Relationship{rel(t, "dataset:secrets#reader@agent:bot")},
			}); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			_, err = stream.CloseAndRecv()
			return err
		}},
	}
	for _, c := range calls {
		err := c.call()
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s as agent:bot: got %v, want code PermissionDenied", c.name, err)
			continue
		}
		t.Logf("%s: %s", c.name, status.Convert(err).Message())
	}
	if after := as.headToken(t); after != before {
		t.Errorf("head revision moved from %s to %s after calls that were all denied", before, after)
	}

	// The calls an agent may make about itself still work.
	if _, err := bot.agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: "bot"}); err != nil {
		t.Errorf("GetAgent of itself: %v", err)
	}
	requirePermissionAs(t, bot.v1, "dataset:payroll", "read", "agent:bot", v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
}

func TestAgentRelationshipWriter(t *testing.T) {
	t.Parallel()
	as, bot := startAuthzFixture(t)
	as.touch(t, "platform:mandate#relationship_writer@agent:bot")
	ctx := testContext(t)
	write := func(client agentClients, rels ...string) error {
		req := &v1.WriteRelationshipsRequest{}
		for _, s := range rels {
			req.Updates = append(req.Updates, update(v1.RelationshipUpdate_OPERATION_TOUCH, rel(t, s)))
		}
		_, err := client.v1.WriteRelationships(ctx, req)
		return err
	}

	if err := write(bot, "dataset:reports#reader@agent:peer", "tool:mailer#invoker@department:finance#member"); err != nil {
		t.Fatalf("WriteRelationships of dataset and tool as a relationship writer: %v", err)
	}
	if _, err := bot.v1.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "dataset", OptionalResourceId: "logs"},
	}); err != nil {
		t.Fatalf("DeleteRelationships of dataset:logs as a relationship writer: %v", err)
	}
	got := as.readAll(t, &v1.RelationshipFilter{ResourceType: "dataset"})
	want := []string{"dataset:payroll#reader@department:finance#member", "dataset:reports#reader@agent:peer"}
	if !slices.Equal(got, want) {
		t.Errorf("dataset relationships after the agent's writes: got %q, want %q", got, want)
	}

	before := as.headToken(t)
	everythingBefore := as.readEverything(t)
	denied := []struct {
		name string
		call func() error
	}{
		{"write agent", func() error { return write(bot, "agent:peer#owner@user:mallory") }},
		{"write delegation", func() error { return write(bot, "delegation:d1#delegate@agent:bot") }},
		{"write platform schema_writer", func() error { return write(bot, "platform:mandate#schema_writer@agent:bot") }},
		{"write platform relationship_writer", func() error {
			return write(bot, "platform:mandate#relationship_writer@agent:peer")
		}},
		{"batch with one agent relationship", func() error {
			return write(bot, "dataset:secrets#reader@agent:bot", "agent:bot#owner@user:mallory")
		}},
		{"delete agent relationships", func() error {
			_, err := bot.v1.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: "agent", OptionalResourceId: "peer"},
			})
			return err
		}},
		{"delete platform relationships", func() error {
			_, err := bot.v1.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: "platform"},
			})
			return err
		}},
		{"delete by subject across every type", func() error {
			_, err := bot.v1.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{
				RelationshipFilter: &v1.RelationshipFilter{
					OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "agent", OptionalSubjectId: "peer"},
				},
			})
			return err
		}},
		{"import agent relationships", func() error {
			stream, err := bot.v1.ImportBulkRelationships(ctx)
			if err != nil {
				return err
			}
			if err := stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: []*v1.Relationship{
				rel(t, "dataset:imported#reader@agent:bot"),
				rel(t, "agent:bot#owner@user:mallory"),
			}}); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			_, err = stream.CloseAndRecv()
			return err
		}},
		{"write schema", func() error {
			_, err := bot.v1.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schema.AgentIAM + "\ndefinition extra {}\n"})
			return err
		}},
	}
	for _, c := range denied {
		err := c.call()
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s as a relationship writer: got %v, want code PermissionDenied", c.name, err)
			continue
		}
		t.Logf("%s: %s", c.name, status.Convert(err).Message())
	}
	if after := as.headToken(t); after != before {
		t.Errorf("head revision moved from %s to %s after denied writes", before, after)
	}
	if after := as.readEverything(t); !slices.Equal(after, everythingBefore) {
		t.Errorf("relationships changed after denied writes:\ngot  %q\nwant %q", after, everythingBefore)
	}

	// A suspended agent loses the right with every other permission.
	if _, err := as.agents.SuspendAgent(ctx, &mandatev1.SuspendAgentRequest{Id: "bot"}); err != nil {
		t.Fatalf("SuspendAgent: %v", err)
	}
	requireStatus(t, write(bot, "dataset:reports#reader@agent:bot"), codes.PermissionDenied, "write_relationships")
	if _, err := as.agents.ReactivateAgent(ctx, &mandatev1.ReactivateAgentRequest{Id: "bot"}); err != nil {
		t.Fatalf("ReactivateAgent: %v", err)
	}
	if err := write(bot, "dataset:reports#reader@agent:bot"); err != nil {
		t.Errorf("WriteRelationships after reactivation: %v", err)
	}

	// Revoking the relationship revokes the right on the next call.
	if _, err := as.admin.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "platform", OptionalRelation: "relationship_writer"},
	}); err != nil {
		t.Fatalf("DeleteRelationships of the writer right: %v", err)
	}
	requireStatus(t, write(bot, "dataset:reports#writer@agent:bot"), codes.PermissionDenied, "write_relationships")
}

// The right can also come through a role, as the schema allows
// role#assignee as a relationship writer.
func TestAgentRelationshipWriterByRole(t *testing.T) {
	t.Parallel()
	as := startAgentServer(t, wednesdayMorning)
	etl := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "etl", Owner: "bob", Role: "loader"})
	other := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "other", Owner: "bob"})
	as.touch(t, "platform:mandate#relationship_writer@role:loader#assignee")
	req := &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{
		update(v1.RelationshipUpdate_OPERATION_TOUCH, rel(t, "dataset:staging#writer@agent:etl")),
	}}
	if _, err := as.connectAs(t, etl).v1.WriteRelationships(testContext(t), req); err != nil {
		t.Errorf("WriteRelationships by an agent whose role is a relationship writer: %v", err)
	}
	_, err := as.connectAs(t, other).v1.WriteRelationships(testContext(t), req)
	requireStatus(t, err, codes.PermissionDenied, `agent "other" lacks write_relationships`)
}
