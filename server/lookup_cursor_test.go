package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/server"
)

// lookupServerOptions adjusts a server started by startLookupServer.
type lookupServerOptions struct {
	maxReadLimit int
	clock        *fakeClock
	retention    time.Duration
}

// startLookupServer starts a server on an in-memory graph with the given
// limits and clock, and returns it with its graph. Both stop when the
// test ends.
func startLookupServer(t *testing.T, opts lookupServerOptions) (*testServer, *graph.Graph) {
	t.Helper()
	graphOpts := graph.Options{RetentionWindow: opts.retention}
	cfg := server.Config{PresharedKey: testPresharedKey, MaxReadLimit: opts.maxReadLimit, Logger: zerolog.Nop()}
	if opts.clock != nil {
		graphOpts.Clock = opts.clock.Now
		cfg.Clock = opts.clock.Now
	}
	g, err := graph.Open(graph.NewMemoryStore(), graphOpts)
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	cfg.Graph = g
	srv, err := server.New(cfg)
	if err != nil {
		g.Close()
		t.Fatalf("new server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	ts := &testServer{addr: lis.Addr().String()}
	ts.client = dialClient(t, ts.addr, grpcutil.WithInsecureBearerToken(testPresharedKey))
	ts.stop = func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	}
	t.Cleanup(ts.stop)
	return ts, g
}

// lookupDocuments sends one LookupResources call for document#view of
// user:alice and returns the responses, or the error of the call.
func (ts *testServer) lookupDocuments(t *testing.T, limit uint32, cursor *v1.Cursor) ([]*v1.LookupResourcesResponse, error) {
	t.Helper()
	stream, err := ts.client.LookupResources(testContext(t), &v1.LookupResourcesRequest{
		ResourceObjectType: "document",
		Permission:         "view",
		Subject:            &v1.SubjectReference{Object: objectRef("user", "alice")},
		OptionalLimit:      limit,
		OptionalCursor:     cursor,
	})
	if err != nil {
		return nil, err
	}
	var out []*v1.LookupResourcesResponse
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, resp)
	}
}

// lookupViewers sends one LookupSubjects call for the users with view on
// document:shared and returns the responses, or the error of the call.
func (ts *testServer) lookupViewers(t *testing.T, limit uint32, cursor *v1.Cursor) ([]*v1.LookupSubjectsResponse, error) {
	t.Helper()
	stream, err := ts.client.LookupSubjects(testContext(t), &v1.LookupSubjectsRequest{
		Resource:              objectRef("document", "shared"),
		Permission:            "view",
		SubjectObjectType:     "user",
		OptionalConcreteLimit: limit,
		OptionalCursor:        cursor,
	})
	if err != nil {
		return nil, err
	}
	var out []*v1.LookupSubjectsResponse
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, resp)
	}
}

// writeDocuments gives user:alice view on n documents and n users view on
// document:shared, in one write.
func (ts *testServer) writeDocuments(t *testing.T, n int) {
	t.Helper()
	rels := make([]string, 0, 2*n)
	for i := range n {
		rels = append(rels,
			fmt.Sprintf("document:doc%03d#viewer@user:alice", i),
			fmt.Sprintf("document:shared#viewer@user:user%03d", i))
	}
	ts.touchAll(t, rels...)
}

// editCursor decodes a lookup cursor, lets edit change its JSON fields,
// and encodes it again without updating anything else.
func editCursor(t *testing.T, c *v1.Cursor, edit func(fields map[string]any)) *v1.Cursor {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(c.GetToken())
	if err != nil {
		t.Fatalf("decode cursor %q: %v", c.GetToken(), err)
	}
	fields := map[string]any{}
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("decode cursor JSON %q: %v", raw, err)
	}
	edit(fields)
	raw, err = json.Marshal(fields)
	if err != nil {
		t.Fatalf("encode cursor JSON: %v", err)
	}
	return &v1.Cursor{Token: base64.RawURLEncoding.EncodeToString(raw)}
}

func TestLookupCursorInvalid(t *testing.T) {
	t.Parallel()
	ts, _ := startLookupServer(t, lookupServerOptions{})
	ts.writeSchema(t, testSchema)
	ts.writeDocuments(t, 5)

	resources, err := ts.lookupDocuments(t, 2, nil)
	if err != nil {
		t.Fatalf("LookupResources: %v", err)
	}
	if len(resources) != 2 {
		t.Fatalf("got %d resources, want 2", len(resources))
	}
	resourceCursor := resources[1].GetAfterResultCursor()
	subjects, err := ts.lookupViewers(t, 2, nil)
	if err != nil {
		t.Fatalf("LookupSubjects: %v", err)
	}
	if len(subjects) != 2 {
		t.Fatalf("got %d subjects, want 2", len(subjects))
	}
	subjectCursor := subjects[1].GetAfterResultCursor()
	reads, err := ts.readWith(t, &v1.ReadRelationshipsRequest{
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"}, OptionalLimit: 1,
	})
	if err != nil || len(reads) != 1 {
		t.Fatalf("ReadRelationships: %d relationships, %v", len(reads), err)
	}
	readCursor := reads[0].GetAfterResultCursor()
	token := resourceCursor.GetToken()

	tests := []struct {
		name   string
		cursor *v1.Cursor
		// subjects sends the cursor to LookupSubjects instead of
		// LookupResources.
		subjects bool
		fragment string
	}{
		{name: "garbage", cursor: &v1.Cursor{Token: "not-a-cursor"}, fragment: "not a cursor issued by this lookup"},
		{name: "empty", cursor: &v1.Cursor{Token: ""}, fragment: "optional_cursor.token"},
		{name: "first byte changed", cursor: &v1.Cursor{Token: flipFirst(token)}, fragment: "invalid cursor"},
		{name: "truncated", cursor: &v1.Cursor{Token: token[:len(token)/2]}, fragment: "not a cursor issued by this lookup"},
		{name: "last byte dropped", cursor: &v1.Cursor{Token: token[:len(token)-1]}, fragment: "not a cursor issued by this lookup"},
		{name: "position edited", cursor: editCursor(t, resourceCursor, func(f map[string]any) { f["a"] = "doc000" }),
			fragment: "not a cursor issued by this lookup"},
		{name: "revision edited", cursor: editCursor(t, resourceCursor, func(f map[string]any) { f["r"] = 1 }),
			fragment: "not a cursor issued by this lookup"},
		{name: "checksum removed", cursor: editCursor(t, resourceCursor, func(f map[string]any) { delete(f, "s") }),
			fragment: "not a cursor issued by this lookup"},
		{name: "LookupSubjects cursor", cursor: subjectCursor, fragment: "issued for a different request"},
		{name: "LookupResources cursor in LookupSubjects", cursor: resourceCursor, subjects: true,
			fragment: "issued for a different request"},
		{name: "ReadRelationships cursor", cursor: readCursor, fragment: "not a cursor issued by this lookup"},
		{name: "long garbage", cursor: &v1.Cursor{Token: string(make([]byte, 100_000))}, fragment: "..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.subjects {
				_, err = ts.lookupViewers(t, 2, tc.cursor)
			} else {
				_, err = ts.lookupDocuments(t, 2, tc.cursor)
			}
			requireStatus(t, err, codes.InvalidArgument, tc.fragment)
		})
	}
}

// A cursor of another query with the same resource type and subject is
// rejected, though its position would be valid there.
func TestLookupCursorOtherPermission(t *testing.T) {
	t.Parallel()
	ts, _ := startLookupServer(t, lookupServerOptions{})
	ts.writeSchema(t, testSchema)
	ts.writeDocuments(t, 3)
	resources, err := ts.lookupDocuments(t, 1, nil)
	if err != nil || len(resources) != 1 {
		t.Fatalf("LookupResources: %d resources, %v", len(resources), err)
	}
	stream, err := ts.client.LookupResources(testContext(t), &v1.LookupResourcesRequest{
		ResourceObjectType: "document",
		Permission:         "edit",
		Subject:            &v1.SubjectReference{Object: objectRef("user", "alice")},
		OptionalLimit:      1,
		OptionalCursor:     resources[0].GetAfterResultCursor(),
	})
	if err == nil {
		_, err = stream.Recv()
	}
	requireStatus(t, err, codes.InvalidArgument, "issued for a different request")
}

// A cursor whose revision was garbage-collected fails with
// FailedPrecondition naming the cursor, for both lookups.
func TestLookupCursorStale(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	ts, g := startLookupServer(t, lookupServerOptions{clock: clock, retention: time.Hour})
	ts.writeSchema(t, testSchema)
	ts.writeDocuments(t, 3)
	resources, err := ts.lookupDocuments(t, 1, nil)
	if err != nil || len(resources) != 1 {
		t.Fatalf("LookupResources: %d resources, %v", len(resources), err)
	}
	subjects, err := ts.lookupViewers(t, 1, nil)
	if err != nil || len(subjects) != 1 {
		t.Fatalf("LookupSubjects: %d subjects, %v", len(subjects), err)
	}

	// A newer revision before the retention window lets the collector
	// drop the cursors' revision.
	ts.touchAll(t, "document:later#viewer@user:alice")
	clock.Set(start.Add(2 * time.Hour))
	if err := g.CollectGarbage(context.Background()); err != nil {
		t.Fatalf("CollectGarbage: %v", err)
	}

	resourceCursor := resources[0].GetAfterResultCursor()
	_, err = ts.lookupDocuments(t, 1, resourceCursor)
	requireStatus(t, err, codes.FailedPrecondition, resourceCursor.GetToken()[:20], "no longer retained", "without a cursor")
	subjectCursor := subjects[0].GetAfterResultCursor()
	_, err = ts.lookupViewers(t, 1, subjectCursor)
	requireStatus(t, err, codes.FailedPrecondition, subjectCursor.GetToken()[:20], "no longer retained", "without a cursor")

	// The same query without a cursor succeeds and returns the newer write.
	all, err := ts.lookupDocuments(t, 0, nil)
	if err != nil {
		t.Fatalf("LookupResources without a cursor: %v", err)
	}
	if len(all) != 4 {
		t.Errorf("got %d resources, want 4", len(all))
	}
}

// More results than the server's maximum page size are all returned
// without a limit, and across pages of the maximum size. A larger limit
// fails rather than returning fewer results.
func TestLookupMoreThanMaxLimit(t *testing.T) {
	t.Parallel()
	const maxLimit, n = 5, 23
	ts, _ := startLookupServer(t, lookupServerOptions{maxReadLimit: maxLimit})
	ts.writeSchema(t, testSchema)
	ts.writeDocuments(t, n)

	var wantResources, wantSubjects []string
	for i := range n {
		wantResources = append(wantResources, fmt.Sprintf("doc%03d", i))
		wantSubjects = append(wantSubjects, fmt.Sprintf("user%03d", i))
	}

	resources, err := ts.lookupDocuments(t, 0, nil)
	if err != nil {
		t.Fatalf("LookupResources without a limit: %v", err)
	}
	if got := resourceIDs(resources); !slices.Equal(got, wantResources) {
		t.Errorf("LookupResources without a limit = %q, want %q", got, wantResources)
	}
	subjects, err := ts.lookupViewers(t, 0, nil)
	if err != nil {
		t.Fatalf("LookupSubjects without a limit: %v", err)
	}
	if got := subjectIDs(subjects); !slices.Equal(got, wantSubjects) {
		t.Errorf("LookupSubjects without a limit = %q, want %q", got, wantSubjects)
	}

	var pagedResources []string
	var cursor *v1.Cursor
	for page := 0; page <= n/maxLimit+1; page++ {
		resps, err := ts.lookupDocuments(t, maxLimit, cursor)
		if err != nil {
			t.Fatalf("LookupResources page %d: %v", page, err)
		}
		if len(resps) > maxLimit {
			t.Fatalf("LookupResources page %d has %d results, limit %d", page, len(resps), maxLimit)
		}
		pagedResources = append(pagedResources, resourceIDs(resps)...)
		if len(resps) < maxLimit {
			break
		}
		cursor = resps[len(resps)-1].GetAfterResultCursor()
	}
	if !slices.Equal(pagedResources, wantResources) {
		t.Errorf("LookupResources in pages of %d = %q, want %q", maxLimit, pagedResources, wantResources)
	}

	var pagedSubjects []string
	cursor = nil
	for page := 0; page <= n/maxLimit+1; page++ {
		resps, err := ts.lookupViewers(t, maxLimit, cursor)
		if err != nil {
			t.Fatalf("LookupSubjects page %d: %v", page, err)
		}
		if len(resps) > maxLimit {
			t.Fatalf("LookupSubjects page %d has %d results, limit %d", page, len(resps), maxLimit)
		}
		pagedSubjects = append(pagedSubjects, subjectIDs(resps)...)
		if len(resps) < maxLimit {
			break
		}
		cursor = resps[len(resps)-1].GetAfterResultCursor()
	}
	if !slices.Equal(pagedSubjects, wantSubjects) {
		t.Errorf("LookupSubjects in pages of %d = %q, want %q", maxLimit, pagedSubjects, wantSubjects)
	}

	_, err = ts.lookupDocuments(t, maxLimit+1, nil)
	requireStatus(t, err, codes.InvalidArgument, "limit 6 exceeds the maximum of 5")
	_, err = ts.lookupViewers(t, maxLimit+1, nil)
	requireStatus(t, err, codes.InvalidArgument, "limit 6 exceeds the maximum of 5")
}

func resourceIDs(resps []*v1.LookupResourcesResponse) []string {
	out := make([]string, 0, len(resps))
	for _, r := range resps {
		out = append(out, r.GetResourceObjectId())
	}
	return out
}

func subjectIDs(resps []*v1.LookupSubjectsResponse) []string {
	out := make([]string, 0, len(resps))
	for _, r := range resps {
		out = append(out, r.GetSubject().GetSubjectObjectId())
	}
	return out
}
