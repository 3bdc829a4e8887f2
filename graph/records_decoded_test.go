package graph_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/graph"
)

func TestDecodedFollowsRecordVersions(t *testing.T) {
	ctx := context.Background()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	put := func(data string) graph.Revision {
		t.Helper()
		rev, err := g.Update(ctx, func(tx *graph.Tx) error {
			if data == "" {
				tx.DeleteRecord("agent", "a1")
			} else {
				tx.PutRecord("agent", "a1", []byte(data))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	decodes := 0
	decode := func(b []byte) (*string, error) {
		decodes++
		if string(b) == "bad" {
			return nil, errors.New("bad record")
		}
		s := string(b)
		return &s, nil
	}
	read := func(rev graph.Revision) (string, bool, error) {
		t.Helper()
		snap, err := g.Snapshot(rev, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		v, ok, err := graph.Decoded(snap, "agent", "a1", decode)
		if v == nil {
			return "", ok, err
		}
		return *v, ok, err
	}

	first := put("one")
	if v, ok, err := read(first); v != "one" || !ok || err != nil {
		t.Fatalf("read at %d = %q, %v, %v; want one", first, v, ok, err)
	}
	if v, _, _ := read(first); v != "one" || decodes != 1 {
		t.Fatalf("second read = %q after %d decodes; want one after 1", v, decodes)
	}

	second := put("two")
	if v, _, _ := read(second); v != "two" || decodes != 2 {
		t.Fatalf("read after a change = %q after %d decodes; want two after 2", v, decodes)
	}
	if v, _, _ := read(first); v != "one" || decodes != 2 {
		t.Fatalf("read at the old revision = %q after %d decodes; want one after 2", v, decodes)
	}

	broken := put("bad")
	for range 2 {
		if _, ok, err := read(broken); !ok || err == nil {
			t.Fatalf("read of a bad record = %v, %v; want its decode error", ok, err)
		}
	}
	if decodes != 3 {
		t.Fatalf("%d decodes after reading a bad record twice; want 3", decodes)
	}

	deleted := put("")
	if v, ok, err := read(deleted); ok || err != nil || v != "" {
		t.Fatalf("read of a deleted record = %q, %v, %v; want not found", v, ok, err)
	}
	if _, ok, _ := graph.Decoded(g.HeadSnapshot(time.Now()), "agent", "a2", decode); ok {
		t.Fatalf("read of a record never written found one")
	}
}
