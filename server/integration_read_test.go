package server_test

import (
	"fmt"
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
)

// readFixture is the data of the filter tests.
var readFixture = []string{
	"document:readme#editor@group:eng#member",
	"document:readme#owner@user:olivia",
	"document:readme#parent@folder:shared",
	"document:readme#viewer@user:alice",
	"document:report-2024#viewer@user:*",
	"document:report-2025#viewer@group:eng#member",
	"document:report-2025#viewer@user:alice",
	"folder:shared#viewer@group:eng#member",
	"folder:shared#viewer@user:alice",
	"group:eng#member@user:erin",
}

func TestReadFilters(t *testing.T) {
	t.Parallel()
	ellipsis := &v1.SubjectFilter_RelationFilter{Relation: ""}
	member := &v1.SubjectFilter_RelationFilter{Relation: "member"}
	tests := []struct {
		name   string
		filter *v1.RelationshipFilter
		want   []string
	}{
		{
			name:   "resource type",
			filter: &v1.RelationshipFilter{ResourceType: "folder"},
			want:   []string{"folder:shared#viewer@group:eng#member", "folder:shared#viewer@user:alice"},
		},
		{
			name:   "resource id",
			filter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "report-2025"},
			want:   []string{"document:report-2025#viewer@group:eng#member", "document:report-2025#viewer@user:alice"},
		},
		{
			name:   "resource id prefix",
			filter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceIdPrefix: "report-"},
			want: []string{
				"document:report-2024#viewer@user:*",
				"document:report-2025#viewer@group:eng#member",
				"document:report-2025#viewer@user:alice",
			},
		},
		{
			name:   "relation",
			filter: &v1.RelationshipFilter{ResourceType: "document", OptionalRelation: "owner"},
			want:   []string{"document:readme#owner@user:olivia"},
		},
		{
			name:   "relation without type",
			filter: &v1.RelationshipFilter{OptionalRelation: "viewer"},
			want: []string{
				"document:readme#viewer@user:alice",
				"document:report-2024#viewer@user:*",
				"document:report-2025#viewer@group:eng#member",
				"document:report-2025#viewer@user:alice",
				"folder:shared#viewer@group:eng#member",
				"folder:shared#viewer@user:alice",
			},
		},
		{
			name: "subject type",
			filter: &v1.RelationshipFilter{
				ResourceType:          "document",
				OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "folder"},
			},
			want: []string{"document:readme#parent@folder:shared"},
		},
		{
			name: "subject id",
			filter: &v1.RelationshipFilter{
				OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "user", OptionalSubjectId: "alice"},
			},
			want: []string{
				"document:readme#viewer@user:alice",
				"document:report-2025#viewer@user:alice",
				"folder:shared#viewer@user:alice",
			},
		},
		{
			name: "subject wildcard id",
			filter: &v1.RelationshipFilter{
				OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "user", OptionalSubjectId: "*"},
			},
			want: []string{"document:report-2024#viewer@user:*"},
		},
		{
			name: "subject relation",
			filter: &v1.RelationshipFilter{
				OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "group", OptionalRelation: member},
			},
			want: []string{
				"document:readme#editor@group:eng#member",
				"document:report-2025#viewer@group:eng#member",
				"folder:shared#viewer@group:eng#member",
			},
		},
		{
			name: "subject without relation",
			filter: &v1.RelationshipFilter{
				ResourceType:          "document",
				OptionalRelation:      "viewer",
				OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "user", OptionalRelation: ellipsis},
			},
			want: []string{
				"document:readme#viewer@user:alice",
				"document:report-2024#viewer@user:*",
				"document:report-2025#viewer@user:alice",
			},
		},
		{
			name: "all fields",
			filter: &v1.RelationshipFilter{
				ResourceType:       "document",
				OptionalResourceId: "report-2025",
				OptionalRelation:   "viewer",
				OptionalSubjectFilter: &v1.SubjectFilter{
					SubjectType:       "group",
					OptionalSubjectId: "eng",
					OptionalRelation:  member,
				},
			},
			want: []string{"document:report-2025#viewer@group:eng#member"},
		},
		{
			name:   "no match",
			filter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "missing"},
			want:   nil,
		},
	}
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, readFixture...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ts.read(t, tc.filter)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestReadLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, readFixture...)
	filter := &v1.RelationshipFilter{ResourceType: "document"}
	all := ts.read(t, filter)

	for _, limit := range []uint32{1, 3, 6, 100} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			resps, err := ts.readWith(t, &v1.ReadRelationshipsRequest{RelationshipFilter: filter, OptionalLimit: limit})
			if err != nil {
				t.Fatalf("ReadRelationships: %v", err)
			}
			want := min(int(limit), len(all))
			if len(resps) != want {
				t.Errorf("got %d relationships, want %d", len(resps), want)
			}
		})
	}
}

// readPages pages through filter with the given page size and returns
// every relationship in the order received and the number of pages.
func (ts *testServer) readPages(t *testing.T, filter *v1.RelationshipFilter, pageSize uint32, between func(page int)) ([]string, int) {
	t.Helper()
	var got []string
	var cursor *v1.Cursor
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("paging did not end after %d pages", page)
		}
		resps, err := ts.readWith(t, &v1.ReadRelationshipsRequest{
			RelationshipFilter: filter,
			OptionalLimit:      pageSize,
			OptionalCursor:     cursor,
		})
		if err != nil {
			t.Fatalf("ReadRelationships page %d: %v", page, err)
		}
		if len(resps) > int(pageSize) {
			t.Fatalf("page %d has %d relationships, more than the limit %d", page, len(resps), pageSize)
		}
		for _, r := range resps {
			got = append(got, relString(t, r.GetRelationship()))
		}
		if len(resps) < int(pageSize) {
			return got, page + 1
		}
		cursor = resps[len(resps)-1].GetAfterResultCursor()
		if between != nil {
			between(page)
		}
	}
}

func TestReadCursorPaging(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	var want []string
	for i := range 23 {
		want = append(want, fmt.Sprintf("document:page-%02d#viewer@user:u%02d", i, i))
		want = append(want, fmt.Sprintf("document:page-%02d#owner@user:o%02d", i, i))
	}
	ts.touchAll(t, want...)
	slices.Sort(want)
	filter := &v1.RelationshipFilter{ResourceType: "document"}

	for _, pageSize := range []uint32{1, 5, 7, 46, 50} {
		t.Run(fmt.Sprint(pageSize), func(t *testing.T) {
			got, pages := ts.readPages(t, filter, pageSize, nil)
			requireExactlyOnce(t, got, want)
			if wantPages := len(want)/int(pageSize) + 1; pages != wantPages {
				t.Errorf("got %d pages, want %d", pages, wantPages)
			}
		})
	}
}

// A cursor pins the revision of its first page, so writes between pages
// neither add nor remove results, and nothing is returned twice.
func TestReadCursorPinsRevision(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("document:doc-%02d#viewer@user:alice", i))
	}
	ts.touchAll(t, want...)
	filter := &v1.RelationshipFilter{ResourceType: "document"}

	got, _ := ts.readPages(t, filter, 6, func(page int) {
		ts.touchAll(t, fmt.Sprintf("document:doc-%02d-new#viewer@user:alice", page))
		ts.writeAll(t, opDelete, fmt.Sprintf("document:doc-%02d#viewer@user:alice", 19-page))
	})
	requireExactlyOnce(t, got, want)
}

// requireExactlyOnce fails unless got holds every element of want exactly
// once and nothing else.
func requireExactlyOnce(t *testing.T, got, want []string) {
	t.Helper()
	seen := make(map[string]int, len(got))
	for _, s := range got {
		seen[s]++
		if seen[s] == 2 {
			t.Errorf("relationship %s returned more than once", s)
		}
	}
	for _, s := range want {
		if seen[s] == 0 {
			t.Errorf("relationship %s never returned", s)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("got %d distinct relationships, want %d:\ngot  %q\nwant %q", len(seen), len(want), got, want)
	}
}

func TestReadCursorInvalid(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, readFixture...)
	filter := &v1.RelationshipFilter{ResourceType: "document"}
	resps, err := ts.readWith(t, &v1.ReadRelationshipsRequest{RelationshipFilter: filter, OptionalLimit: 2})
	if err != nil {
		t.Fatalf("ReadRelationships: %v", err)
	}
	if len(resps) != 2 {
		t.Fatalf("got %d relationships, want 2", len(resps))
	}
	valid := resps[1].GetAfterResultCursor().GetToken()

	tests := []struct {
		name   string
		cursor string
		filter *v1.RelationshipFilter
	}{
		{name: "garbage", cursor: "not-a-cursor", filter: filter},
		{name: "first byte changed", cursor: flipFirst(valid), filter: filter},
		{name: "truncated", cursor: valid[:len(valid)/2], filter: filter},
		{name: "other filter", cursor: valid, filter: &v1.RelationshipFilter{ResourceType: "folder"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ts.readWith(t, &v1.ReadRelationshipsRequest{
				RelationshipFilter: tc.filter,
				OptionalLimit:      2,
				OptionalCursor:     &v1.Cursor{Token: tc.cursor},
			})
			requireStatus(t, err, codes.InvalidArgument, "cursor")
		})
	}
}

// flipFirst changes the first character of s to a different one of the
// base64url alphabet.
func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
