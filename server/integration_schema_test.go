package server_test

import (
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
)

func TestReadSchemaBeforeWrite(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	_, err := ts.client.ReadSchema(testContext(t), &v1.ReadSchemaRequest{})
	requireStatus(t, err, codes.NotFound, "no schema")
}

func TestWriteSchemaRoundTrip(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	written := ts.writeSchema(t, testSchema)
	if written.GetToken() == "" {
		t.Fatalf("WriteSchema returned an empty written_at token")
	}

	resp, err := ts.client.ReadSchema(testContext(t), &v1.ReadSchemaRequest{})
	if err != nil {
		t.Fatalf("ReadSchema: %v", err)
	}
	if got := resp.GetSchemaText(); got != testSchema {
		t.Errorf("schema text:\ngot:\n%s\nwant:\n%s", got, testSchema)
	}
	if got, want := resp.GetReadAt().GetToken(), written.GetToken(); got != want {
		t.Errorf("read_at token: got %q, want %q (the revision of the write)", got, want)
	}
}

// A schema written over an older one replaces it, and relationships that
// the new schema still allows stay readable.
func TestWriteSchemaReplace(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, "document:readme#viewer@user:alice")

	const next = `definition user {}

definition document {
  relation viewer: user
  relation reviewer: user
  permission view = viewer + reviewer
}
`
	ts.writeSchema(t, next)
	resp, err := ts.client.ReadSchema(testContext(t), &v1.ReadSchemaRequest{})
	if err != nil {
		t.Fatalf("ReadSchema: %v", err)
	}
	if got := resp.GetSchemaText(); got != next {
		t.Errorf("schema text:\ngot:\n%s\nwant:\n%s", got, next)
	}
	got := ts.read(t, &v1.RelationshipFilter{ResourceType: "document"})
	want := []string{"document:readme#viewer@user:alice"}
	if !slices.Equal(got, want) {
		t.Errorf("relationships after schema change: got %q, want %q", got, want)
	}
	ts.touchAll(t, "document:readme#reviewer@user:bob")
}

func TestWriteSchemaInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		schema    string
		fragments []string
	}{
		{
			name:      "unknown subject type",
			schema:    "definition document {\n  relation viewer: usr\n}\n",
			fragments: []string{"usr", "viewer"},
		},
		{
			name:      "unknown relation in permission",
			schema:    "definition user {}\n\ndefinition document {\n  relation viewer: user\n  permission view = viewer + editor\n}\n",
			fragments: []string{"editor", "document"},
		},
		{
			name:      "syntax error",
			schema:    "definition user {}\n\ndefinition document {\n  relation viewer user\n}\n",
			fragments: []string{"line 4"},
		},
		{
			name:      "duplicate relation",
			schema:    "definition user {}\n\ndefinition document {\n  relation viewer: user\n  relation viewer: user\n}\n",
			fragments: []string{"viewer"},
		},
		{
			name:      "empty",
			schema:    "   \n",
			fragments: []string{"empty"},
		},
	}
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t, "document:readme#viewer@user:alice")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.readState(t, testResourceTypes...)
			_, err := ts.client.WriteSchema(testContext(t), &v1.WriteSchemaRequest{Schema: tc.schema})
			requireStatus(t, err, codes.InvalidArgument, tc.fragments...)
			requireUnchanged(t, before, ts.readState(t, testResourceTypes...))
		})
	}
}

// A schema change that would orphan stored relationships is rejected with
// FailedPrecondition, names what is still in use, and changes nothing.
func TestWriteSchemaRemovesUsed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		schema    string
		fragments []string
	}{
		{
			name: "relation",
			schema: `definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation owner: user
  relation viewer: user | group#member
  permission view = viewer + owner
}

definition document {
  relation parent: folder
  relation owner: user
  relation viewer: user
}
`,
			fragments: []string{`"editor"`, `"document"`, "document:readme#editor@group:eng#member"},
		},
		{
			name: "definition",
			schema: `use expiration

caveat has_clearance(level int, required int) {
  level >= required
}

definition user {}

definition group {
  relation member: user | group#member
}

definition document {
  relation parent: user
  relation owner: user
  relation editor: user | group#member
  relation viewer: user | user:* | group#member | user with has_clearance | user with expiration
}
`,
			fragments: []string{`definition "folder"`, "folder:shared#viewer@user:fred"},
		},
		{
			name: "subject type",
			schema: `definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation owner: user
  relation viewer: user | group#member
  permission view = viewer + owner
}

definition document {
  relation parent: folder
  relation owner: user
  relation editor: user
  relation viewer: user
}
`,
			fragments: []string{"document:readme#editor@group:eng#member", "group#member"},
		},
		{
			name: "relation to permission",
			schema: `definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation owner: user
  relation viewer: user | group#member
  permission view = viewer + owner
}

definition document {
  relation parent: folder
  relation owner: user
  relation editor: user | group#member
  permission viewer = owner
}
`,
			fragments: []string{`"viewer"`},
		},
		{
			name: "caveat",
			schema: `use expiration

definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation owner: user
  relation viewer: user | group#member
  permission view = viewer + owner
}

definition document {
  relation parent: folder
  relation owner: user
  relation editor: user | group#member
  relation viewer: user | user:* | group#member | user with expiration
}
`,
			fragments: []string{"document:secret#viewer@user:sam", "has_clearance"},
		},
		{
			name: "expiration",
			schema: `caveat has_clearance(level int, required int) {
  level >= required
}

definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation owner: user
  relation viewer: user | group#member
  permission view = viewer + owner
}

definition document {
  relation parent: folder
  relation owner: user
  relation editor: user | group#member
  relation viewer: user | user:* | group#member | user with has_clearance
}
`,
			fragments: []string{"document:temp#viewer@user:tina", "expiration"},
		},
	}
	ts := startServer(t)
	ts.writeSchema(t, testSchema)
	ts.touchAll(t,
		"document:readme#editor@group:eng#member",
		"document:readme#viewer@user:alice",
		"group:eng#member@user:erin",
		"folder:shared#viewer@user:fred",
		`document:secret#viewer@user:sam[has_clearance:{"required":3}]`,
		"document:temp#viewer@user:tina[expiration:2100-01-01T00:00:00Z]",
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.readState(t, testResourceTypes...)
			_, err := ts.client.WriteSchema(testContext(t), &v1.WriteSchemaRequest{Schema: tc.schema})
			requireStatus(t, err, codes.FailedPrecondition, tc.fragments...)
			requireUnchanged(t, before, ts.readState(t, testResourceTypes...))
		})
	}
}
