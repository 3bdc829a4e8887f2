package conformance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// lookupRun compares the lookups of one schema and its relationships:
// Mandate's lookups with Mandate's checks at every page size, and
// Mandate's unpaged lookups with SpiceDB's.
type lookupRun struct {
	t *testing.T
	// name prefixes the name of each query, such as a validation file's.
	name     string
	schema   *schema.Schema
	universe lookupUniverse
	mandate  v1.PermissionsServiceClient
	spicedb  v1.PermissionsServiceClient
	// pageSizes are the page sizes at which Mandate's lookups are read.
	pageSizes []uint32
	// maxProblems bounds the differences reported with t.Errorf.
	maxProblems int
	// explain, when set, names the known kind of contradiction between
	// SpiceDB's lookup and its check for k, or returns "". A query with a
	// contradiction that explain does not name must be listed in
	// spicedbLookupContradictions.
	explain func(s *schema.Schema, subjects bool, c contradiction) string
	// countUnexplained, set for the random cases, counts and logs a
	// contradiction that explain does not name instead of failing the
	// test. Mandate agrees with SpiceDB's check there, which is the
	// reference, and the random cases meet kinds of SpiceDB lookup faults
	// that are not classified yet. The validation files stay strict.
	countUnexplained bool
	// reducedSpiceDB, set for the random cases that have relationships
	// whose caveat is false by their own context, returns SpiceDB serving
	// the same data without them. Where SpiceDB's check differs from
	// Mandate's and SpiceDB returns Mandate's result over that data, its
	// first check contradicts itself.
	reducedSpiceDB func(ctx context.Context) v1.PermissionsServiceClient

	checks        map[checkKey]checkAnswer
	spicedbChecks map[checkKey]checkAnswer
	stats         lookupStats
	// used collects the keys of spicedbLookupContradictions that matched.
	used     map[string]bool
	problems int
}

func newLookupRun(t *testing.T, name string, s *schema.Schema, u lookupUniverse, mandate, spicedb v1.PermissionsServiceClient) *lookupRun {
	return &lookupRun{
		t: t, name: name, schema: s, universe: u, mandate: mandate, spicedb: spicedb,
		pageSizes:     lookupPageSizes,
		maxProblems:   maxLookupProblems,
		checks:        map[checkKey]checkAnswer{},
		spicedbChecks: map[checkKey]checkAnswer{},
		used:          map[string]bool{},
		stats:         lookupStats{explained: map[string]int{}},
	}
}

// checkKey is one check of the universe; context indexes its contexts.
type checkKey struct {
	resource   graph.ObjectRef
	permission string
	subject    graph.SubjectRef
	context    int
}

// checkAnswer is the result of one check, or its error.
type checkAnswer struct {
	lookedUp
	err error
}

// resourceQuery is one LookupResources query of a lookupRun.
type resourceQuery struct {
	resourceType, permission string
	subject                  graph.SubjectRef
	context                  int
}

// subjectQuery is one LookupSubjects query of a lookupRun.
type subjectQuery struct {
	resource    graph.ObjectRef
	permission  string
	subjectType subjectType
	context     int
}

func (r *lookupRun) resourceQueryName(q resourceQuery) string {
	return fmt.Sprintf("%s: LookupResources %s#%s for %s%s",
		r.name, q.resourceType, q.permission, q.subject, contextSuffix(r.universe.contexts[q.context]))
}

func (r *lookupRun) subjectQueryName(q subjectQuery) string {
	return fmt.Sprintf("%s: LookupSubjects %s:%s#%s of %s%s",
		r.name, q.resource.Type, q.resource.ID, q.permission, q.subjectType, contextSuffix(r.universe.contexts[q.context]))
}

// resourceQueries lists a LookupResources query for every type of the
// universe's objects, every relation and permission of that type, every
// subject and every context.
func (r *lookupRun) resourceQueries() []resourceQuery {
	var types []string
	for _, o := range r.universe.objects {
		if !slices.Contains(types, o.Type) {
			types = append(types, o.Type)
		}
	}
	var out []resourceQuery
	for _, typ := range types {
		for _, permission := range r.schema.Definition(typ).Order {
			for _, subject := range r.universe.subjects {
				for i := range r.universe.contexts {
					out = append(out, resourceQuery{typ, permission, subject, i})
				}
			}
		}
	}
	return out
}

// subjectQueries lists a LookupSubjects query for every object of the
// universe, every relation and permission of its type, every subject
// type and every context.
func (r *lookupRun) subjectQueries() []subjectQuery {
	var out []subjectQuery
	for _, o := range r.universe.objects {
		for _, permission := range r.schema.Definition(o.Type).Order {
			for _, st := range r.universe.subjectTypes() {
				for i := range r.universe.contexts {
					out = append(out, subjectQuery{o, permission, st, i})
				}
			}
		}
	}
	return out
}

// problem reports a difference, up to maxProblems of them.
func (r *lookupRun) problem(format string, args ...any) {
	r.t.Helper()
	r.problems++
	if r.problems <= r.maxProblems {
		r.t.Errorf(format, args...)
	}
}

var fullyConsistent = &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}

func checkItem(k checkKey, caveatContext map[string]any) (*v1.CheckBulkPermissionsRequestItem, error) {
	c, err := contextProto(caveatContext)
	if err != nil {
		return nil, err
	}
	return &v1.CheckBulkPermissionsRequestItem{
		Resource:   &v1.ObjectReference{ObjectType: k.resource.Type, ObjectId: k.resource.ID},
		Permission: k.permission,
		Subject: &v1.SubjectReference{
			Object:           &v1.ObjectReference{ObjectType: k.subject.Type, ObjectId: k.subject.ID},
			OptionalRelation: k.subject.Relation,
		},
		Context: c,
	}, nil
}

// maxChecksPerCall is below the server's default limit of 1000 items per
// CheckBulkPermissions call.
const maxChecksPerCall = 1000

// mandateChecks returns Mandate's result for each key, calling
// CheckBulkPermissions for those not yet known.
func (r *lookupRun) mandateChecks(ctx context.Context, keys []checkKey) []checkAnswer {
	r.t.Helper()
	var missing []checkKey
	for _, k := range keys {
		if _, ok := r.checks[k]; !ok && !slices.Contains(missing, k) {
			missing = append(missing, k)
		}
	}
	for start := 0; start < len(missing); start += maxChecksPerCall {
		batch := missing[start:min(start+maxChecksPerCall, len(missing))]
		req := &v1.CheckBulkPermissionsRequest{Consistency: fullyConsistent}
		for _, k := range batch {
			item, err := checkItem(k, r.universe.contexts[k.context])
			if err != nil {
				r.t.Fatalf("convert context of check %v: %v", k, err)
			}
			req.Items = append(req.Items, item)
		}
		resp, err := r.mandate.CheckBulkPermissions(ctx, req)
		if err != nil {
			r.t.Fatalf("CheckBulkPermissions of %d items: %v", len(batch), err)
		}
		if len(resp.GetPairs()) != len(batch) {
			r.t.Fatalf("CheckBulkPermissions of %d items returned %d pairs", len(batch), len(resp.GetPairs()))
		}
		for i, pair := range resp.GetPairs() {
			var a checkAnswer
			if e := pair.GetError(); e != nil {
				a.err = status.Error(codes.Code(e.GetCode()), e.GetMessage())
			} else {
				a.permissionship = pair.GetItem().GetPermissionship()
				if a.permissionship == conditionalOn {
					a.missing = uniqueSorted(pair.GetItem().GetPartialCaveatInfo().GetMissingRequiredContext())
				}
			}
			r.checks[batch[i]] = a
		}
		r.stats.checks += len(batch)
	}
	out := make([]checkAnswer, len(keys))
	for i, k := range keys {
		out[i] = r.checks[k]
	}
	return out
}

// spicedbCheck returns SpiceDB's CheckPermission result for k.
func (r *lookupRun) spicedbCheck(ctx context.Context, k checkKey) checkAnswer {
	if a, ok := r.spicedbChecks[k]; ok {
		return a
	}
	item, err := checkItem(k, r.universe.contexts[k.context])
	if err != nil {
		r.t.Fatalf("convert context of check %v: %v", k, err)
	}
	checkCtx, cancel := context.WithTimeout(ctx, spicedbCheckTimeout)
	defer cancel()
	resp, err := r.spicedb.CheckPermission(checkCtx, &v1.CheckPermissionRequest{
		Consistency: fullyConsistent,
		Resource:    item.Resource,
		Permission:  item.Permission,
		Subject:     item.Subject,
		Context:     item.Context,
	})
	a := checkAnswer{err: err}
	if err == nil {
		a.permissionship = resp.GetPermissionship()
		if a.permissionship == conditionalOn {
			a.missing = uniqueSorted(resp.GetPartialCaveatInfo().GetMissingRequiredContext())
		}
	}
	r.spicedbChecks[k] = a
	return a
}

// sameLookedUp compares two results, and their missing context unless one
// of them does not report it.
func sameLookedUp(a, b lookedUp) bool {
	if a.permissionship != b.permissionship {
		return false
	}
	return a.missingUnknown || b.missingUnknown || slices.Equal(a.missing, b.missing)
}

// anyFailed reports whether some check failed.
func anyFailed(answers []checkAnswer) bool {
	return slices.ContainsFunc(answers, func(a checkAnswer) bool { return a.err != nil })
}

// spicedbGivesUp reports whether SpiceDB failed with its max depth error
// or did not finish in time; such a query is not compared.
func spicedbGivesUp(err error) bool {
	return strings.Contains(status.Convert(err).Message(), "max depth exceeded") ||
		status.Code(err) == codes.DeadlineExceeded || isCaveatParameterError(err)
}

func (r *lookupRun) resourceRequest(q resourceQuery) *v1.LookupResourcesRequest {
	c, err := contextProto(r.universe.contexts[q.context])
	if err != nil {
		r.t.Fatalf("convert context: %v", err)
	}
	return &v1.LookupResourcesRequest{
		Consistency:        fullyConsistent,
		ResourceObjectType: q.resourceType,
		Permission:         q.permission,
		Subject: &v1.SubjectReference{
			Object:           &v1.ObjectReference{ObjectType: q.subject.Type, ObjectId: q.subject.ID},
			OptionalRelation: q.subject.Relation,
		},
		Context: c,
	}
}

func (r *lookupRun) subjectRequest(q subjectQuery) *v1.LookupSubjectsRequest {
	c, err := contextProto(r.universe.contexts[q.context])
	if err != nil {
		r.t.Fatalf("convert context: %v", err)
	}
	return &v1.LookupSubjectsRequest{
		Consistency:             fullyConsistent,
		Resource:                &v1.ObjectReference{ObjectType: q.resource.Type, ObjectId: q.resource.ID},
		Permission:              q.permission,
		SubjectObjectType:       q.subjectType.typ,
		OptionalSubjectRelation: q.subjectType.relation,
		Context:                 c,
	}
}

// runResourceQuery reads q from Mandate at every page size and checks
// each result against Mandate's checks, then compares the unpaged result
// with SpiceDB's.
func (r *lookupRun) runResourceQuery(ctx context.Context, q resourceQuery) {
	r.t.Helper()
	r.stats.resourceQueries++
	name := r.resourceQueryName(q)
	req := r.resourceRequest(q)

	var keys []checkKey
	for _, o := range r.universe.objects {
		if o.Type == q.resourceType {
			keys = append(keys, checkKey{o, q.permission, q.subject, q.context})
		}
	}
	answers := r.mandateChecks(ctx, keys)

	var unpaged resourcesFound
	var unpagedErr error
	for _, pageSize := range r.pageSizes {
		reader := &pagedReader{client: r.mandate, pageSize: pageSize, strict: true}
		found, problems, err := reader.resources(ctx, req)
		r.stats.pages += reader.calls
		for _, p := range problems {
			r.problem("%s: %s", name, p)
		}
		if pageSize == 0 {
			unpaged, unpagedErr = found, err
		}
		if err != nil {
			if !anyFailed(answers) {
				r.problem("%s at page size %d: %v, but no check of these resources fails", name, pageSize, err)
			}
			continue
		}
		for i, k := range keys {
			got := found.permissionshipOf(k.resource.ID)
			switch {
			case answers[i].err != nil:
				r.problem("%s at page size %d: returns %s %v, but CheckPermission fails with %v", name, pageSize, k.resource.ID, got, answers[i].err)
			case !sameLookedUp(got, answers[i].lookedUp):
				r.problem("%s at page size %d: returns %s %v, CheckPermission returns %v", name, pageSize, k.resource.ID, got, answers[i].lookedUp)
			}
		}
		for id, got := range found {
			if !slices.ContainsFunc(keys, func(k checkKey) bool { return k.resource.ID == id }) {
				k := checkKey{graph.ObjectRef{Type: q.resourceType, ID: id}, q.permission, q.subject, q.context}
				r.problem("%s at page size %d: returns %s %v, which is not among the objects the test checks; CheckPermission returns %v",
					name, pageSize, id, got, r.mandateChecks(ctx, []checkKey{k})[0])
			}
		}
	}
	switch {
	case r.spicedb == nil:
	case spicedbLookupResourcesPanics(r.schema, q.resourceType, q.permission):
		r.stats.notSentToSpiceDB++
	default:
		r.compareResources(ctx, q, name, req, unpaged, unpagedErr)
	}
}

// compareResources compares Mandate's unpaged LookupResources result
// with SpiceDB's. Where they differ, SpiceDB's CheckPermission decides
// which one is wrong.
func (r *lookupRun) compareResources(ctx context.Context, q resourceQuery, name string, req *v1.LookupResourcesRequest, mandate resourcesFound, mandateErr error) {
	r.t.Helper()
	lookupCtx, cancel := context.WithTimeout(ctx, spicedbCheckTimeout)
	defer cancel()
	spicedb, _, err := (&pagedReader{client: r.spicedb}).resources(lookupCtx, req)
	switch {
	case err != nil && spicedbGivesUp(err):
		r.stats.failedInBoth++
		return
	case err != nil && mandateErr != nil:
		r.stats.failedInBoth++
		return
	case err != nil:
		r.problem("%s: SpiceDB fails with %v, Mandate returns %v", name, err, mandate)
		return
	case mandateErr != nil:
		r.problem("%s: Mandate fails with %v, SpiceDB returns %v", name, mandateErr, spicedb)
		return
	}
	r.stats.comparedWithSpiceDB++
	ids := slices.Sorted(mapsKeysUnion(mandate, spicedb))
	var contradicted []contradiction
	for _, id := range ids {
		m, s := mandate.permissionshipOf(id), spicedb.permissionshipOf(id)
		if sameLookedUp(m, s) {
			continue
		}
		k := checkKey{graph.ObjectRef{Type: q.resourceType, ID: id}, q.permission, q.subject, q.context}
		if c, ok := r.judgeDifference(ctx, name, k, m, s); ok {
			contradicted = append(contradicted, c)
		}
	}
	r.requireListed(name, false, contradicted)
}

// judgeDifference decides a result on which Mandate (m) and SpiceDB's
// lookup (s) differ by SpiceDB's CheckPermission for k. It returns the
// check when SpiceDB's lookup contradicts it and Mandate agrees with it,
// and reports every other case.
func (r *lookupRun) judgeDifference(ctx context.Context, name string, k checkKey, m, s lookedUp) (contradiction, bool) {
	r.t.Helper()
	c := r.spicedbCheck(ctx, k)
	switch {
	case c.err != nil && spicedbGivesUp(c.err):
		r.stats.failedInBoth++
		return contradiction{}, false
	case c.err != nil:
		r.problem("%s: Mandate returns %v for %s, SpiceDB's lookup %v, and SpiceDB's CheckPermission fails with %v", name, m, checkName(k), s, c.err)
		return contradiction{}, false
	case sameLookedUp(c.lookedUp, m):
		return contradiction{key: k, lookup: s, check: c.lookedUp}, true
	case spicedbDropsTraits(r.schema, k.subject):
		// As in the check comparison: SpiceDB's check, its lookup or
		// both read without caveats or expiration for this subject.
		r.stats.droppedTraits++
		return contradiction{}, false
	case r.reducedCheckAgrees(ctx, k, m):
		r.stats.explained[falseCaveatKind]++
		return contradiction{}, false
	default:
		r.problem("%s: Mandate returns %v for %s; SpiceDB's lookup returns %v and its CheckPermission %v", name, m, checkName(k), s, c.lookedUp)
		return contradiction{}, false
	}
}

// falseCaveatKind names SpiceDB v1.56.2's check contradicting itself over
// relationships whose caveat is false by their own context.
const falseCaveatKind = "a check that SpiceDB answers otherwise once relationships whose caveat is false by their own context are removed"

// reducedCheckAgrees reports whether SpiceDB's check of k over the data
// without the relationships whose caveat is false by their own context
// returns m.
func (r *lookupRun) reducedCheckAgrees(ctx context.Context, k checkKey, m lookedUp) bool {
	if r.reducedSpiceDB == nil {
		return false
	}
	item, err := checkItem(k, r.universe.contexts[k.context])
	if err != nil {
		r.t.Fatalf("convert context of check %v: %v", k, err)
	}
	checkCtx, cancel := context.WithTimeout(ctx, spicedbCheckTimeout)
	defer cancel()
	resp, err := r.reducedSpiceDB(ctx).CheckPermission(checkCtx, &v1.CheckPermissionRequest{
		Consistency: fullyConsistent, Resource: item.Resource, Permission: item.Permission,
		Subject: item.Subject, Context: item.Context,
	})
	if err != nil {
		return false
	}
	again := lookedUp{permissionship: resp.GetPermissionship()}
	if again.permissionship == conditionalOn {
		again.missing = uniqueSorted(resp.GetPartialCaveatInfo().GetMissingRequiredContext())
	}
	return sameLookedUp(again, m)
}

// contradiction is a result of SpiceDB's lookup that its own check
// contradicts.
type contradiction struct {
	key           checkKey
	lookup, check lookedUp
	// besideWildcard is set for a subject listed by itself beside a
	// wildcard that covers it.
	besideWildcard bool
}

func (c contradiction) String() string {
	return fmt.Sprintf("%s: lookup %v, check %v", checkName(c.key), c.lookup, c.check)
}

// requireListed accepts the contradictions of SpiceDB's lookup by its own
// check found for one query only when explain names each of them or
// spicedbLookupContradictions lists the query.
func (r *lookupRun) requireListed(name string, subjects bool, found []contradiction) {
	r.t.Helper()
	if len(found) == 0 {
		return
	}
	if r.explain != nil {
		explained := 0
		for _, c := range found {
			if kind := r.explain(r.schema, subjects, c); kind != "" {
				explained++
				r.stats.explained[kind]++
			}
		}
		if explained == len(found) {
			r.stats.contradictions++
			return
		}
	}
	if _, ok := spicedbLookupContradictions[name]; ok {
		r.used[name] = true
		r.stats.contradictions++
		return
	}
	descriptions := make([]string, 0, len(found))
	for _, c := range found {
		descriptions = append(descriptions, c.String())
	}
	if r.countUnexplained {
		r.stats.unexplained++
		r.t.Logf("unclassified: %q: SpiceDB's lookup contradicts its CheckPermission, and Mandate agrees with the check, for %s",
			name, strings.Join(descriptions, "; "))
		return
	}
	r.problem("%q: SpiceDB's lookup contradicts its CheckPermission, and Mandate agrees with the check, for %s; "+
		"explain the kind of case or list the query in spicedbLookupContradictions with the reason", name, strings.Join(descriptions, "; "))
}

func checkName(k checkKey) string {
	return fmt.Sprintf("%s:%s#%s@%s", k.resource.Type, k.resource.ID, k.permission, k.subject)
}

// runSubjectQuery reads q from Mandate at every page size and checks the
// results against Mandate's checks of every subject of the query's type,
// then compares the unpaged result with SpiceDB's.
func (r *lookupRun) runSubjectQuery(ctx context.Context, q subjectQuery) {
	r.t.Helper()
	r.stats.subjectQueries++
	name := r.subjectQueryName(q)
	req := r.subjectRequest(q)

	var keys []checkKey
	for _, s := range r.universe.subjects {
		if s.Type == q.subjectType.typ && s.Relation == q.subjectType.relation {
			keys = append(keys, checkKey{q.resource, q.permission, s, q.context})
		}
	}
	answers := r.mandateChecks(ctx, keys)

	var unpaged subjectsFound
	var unpagedErr error
	for _, pageSize := range r.pageSizes {
		reader := &pagedReader{client: r.mandate, pageSize: pageSize, strict: true}
		found, problems, err := reader.subjects(ctx, req)
		r.stats.pages += reader.calls
		for _, p := range problems {
			r.problem("%s: %s", name, p)
		}
		if pageSize == 0 {
			unpaged, unpagedErr = found, err
		}
		if err != nil {
			if !anyFailed(answers) {
				r.problem("%s at page size %d: %v, but no check of these subjects fails", name, pageSize, err)
			}
			continue
		}
		r.verifySubjects(ctx, q, name, pageSize, found, keys, answers)
	}
	if r.spicedb != nil {
		r.compareSubjects(ctx, q, name, req, keys, unpaged, unpagedErr)
	}
}

// verifySubjects checks a LookupSubjects result against the checks of
// keys: a concrete subject has its check's result, and the result implies
// the check of every subject.
func (r *lookupRun) verifySubjects(ctx context.Context, q subjectQuery, name string, pageSize uint32, found subjectsFound, keys []checkKey, answers []checkAnswer) {
	r.t.Helper()
	for i, k := range keys {
		id := k.subject.ID
		a := answers[i]
		if a.err != nil {
			r.problem("%s at page size %d: returns %v, but CheckPermission of %s fails with %v", name, pageSize, found, id, a.err)
			continue
		}
		if got, ok := found.concrete[id]; ok && !sameLookedUp(got, a.lookedUp) {
			r.problem("%s at page size %d: returns %s %v, CheckPermission returns %v", name, pageSize, id, got, a.lookedUp)
		}
		if implied := found.permissionshipOf(id); implied != a.permissionship {
			r.problem("%s at page size %d: returns %v, which implies %v for %s, CheckPermission returns %v",
				name, pageSize, found, implied, id, a.lookedUp)
		}
	}
	for _, id := range slices.Sorted(mapsKeysUnion(found.concrete, found.excluded)) {
		if slices.ContainsFunc(keys, func(k checkKey) bool { return k.subject.ID == id }) {
			continue
		}
		k := checkKey{q.resource, q.permission, graph.SubjectRef{Type: q.subjectType.typ, ID: id, Relation: q.subjectType.relation}, q.context}
		r.problem("%s at page size %d: returns %v, which names %s, not among the subjects the test checks; CheckPermission returns %v",
			name, pageSize, found, id, r.mandateChecks(ctx, []checkKey{k})[0])
	}
}

// compareSubjects compares Mandate's unpaged LookupSubjects result with
// SpiceDB's, by what each implies for every subject of keys and by the
// subjects each lists. Where they differ, SpiceDB's CheckPermission
// decides which one is wrong.
func (r *lookupRun) compareSubjects(ctx context.Context, q subjectQuery, name string, req *v1.LookupSubjectsRequest, keys []checkKey, mandate subjectsFound, mandateErr error) {
	r.t.Helper()
	lookupCtx, cancel := context.WithTimeout(ctx, spicedbCheckTimeout)
	defer cancel()
	spicedb, _, err := (&pagedReader{client: r.spicedb}).subjects(lookupCtx, req)
	switch {
	case err != nil && spicedbGivesUp(err):
		r.stats.failedInBoth++
		return
	case err != nil && mandateErr != nil:
		r.stats.failedInBoth++
		return
	case err != nil:
		r.problem("%s: SpiceDB fails with %v, Mandate returns %v", name, err, mandate)
		return
	case mandateErr != nil:
		r.problem("%s: Mandate fails with %v, SpiceDB returns %v", name, mandateErr, spicedb)
		return
	}
	r.stats.comparedWithSpiceDB++

	ids := map[string]bool{}
	for _, k := range keys {
		ids[k.subject.ID] = true
	}
	for _, m := range []map[string]lookedUp{mandate.concrete, mandate.excluded, spicedb.concrete, spicedb.excluded} {
		for id := range m {
			ids[id] = true
		}
	}
	var contradicted []contradiction
	differing := false
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		m, s := mandate.implied(id), spicedb.implied(id)
		if sameLookedUp(m, s) {
			continue
		}
		differing = true
		k := checkKey{q.resource, q.permission, graph.SubjectRef{Type: q.subjectType.typ, ID: id, Relation: q.subjectType.relation}, q.context}
		if c, ok := r.judgeDifference(ctx, name, k, m, s); ok {
			contradicted = append(contradicted, c)
		}
	}
	r.requireListed(name, true, contradicted)
	if differing {
		return
	}
	// Both imply the same result for every subject, so they should list
	// the same subjects. SpiceDB may list a subject that its wildcard
	// also covers with the result of the subject's own path, which its
	// check contradicts.
	listed := subjectsFound{concrete: maps.Clone(spicedb.concrete), wildcard: spicedb.wildcard, excluded: maps.Clone(spicedb.excluded)}
	var besideWildcard []contradiction
	for id, s := range spicedb.concrete {
		m, ok := mandate.concrete[id]
		if !ok || sameLookedUp(m, s) {
			continue
		}
		k := checkKey{q.resource, q.permission, graph.SubjectRef{Type: q.subjectType.typ, ID: id, Relation: q.subjectType.relation}, q.context}
		if c, ok := r.judgeDifference(ctx, name, k, m, s); ok {
			c.besideWildcard = true
			besideWildcard = append(besideWildcard, c)
			listed.concrete[id] = m
		}
	}
	r.requireListed(name, true, besideWildcard)
	if leaked := r.dropSelfLeaks(q, &listed, mandate); leaked > 0 {
		r.stats.explained[selfLeakKind] += leaked
	}
	compared := mandate
	if mandate.wildcard != nil && listed.wildcard == nil &&
		q.subjectType.relation != "" && q.subjectType.relation != graph.Ellipsis && allowsWildcard(r.schema, q.subjectType.typ) {
		// Mandate lists the wildcard, with the subjects it excludes, that
		// its check, like SpiceDB's, matches for a subject with a
		// relation, and SpiceDB's lookup does not. Both imply the same
		// result for every subject of the query, which the loop above
		// compared.
		compared.wildcard = nil
		compared.excluded = nil
		r.stats.explained[wildcardWithRelationKind]++
	}
	if compared.String() != listed.String() {
		r.problem("%s: Mandate lists %v, SpiceDB lists %v", name, mandate, spicedb)
	}
}

// wildcardWithRelationKind names SpiceDB v1.56.2's LookupSubjects leaving
// out a wildcard that its check matches for subjects with a relation.
const wildcardWithRelationKind = "a wildcard relationship that check matches for a subject with a relation, and LookupSubjects does not list"

// selfLeakKind names SpiceDB v1.56.2's LookupSubjects listing the object
// of a `self` on another type beside a wildcard that covers it.
const selfLeakKind = "`self`, whose object LookupSubjects lists beside a wildcard as a subject of another type"

// dropSelfLeaks removes from listed, SpiceDB's result, the subjects that
// Mandate does not list and that are objects of a type whose `self` the
// query reaches, and returns how many it removed. Such an id, say g1 of
// group, stands for no subject of the requested type. The wildcard that
// covers it gives the same result for it in both, which compareSubjects
// has checked.
func (r *lookupRun) dropSelfLeaks(q subjectQuery, listed *subjectsFound, mandate subjectsFound) int {
	subject := graph.SubjectRef{Type: q.subjectType.typ, Relation: q.subjectType.relation}
	selfTypes := map[string]bool{}
	visitReachable(r.schema, q.resource.Type, q.permission, func(typ string, rw *schema.Rewrite) {
		if rw.Kind == schema.Self && (typ != subject.Type || subject.Relation != graph.Ellipsis) {
			selfTypes[typ] = true
		}
	})
	if len(selfTypes) == 0 {
		return 0
	}
	isSelfObject := func(id string) bool {
		return slices.ContainsFunc(r.universe.objects, func(o graph.ObjectRef) bool { return selfTypes[o.Type] && o.ID == id })
	}
	dropped := 0
	for _, m := range []struct{ spicedb, mandate map[string]lookedUp }{
		{listed.concrete, mandate.concrete}, {listed.excluded, mandate.excluded},
	} {
		for id := range m.spicedb {
			if _, ok := m.mandate[id]; !ok && isSelfObject(id) {
				delete(m.spicedb, id)
				dropped++
			}
		}
	}
	return dropped
}

// implied returns what the results imply a check of id returns, with the
// missing context of a concrete conditional result.
func (f subjectsFound) implied(id string) lookedUp {
	p := f.permissionshipOf(id)
	if l, ok := f.concrete[id]; ok && l.permissionship == p {
		return l
	}
	return lookedUp{permissionship: p, missingUnknown: p == conditionalOn}
}

func mapsKeysUnion[V any](a, b map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range a {
			if !yield(k) {
				return
			}
		}
		for k := range b {
			if _, ok := a[k]; ok {
				continue
			}
			if !yield(k) {
				return
			}
		}
	}
}
