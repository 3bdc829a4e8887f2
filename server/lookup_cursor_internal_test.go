package server

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/graph"
)

// A cursor with a valid checksum and a revision that the datastore never
// reached is rejected as invalid, not as a revision to wait for.
func TestLookupCursorFutureRevision(t *testing.T) {
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	defer g.Close()
	s, err := New(Config{Graph: g, InsecureNoAuth: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	head := g.Head()
	cursor := encodeLookupCursor(lookupCursor{Revision: head + 10, Query: "digest", After: "doc1"})
	_, _, err = s.pagedView(context.Background(), nil, cursor, "digest")
	st := status.Convert(toStatus(err))
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("pagedView with revision %d = %v, want InvalidArgument", head+10, err)
	}
	if !strings.Contains(st.Message(), "was not issued by this datastore") {
		t.Errorf("message %q does not say the revision was not issued by this datastore", st.Message())
	}
}
