package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// spicedbCheckTimeout bounds one check on SpiceDB's development server.
// That server has no dispatch cache, so on a cycle in the data that
// branches it can take exponential time before its max depth error. A
// check that times out is counted and not compared.
const spicedbCheckTimeout = 5 * time.Second

// checkComparer runs checks on SpiceDB and on engine.Check over the same
// schema and relationships, and counts the outcomes in stats.
type checkComparer struct {
	schema *schema.Schema
	snap   graph.Snapshot
	client v1.PermissionsServiceClient
	stats  *differentialStats
}

// compare runs one check on both engines and reports a difference with
// t.Errorf. It returns false when it reported one.
func (cmp checkComparer) compare(ctx context.Context, t *testing.T, c checkCase) bool {
	t.Helper()
	caveatContext := c.contextStruct(t)
	checkCtx, cancel := context.WithTimeout(ctx, spicedbCheckTimeout)
	expected, err := cmp.client.CheckPermission(checkCtx, &v1.CheckPermissionRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
		Resource:    &v1.ObjectReference{ObjectType: c.resource.Type, ObjectId: c.resource.ID},
		Permission:  c.permission,
		Subject: &v1.SubjectReference{
			Object:           &v1.ObjectReference{ObjectType: c.subject.Type, ObjectId: c.subject.ID},
			OptionalRelation: c.subject.Relation,
		},
		Context: caveatContext,
	})
	cancel()
	if err != nil && strings.Contains(status.Convert(err).Message(), "max depth exceeded") {
		cmp.stats.maxDepthSkipped++
		return true
	}
	if status.Code(err) == codes.DeadlineExceeded {
		cmp.stats.timedOut++
		return true
	}

	got, gotErr := engine.Check(cmp.schema, cmp.snap, engine.Limits{}, engine.CheckRequest{
		Resource:   c.resource,
		Permission: c.permission,
		Subject:    c.subject,
		Context:    caveatContext.AsMap(),
	})
	cmp.stats.checks++
	switch {
	case err != nil && gotErr != nil:
		cmp.stats.errors++
	case err != nil && isCaveatParameterError(err) && got.Membership != engine.ConditionalPermission:
		cmp.stats.caveatErrorOrder++
	case err != nil:
		t.Errorf("check %s: Mandate returns %v, SpiceDB fails with %v", c, got.Membership, err)
		return false
	case gotErr != nil:
		t.Errorf("check %s: Mandate fails with %v, SpiceDB returns %v", c, gotErr, expected.GetPermissionship())
		return false
	default:
		cmp.stats.byPermissionship[expected.GetPermissionship()]++
		diff := compareResults(expected, got)
		if diff != "" && spicedbDropsTraits(cmp.schema, c.subject) {
			cmp.stats.droppedTraits++
			return true
		}
		if diff != "" {
			t.Errorf("check %s: %s", c, diff)
			return false
		}
	}
	return true
}

func newDifferentialStats() differentialStats {
	return differentialStats{byPermissionship: make(map[v1.CheckPermissionResponse_Permissionship]int)}
}

// differentialStats counts the checks that a checkComparer ran.
type differentialStats struct {
	checks          int
	maxDepthSkipped int
	rejectedSchemas int
	// errors counts checks that both fail, such as a context value of the
	// wrong type for a caveat.
	errors int
	// caveatErrorOrder counts checks where SpiceDB fails on a context
	// value of the wrong type and Mandate returns a result that does not
	// depend on that caveat. SpiceDB evaluates all caveats of a check as
	// one expression, left to right with short-circuit, and the order of
	// the branches of a union or intersection is the order in which its
	// concurrent dispatches finish. Mandate fails only when the result
	// depends on the caveat that could not be evaluated.
	caveatErrorOrder int
	// timedOut counts checks that SpiceDB did not finish within
	// spicedbCheckTimeout.
	timedOut int
	// droppedTraits counts differing checks that spicedbDropsTraits
	// explains.
	droppedTraits    int
	byPermissionship map[v1.CheckPermissionResponse_Permissionship]int
}

func (s *differentialStats) add(other differentialStats) {
	s.checks += other.checks
	s.maxDepthSkipped += other.maxDepthSkipped
	s.rejectedSchemas += other.rejectedSchemas
	s.errors += other.errors
	s.droppedTraits += other.droppedTraits
	s.caveatErrorOrder += other.caveatErrorOrder
	s.timedOut += other.timedOut
	if s.byPermissionship == nil {
		s.byPermissionship = make(map[v1.CheckPermissionResponse_Permissionship]int)
	}
	for k, n := range other.byPermissionship {
		s.byPermissionship[k] += n
	}
}

func compareResults(expected *v1.CheckPermissionResponse, got engine.Result) string {
	gotPermissionship := permissionshipOf(got.Membership)
	if gotPermissionship != expected.GetPermissionship() {
		return fmt.Sprintf("Mandate returns %v, SpiceDB returns %v", gotPermissionship, expected.GetPermissionship())
	}
	expectedMissing := uniqueSorted(expected.GetPartialCaveatInfo().GetMissingRequiredContext())
	if !slices.Equal(expectedMissing, got.MissingContext) {
		return fmt.Sprintf("Mandate reports missing context %v, SpiceDB reports %v", got.MissingContext, expectedMissing)
	}
	return ""
}

// spicedbDropsTraits reports whether SpiceDB v1.56.2, on its memdb
// datastore, misreads a direct relationship of some relation for a check
// of subject, so that a differing result is SpiceDB's and not Mandate's.
//
// SpiceDB's checkDirect (internal/graph/check.go) decides whether the
// relationships that match the subject or its wildcard can carry a caveat
// or an expiration by counting the relation's allowed types of the
// subject's object type that have none. That count includes allowed types
// with another subject relation, such as group#member beside
// "group with flag", so it can conclude that no matching relationship has
// a caveat. It then reads with caveats skipped, and memdb leaves out every
// caveated relationship. With expiration skipped, memdb keeps expired
// relationships. The check's subject is the same at every step of the
// walk, so the condition depends only on the schema and the subject.
func spicedbDropsTraits(s *schema.Schema, subject graph.SubjectRef) bool {
	for _, def := range s.Definitions {
		for _, rel := range def.Relations {
			matching, withoutCaveat, withoutExpiration := 0, 0, 0
			matchingCaveat, matchingExpiration := false, false
			for _, a := range rel.Allowed {
				if a.Type != subject.Type {
					continue
				}
				if a.Caveat == "" {
					withoutCaveat++
				}
				if !a.Expiration {
					withoutExpiration++
				}
				if a.Wildcard || a.Relation == subject.Relation {
					matching++
					matchingCaveat = matchingCaveat || a.Caveat != ""
					matchingExpiration = matchingExpiration || a.Expiration
				}
			}
			if matching == 0 {
				continue
			}
			if matchingCaveat && withoutCaveat == matching {
				return true
			}
			if matchingExpiration && withoutExpiration == matching {
				return true
			}
		}
	}
	return false
}

// isCaveatParameterError reports whether a SpiceDB error is about a caveat
// context value of the wrong type.
func isCaveatParameterError(err error) bool {
	st := status.Convert(err)
	return st.Code() == codes.InvalidArgument && strings.Contains(st.Message(), "type error for parameters for caveat")
}

// logStats writes a summary of stats to the test log.
func logStats(t *testing.T, stats differentialStats) {
	t.Logf("compared %d checks: %d has, %d conditional, %d no permission, %d failed in both",
		stats.checks,
		stats.byPermissionship[v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION],
		stats.byPermissionship[v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION],
		stats.byPermissionship[v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION],
		stats.errors)
	t.Logf("not compared: %d checks on SpiceDB's max depth error, %d that SpiceDB did not finish in %v",
		stats.maxDepthSkipped, stats.timedOut, spicedbCheckTimeout)
	t.Logf("not counted as mismatches: %d checks explained by SpiceDB dropping caveats or expiration, %d where only SpiceDB fails on a caveat context value",
		stats.droppedTraits, stats.caveatErrorOrder)
}
