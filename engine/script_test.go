package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/engine/checkscript"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// TestCheckScripts runs every scripted case in testdata/*.txt through
// engine.Check. The format is described in package checkscript.
func TestCheckScripts(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatalf("list scripts: %v", err)
	}
	if len(paths) == 0 {
		t.Fatal("no scripts found in testdata")
	}
	for _, path := range paths {
		cases, err := checkscript.ParseFile(path)
		if err != nil {
			t.Fatalf("parse script: %v", err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					runScriptCase(t, path, c)
				})
			}
		})
	}
}

func runScriptCase(t *testing.T, path string, c checkscript.Case) {
	compiled, err := schema.Compile(context.Background(), c.Schema)
	if err != nil {
		t.Fatalf("%s:%d: compile schema: %v", path, c.Line, err)
	}
	snap := snapshotOf(t, c.Schema, c.Relationships)
	limits := engine.Limits{MaxDepth: c.MaxDepth}
	for _, check := range c.Checks {
		got, err := engine.Check(compiled, snap, limits, engine.CheckRequest{
			Resource:   check.Resource,
			Permission: check.Permission,
			Subject:    check.Subject,
			Context:    check.Context,
		})
		at := fmt.Sprintf("%s:%d", path, check.Line)
		switch check.Error {
		case checkscript.ErrorMaxDepth:
			if !errors.Is(err, engine.ErrMaxDepth) {
				t.Errorf("%s: check %s: got %v, %v, expected engine.ErrMaxDepth", at, check.Text, got.Membership, err)
			}
			continue
		case checkscript.ErrorCaveat:
			var caveatErr *engine.CaveatError
			if !errors.As(err, &caveatErr) {
				t.Errorf("%s: check %s: got %v, %v, expected an *engine.CaveatError", at, check.Text, got.Membership, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: check %s: %v", at, check.Text, err)
			continue
		}
		if got.Membership != check.Membership {
			t.Errorf("%s: check %s = %v, expected %v", at, check.Text, got.Membership, check.Membership)
		}
		if !slices.Equal(got.MissingContext, check.MissingContext) {
			t.Errorf("%s: check %s: missing context %v, expected %v", at, check.Text, got.MissingContext, check.MissingContext)
		}
	}
}

// snapshotOf writes the schema and relationships to an in-memory graph and
// returns a snapshot at the current time.
func snapshotOf(t *testing.T, schemaText string, rels []*graph.Relationship) graph.Snapshot {
	t.Helper()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatalf("open in-memory graph: %v", err)
	}
	_, err = g.Update(context.Background(), func(tx *graph.Tx) error {
		tx.SetSchema(schemaText)
		for _, r := range rels {
			tx.Touch(r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write relationships: %v", err)
	}
	return g.HeadSnapshot(time.Now())
}
