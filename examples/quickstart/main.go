// Command quickstart writes a small agent schema and some relationships to
// a Mandate (or SpiceDB) server with the authzed-go client, then checks a
// few permissions and prints each result.
//
//	go run ./examples/quickstart --addr 127.0.0.1:50051 --key dev-key
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// schemaText models agents that act for an owner, belong to a department
// and hold roles, and datasets that grant access to readers, writers, a
// department's members and role assignees.
const schemaText = `
definition user {}

definition department {
	relation member: user | agent
}

definition role {
	relation assignee: agent
}

definition agent {
	relation owner: user
	relation department: department
	relation role: role

	// The owner and the members of the agent's department may inspect it.
	permission inspect = owner + department->member
}

definition dataset {
	relation department: department
	relation reader: user | agent | role#assignee
	relation writer: user | agent | role#assignee
	relation suspended: agent

	permission write = writer - suspended
	permission read = (reader + writer + department->member) - suspended

	// Export needs read access and membership of the dataset's department.
	permission export = read & department->member
}
`

// relationships is the example data. It is written with TOUCH, so running
// the program again against the same data leaves the graph unchanged.
var relationships = []string{
	"department:finance#member@user:alice",
	"department:finance#member@agent:report-bot",
	"department:finance#member@agent:old-bot",
	"agent:report-bot#owner@user:alice",
	"agent:report-bot#department@department:finance",
	"agent:etl-bot#owner@user:bob",
	"agent:etl-bot#role@role:etl",
	"role:etl#assignee@agent:etl-bot",
	"dataset:payroll#department@department:finance",
	"dataset:payroll#writer@role:etl#assignee",
	"dataset:payroll#suspended@agent:old-bot",
	"dataset:leads#reader@user:bob",
}

type question struct {
	subject    string
	permission string
	resource   string
}

var questions = []question{
	{"agent:report-bot", "read", "dataset:payroll"},
	{"agent:report-bot", "write", "dataset:payroll"},
	{"agent:etl-bot", "write", "dataset:payroll"},
	{"agent:report-bot", "export", "dataset:payroll"},
	{"agent:etl-bot", "export", "dataset:payroll"},
	{"agent:old-bot", "read", "dataset:payroll"},
	{"agent:report-bot", "read", "dataset:leads"},
	{"user:alice", "inspect", "agent:report-bot"},
	{"user:bob", "inspect", "agent:report-bot"},
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "host:port of the server's gRPC API")
	key := flag.String("key", "", "preshared key sent as the bearer token; empty for a server started with --insecure-no-auth")
	flag.Parse()

	if err := run(*addr, *key); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(addr, key string) error {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if key != "" {
		opts = append(opts, grpcutil.WithInsecureBearerToken(key))
	}
	client, err := authzed.NewClient(addr, opts...)
	if err != nil {
		return fmt.Errorf("create client for %s: %w", addr, err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schemaText}); err != nil {
		return fmt.Errorf("write schema to %s: %w", addr, err)
	}
	fmt.Println("wrote schema: user, department, role, agent, dataset")

	written, err := writeRelationships(ctx, client)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d relationships\n", len(relationships))

	// Reading at least as fresh as the write's ZedToken guarantees that
	// the checks see the relationships just written.
	consistency := &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: written}}
	for _, q := range questions {
		answer, err := check(ctx, client, consistency, q)
		if err != nil {
			return err
		}
		fmt.Printf("%-17s %-8s %-17s %s\n", q.subject, q.permission, q.resource, answer)
	}
	return nil
}

func writeRelationships(ctx context.Context, client *authzed.Client) (*v1.ZedToken, error) {
	updates := make([]*v1.RelationshipUpdate, 0, len(relationships))
	for _, text := range relationships {
		rel, err := parseRelationship(text)
		if err != nil {
			return nil, err
		}
		updates = append(updates, &v1.RelationshipUpdate{
			Operation:    v1.RelationshipUpdate_OPERATION_TOUCH,
			Relationship: rel,
		})
	}
	resp, err := client.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates})
	if err != nil {
		return nil, fmt.Errorf("write relationships: %w", err)
	}
	return resp.GetWrittenAt(), nil
}

func check(ctx context.Context, client *authzed.Client, consistency *v1.Consistency, q question) (string, error) {
	subject, err := parseObject(q.subject)
	if err != nil {
		return "", err
	}
	resource, err := parseObject(q.resource)
	if err != nil {
		return "", err
	}
	resp, err := client.CheckPermission(ctx, &v1.CheckPermissionRequest{
		Consistency: consistency,
		Resource:    resource,
		Permission:  q.permission,
		Subject:     &v1.SubjectReference{Object: subject},
	})
	if err != nil {
		return "", fmt.Errorf("check %s %s %s: %w", q.subject, q.permission, q.resource, err)
	}
	switch resp.GetPermissionship() {
	case v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION:
		return "allowed", nil
	case v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION:
		return "denied", nil
	default:
		return resp.GetPermissionship().String(), nil
	}
}
