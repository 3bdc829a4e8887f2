package server_test

import (
	"slices"
	"testing"
	"time"
)

// A server restarted on the same data directory serves the schema,
// relationships, caveat contexts and expirations that the first one
// stored, and accepts the ZedTokens it issued.
func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	first := startServerWith(t, serverOptions{dataDir: dataDir})
	first.writeSchema(t, testSchema)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	first.touchAll(t, append(slices.Clone(checkFixture),
		"document:temp#viewer@user:tina[expiration:"+expires.Format(time.RFC3339)+"]",
		`document:budget#viewer@user:lee[has_clearance:{"required":2}]`,
	)...)
	first.writeAll(t, opDelete, "document:budget#viewer@user:lee")
	last := first.touchAll(t, `document:budget#viewer@user:lee[has_clearance:{"required":4}]`)
	before := first.readState(t, testResourceTypes...)
	first.stop()

	second := startServerWith(t, serverOptions{dataDir: dataDir})
	after := second.readState(t, testResourceTypes...)
	requireUnchanged(t, before, after)

	for _, tc := range checkCases {
		req := tc.request(t)
		req.Consistency = atLeastAsFresh(last)
		resp, err := second.client.CheckPermission(testContext(t), req)
		if err != nil {
			t.Fatalf("%s: CheckPermission after restart: %v", tc.name, err)
		}
		if got := resp.GetPermissionship(); got != tc.want {
			t.Errorf("%s: %s#%s@%s after restart: got %s, want %s", tc.name, tc.resource, tc.permission, tc.subject, got, tc.want)
		}
		if missing := resp.GetPartialCaveatInfo().GetMissingRequiredContext(); !slices.Equal(missing, tc.wantMissing) {
			t.Errorf("%s: missing context after restart: got %q, want %q", tc.name, missing, tc.wantMissing)
		}
	}

	// The second server continues the revision sequence: its next write
	// gets a new token.
	next := second.touchAll(t, "document:readme#viewer@user:newcomer")
	if next.GetToken() == last.GetToken() {
		t.Errorf("first write after restart returned the token %q of the last write before it", next.GetToken())
	}
}
