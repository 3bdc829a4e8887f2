package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

const concurrencySchema = `
definition user {}

definition group {
	relation member: user | group#member
}

definition document {
	relation viewer: user | group#member
	permission view = viewer
}
`

// TestCheckDuringWrites runs checks from several goroutines while a writer
// adds groups and users, which interns new objects in the index. Every
// check reads a snapshot taken before the writes it could race with, so
// its result is fixed: run with -race, it also checks that the pooled
// walkers and the handle reads share no unguarded state.
func TestCheckDuringWrites(t *testing.T) {
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	defer g.Close()
	ctx := context.Background()
	compiled, err := schema.Compile(ctx, concurrencySchema)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	member := func(group string, subject graph.SubjectRef) *graph.Relationship {
		return &graph.Relationship{Key: graph.Key{
			ResourceType: "group", ResourceID: group, Relation: "member", Subject: subject,
		}}
	}
	_, err = g.Update(ctx, func(tx *graph.Tx) error {
		tx.SetSchema(concurrencySchema)
		tx.Touch(&graph.Relationship{Key: graph.Key{
			ResourceType: "document", ResourceID: "doc", Relation: "viewer",
			Subject: graph.SubjectRef{Type: "group", ID: "g0", Relation: "member"},
		}})
		tx.Touch(member("g0", graph.SubjectRef{Type: "user", ID: "alice"}))
		return nil
	})
	if err != nil {
		t.Fatalf("write initial relationships: %v", err)
	}
	snap := g.HeadSnapshot(time.Now())

	const writes = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= writes; i++ {
			_, err := g.Update(ctx, func(tx *graph.Tx) error {
				group := fmt.Sprintf("g%d", i)
				tx.Touch(member(fmt.Sprintf("g%d", i-1), graph.SubjectRef{Type: "group", ID: group, Relation: "member"}))
				tx.Touch(member(group, graph.SubjectRef{Type: "user", ID: fmt.Sprintf("u%d", i)}))
				return nil
			})
			if err != nil {
				t.Errorf("write group %d: %v", i, err)
				return
			}
		}
	}()

	checks := []struct {
		subject string
		want    engine.Membership
	}{
		{"alice", engine.HasPermission},
		{"u1", engine.NoPermission},
		{"nobody", engine.NoPermission},
	}
	for worker := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				c := checks[(worker+i)%len(checks)]
				// The head grows while this runs, so a check at the head
				// only needs to succeed. The group chain grows past the
				// default depth limit of 50.
				if _, err := engine.Check(compiled, g.HeadSnapshot(time.Now()), engine.Limits{MaxDepth: 1000}, engine.CheckRequest{
					Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Permission: "view",
					Subject: graph.SubjectRef{Type: "user", ID: c.subject},
				}); err != nil {
					t.Errorf("check user:%s at the head: %v", c.subject, err)
					return
				}
				got, err := engine.Check(compiled, snap, engine.Limits{}, engine.CheckRequest{
					Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Permission: "view",
					Subject: graph.SubjectRef{Type: "user", ID: c.subject},
				})
				if err != nil {
					t.Errorf("check user:%s at revision %d: %v", c.subject, snap.Revision, err)
					return
				}
				if got.Membership != c.want {
					t.Errorf("check user:%s at revision %d = %v, want %v", c.subject, snap.Revision, got.Membership, c.want)
					return
				}
			}
		}()
	}
	wg.Wait()

	// After the writes, u200 is reached through 200 nested groups.
	got, err := engine.Check(compiled, g.HeadSnapshot(time.Now()), engine.Limits{MaxDepth: 1000}, engine.CheckRequest{
		Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Permission: "view",
		Subject: graph.SubjectRef{Type: "user", ID: fmt.Sprintf("u%d", writes)},
	})
	if err != nil {
		t.Fatalf("check user:u%d after the writes: %v", writes, err)
	}
	if got.Membership != engine.HasPermission {
		t.Errorf("check user:u%d after the writes = %v, want has_permission", writes, got.Membership)
	}
}
