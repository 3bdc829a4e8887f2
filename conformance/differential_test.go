package conformance

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/development"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"github.com/authzed/spicedb/pkg/tuple"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/engine/checkscript"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

var (
	differentialCases = flag.Int("differential.cases", 100,
		"number of random cases that TestDifferential compares, each a schema with relationships, its checks and lookups (15 with -short)")
	differentialFirstSeed = flag.Uint64("differential.seed", 1,
		"seed of TestDifferential's first case; rerun one failing case with -differential.seed=N -differential.cases=1")
)

// maxMismatchesPerSeed bounds the mismatches reported for one random
// schema, because one engine bug usually shows up in many checks.
const maxMismatchesPerSeed = 3

// TestDifferential compares Mandate with SpiceDB's development server on
// random schemas and relationships. Each case compares every check with
// SpiceDB's CheckPermission, and differentialLookupsPerCase random
// LookupResources and LookupSubjects queries with SpiceDB's and with
// Mandate's own checks. The schemas use every operator, wildcards, subject
// relations, arrows with .any() and .all(), caveats and expiration.
//
// The generated data has no cycles, because SpiceDB's result on a cycle
// is its max depth error where Mandate cuts the cycle. A check that
// SpiceDB still fails with that error is counted and not compared.
//
// For a long run, start it with low priority and a longer timeout, such
// as: nice -n 19 go test ./conformance -run '^TestDifferential$'
// -differential.cases=100000 -timeout 24h
func TestDifferential(t *testing.T) {
	cases := *differentialCases
	if testing.Short() {
		cases = min(cases, 15)
	}
	start := time.Now()
	total := newDifferentialStats()
	lookups := lookupStats{}
	for seed := *differentialFirstSeed; seed < *differentialFirstSeed+uint64(cases); seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			stats, lookupStats := runDifferentialSeed(t, seed)
			total.add(stats)
			lookups.add(lookupStats)
		})
	}
	t.Logf("%d random cases from seed %d in %v, %d schemas rejected by both SpiceDB and Mandate",
		cases, *differentialFirstSeed, time.Since(start).Round(time.Second), total.rejectedSchemas)
	logStats(t, total)
	logLookupStats(t, lookups)
}

func runDifferentialSeed(t *testing.T, seed uint64) (differentialStats, lookupStats) {
	stats := newDifferentialStats()
	g := newScenarioGenerator(seed)
	sc := g.scenario()
	ctx := context.Background()

	compiled, compileErr := schema.Compile(ctx, sc.schema)
	spicedb, devErrs, err := development.NewDevContext(ctx, &devinterface.RequestContext{
		Schema:        sc.schema,
		Relationships: coreTuples(t, sc.relationships),
	})
	if err != nil {
		t.Fatalf("create SpiceDB development context: %v\nschema:\n%s", err, sc.schema)
	}
	if devErrs != nil {
		if compileErr == nil && schemaRejected(devErrs) {
			t.Errorf("SpiceDB rejects the schema and Mandate accepts it: %v\nschema:\n%s", devErrs.GetInputErrors(), sc.schema)
		}
		if !schemaRejected(devErrs) {
			t.Fatalf("SpiceDB rejects the generated relationships: %v\nschema:\n%s\nrelationships:\n%s",
				devErrs.GetInputErrors(), sc.schema, strings.Join(sc.relationships, "\n"))
		}
		t.Logf("SpiceDB and Mandate reject the schema: %v", devErrs.GetInputErrors())
		stats.rejectedSchemas++
		return stats, lookupStats{}
	}
	defer spicedb.Dispose()
	if compileErr != nil {
		t.Fatalf("Mandate rejects a schema that SpiceDB accepts: %v\nschema:\n%s", compileErr, sc.schema)
	}

	conn, stop, err := spicedb.RunV1InMemoryService()
	if err != nil {
		t.Fatalf("start SpiceDB in-memory v1 service: %v", err)
	}
	defer stop()

	mandate := scenarioGraph(t, sc)
	cmp := checkComparer{
		seed:   seed,
		schema: compiled,
		snap:   mandate.HeadSnapshot(time.Now()),
		client: v1.NewPermissionsServiceClient(conn),
		stats:  &stats,
	}
	reduced := newReducedScenario(sc, compiled)
	if reduced != nil {
		cmp.recheck = reduced.check
	}
	mismatches := 0
	for _, c := range sc.checks {
		if !cmp.compare(ctx, t, c) {
			mismatches++
		}
		if mismatches >= maxMismatchesPerSeed {
			break
		}
	}
	lookups := compareScenarioLookups(t, seed, mandate, compiled, cmp.client, reduced)
	if t.Failed() {
		t.Logf("reproduce with -run 'TestDifferential/seed%d$' -differential.seed=%d\nschema:\n%s\nrelationships:\n%s",
			seed, seed, sc.schema, strings.Join(sc.relationships, "\n"))
	}
	return stats, lookups
}

// reducedScenario is a random case without relationships whose caveat is
// false by their own context and whose removal changes no result, served
// by SpiceDB and Mandate on first use. An engine that returns another
// result over it contradicts itself.
type reducedScenario struct {
	sc       scenario
	client   v1.PermissionsServiceClient
	snap     graph.Snapshot
	compiled *schema.Schema
}

// newReducedScenario returns sc without the relationships whose caveat is
// false by their own context and whose removal changes no result, or nil
// when it has none. Such a relationship grants nothing, except under an
// .all() arrow: there a false caveat makes the arrow false for its object,
// which it would not be without the relationship if the object had other
// relationships of that tupleset. So a relationship of an .all() tupleset
// is removed only when its object has no other relationship of it, and
// the arrow gives no permission either way.
func newReducedScenario(sc scenario, compiled *schema.Schema) *reducedScenario {
	allTuplesets := map[string]bool{}
	for typ, def := range compiled.Definitions {
		for _, rel := range def.Relations {
			if rel.IsPermission() {
				collectAllTuplesets(typ, rel.Rewrite, allTuplesets)
			}
		}
	}
	perObjectRelation := map[string]int{}
	for _, rel := range sc.relationships {
		perObjectRelation[objectRelation(rel)]++
	}
	reduced := sc
	reduced.relationships = slices.DeleteFunc(slices.Clone(sc.relationships), func(rel string) bool {
		if !falseByOwnContext(rel) {
			return false
		}
		key := objectRelation(rel)
		typ, _, _ := strings.Cut(key, ":")
		_, relation, _ := strings.Cut(key, "#")
		return !allTuplesets[typ+"#"+relation] || perObjectRelation[key] == 1
	})
	if len(reduced.relationships) == len(sc.relationships) {
		return nil
	}
	return &reducedScenario{sc: reduced}
}

// collectAllTuplesets adds "type#relation" to found for the tupleset of
// every .all() arrow in rw, a rewrite of a permission of typ.
func collectAllTuplesets(typ string, rw *schema.Rewrite, found map[string]bool) {
	if rw.Kind == schema.Arrow && rw.Function == schema.ArrowAll {
		found[typ+"#"+rw.Tupleset] = true
	}
	for _, child := range rw.Children {
		collectAllTuplesets(typ, child, found)
	}
}

// objectRelation returns the "type:id#relation" part of a relationship in
// SpiceDB's tuple syntax.
func objectRelation(rel string) string {
	resource, _, _ := strings.Cut(rel, "@")
	return resource
}

// spicedb returns a client of a SpiceDB development server with the
// reduced data.
func (r *reducedScenario) spicedb(ctx context.Context, t *testing.T) v1.PermissionsServiceClient {
	t.Helper()
	if r.client != nil {
		return r.client
	}
	dev, devErrs, err := development.NewDevContext(ctx, &devinterface.RequestContext{
		Schema: r.sc.schema, Relationships: coreTuples(t, r.sc.relationships),
	})
	if err != nil || devErrs != nil {
		t.Fatalf("create SpiceDB development context without relationships whose caveat is false: %v %v", err, devErrs)
	}
	t.Cleanup(dev.Dispose)
	conn, stop, err := dev.RunV1InMemoryService()
	if err != nil {
		t.Fatalf("start SpiceDB in-memory v1 service: %v", err)
	}
	t.Cleanup(stop)
	r.client = v1.NewPermissionsServiceClient(conn)
	return r.client
}

// check runs c on SpiceDB and on Mandate over the reduced data.
func (r *reducedScenario) check(ctx context.Context, t *testing.T, c checkCase) (*v1.CheckPermissionResponse, engine.Result, error) {
	t.Helper()
	client := r.spicedb(ctx, t)
	if r.compiled == nil {
		var err error
		r.snap = mandateSnapshot(t, r.sc)
		r.compiled, err = schema.Compile(ctx, r.sc.schema)
		if err != nil {
			t.Fatalf("compile schema: %v", err)
		}
	}
	checkCtx, cancel := context.WithTimeout(ctx, spicedbCheckTimeout)
	defer cancel()
	resp, err := client.CheckPermission(checkCtx, c.request(t))
	if err != nil {
		return nil, engine.Result{}, err
	}
	got, err := engine.Check(r.compiled, r.snap, engine.Limits{}, engine.CheckRequest{
		Resource: c.resource, Permission: c.permission, Subject: c.subject, Context: c.contextStruct(t).AsMap(),
	})
	return resp, got, err
}

// falseByOwnContext reports whether a generated relationship has a caveat
// whose stored context sets every parameter and makes it false, so that
// no request context can change it. It evaluates only the caveats of
// differentialCaveats.
func falseByOwnContext(rel string) bool {
	for _, part := range strings.Split(rel, "[")[1:] {
		name, contextJSON, ok := strings.Cut(strings.TrimSuffix(part, "]"), ":")
		if !ok || name == "expiration" {
			continue
		}
		var values map[string]any
		if err := json.Unmarshal([]byte(contextJSON), &values); err != nil {
			continue
		}
		number := func(key string) (float64, bool) { v, ok := values[key].(float64); return v, ok }
		switch name {
		case "over":
			if n, ok := number("n"); ok && n <= 10 {
				return true
			}
		case "flag":
			if b, ok := values["b"].(bool); ok && !b {
				return true
			}
		case "less":
			x, okX := number("x")
			y, okY := number("y")
			if okX && okY && x >= y {
				return true
			}
		}
	}
	return false
}

// schemaRejected reports whether SpiceDB's errors are about the schema
// rather than the relationships.
func schemaRejected(errs *devinterface.DeveloperErrors) bool {
	for _, e := range errs.GetInputErrors() {
		if e.GetSource() == devinterface.DeveloperError_SCHEMA {
			return true
		}
	}
	return false
}

func coreTuples(t *testing.T, rels []string) []*core.RelationTuple {
	t.Helper()
	out := make([]*core.RelationTuple, 0, len(rels))
	for _, s := range rels {
		out = append(out, tuple.MustParse(s).ToCoreTuple())
	}
	return out
}

// mandateSnapshot loads the scenario into an in-memory graph and returns
// a snapshot of it at the current time.
func mandateSnapshot(t *testing.T, sc scenario) graph.Snapshot {
	t.Helper()
	return scenarioGraph(t, sc).HeadSnapshot(time.Now())
}

// scenarioGraph loads the scenario into an in-memory graph, which closes
// when the test ends.
func scenarioGraph(t *testing.T, sc scenario) *graph.Graph {
	t.Helper()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatalf("open in-memory graph: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	})
	_, err = g.Update(context.Background(), func(tx *graph.Tx) error {
		tx.SetSchema(sc.schema)
		for _, s := range sc.relationships {
			r, err := checkscript.Relationship(s)
			if err != nil {
				return err
			}
			tx.Touch(r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write scenario to the graph: %v", err)
	}
	return g
}

// scenario is one random schema with relationships and the checks to
// compare.
type scenario struct {
	schema        string
	relationships []string
	checks        []checkCase
}

type checkCase struct {
	resource   graph.ObjectRef
	permission string
	subject    graph.SubjectRef
	context    map[string]any
}

func (c checkCase) String() string {
	s := fmt.Sprintf("%s:%s#%s@%s", c.resource.Type, c.resource.ID, c.permission, c.subject)
	if c.context != nil {
		s += fmt.Sprintf(" with %v", c.context)
	}
	return s
}

// contextStruct returns the check's caveat context as the v1 API sends it,
// so both engines see the same JSON number types.
func (c checkCase) contextStruct(t *testing.T) *structpb.Struct {
	if c.context == nil {
		return nil
	}
	s, err := structpb.NewStruct(c.context)
	if err != nil {
		t.Fatalf("convert context %v: %v", c.context, err)
	}
	return s
}

// scenarioGenerator builds random scenarios over four object types:
// user, group (with nested groups), folder (with parent folders) and doc.
type scenarioGenerator struct {
	rand *rand.Rand
}

func newScenarioGenerator(seed uint64) *scenarioGenerator {
	return &scenarioGenerator{rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

const differentialCaveats = `caveat over(n int) {
  n > 10
}

caveat flag(b bool) {
  b
}

caveat less(x int, y int) {
  x < y
}
`

// memberSubjectTypes are the subject types a relation that lists members
// may allow.
var memberSubjectTypes = []string{
	"user",
	"user:*",
	"group#member",
	"user with over",
	"user with flag",
	"user with expiration",
	"user:* with flag",
	"group#member with less",
	"user with over and expiration",
	"group#access",
	"group:*",
}

// groupSubjectTypes are the subject types of the group relations. They
// leave out wildcards, because SpiceDB rejects a relation that includes
// a wildcard through group#member.
var groupSubjectTypes = []string{
	"user",
	"group#member",
	"user with over",
	"user with flag",
	"user with expiration",
	"group#member with less",
	"user with over and expiration",
}

var objectIDs = map[string][]string{
	"user":   {"u1", "u2", "u3"},
	"group":  {"g1", "g2", "g3"},
	"folder": {"f1", "f2", "f3"},
	"doc":    {"d1", "d2"},
}

// caveatContexts lists the contexts stored with relationships and sent
// with checks: empty, partial, true and false for each caveat.
var caveatContexts = map[string][]map[string]any{
	"over": {nil, {"n": 5}, {"n": 20}},
	"flag": {nil, {"b": true}, {"b": false}},
	"less": {nil, {"x": 1}, {"y": 5}, {"x": 1, "y": 5}, {"x": 9, "y": 5}},
}

var checkContexts = []map[string]any{
	nil,
	{"n": 20, "b": true, "x": 1, "y": 5},
	{"n": 5, "b": false, "x": 9, "y": 5},
	{"b": true, "x": 1},
	{"n": "many", "b": true},
}

// relationDef is a relation or permission of a generated definition.
type relationDef struct {
	name    string
	allowed []string // subject types of a relation; empty for a permission
	expr    string   // rewrite of a permission
}

type definitionDef struct {
	name      string
	relations []relationDef
}

func (g *scenarioGenerator) pick(options []string) string {
	return options[g.rand.IntN(len(options))]
}

// subset returns a random non-empty subset of options, in their order.
func (g *scenarioGenerator) subset(options []string, maxSize int) []string {
	n := 1 + g.rand.IntN(maxSize)
	chosen := g.rand.Perm(len(options))[:min(n, len(options))]
	slices.Sort(chosen)
	out := make([]string, 0, len(chosen))
	for _, i := range chosen {
		out = append(out, options[i])
	}
	return out
}

// expr returns a random rewrite over atoms with at most depth nested
// operators.
func (g *scenarioGenerator) expr(atoms []string, depth int) string {
	if depth == 0 || g.rand.IntN(3) == 0 {
		return g.pick(atoms)
	}
	op := g.pick([]string{"+", "&", "-"})
	return "(" + g.expr(atoms, depth-1) + " " + op + " " + g.expr(atoms, depth-1) + ")"
}

func (g *scenarioGenerator) definitions() []definitionDef {
	user := definitionDef{name: "user", relations: []relationDef{
		{name: "friend", allowed: g.subset([]string{"user", "user with flag", "user:*"}, 2)},
	}}
	user.relations = append(user.relations, relationDef{
		name: "reach",
		expr: g.expr([]string{"friend", "self", "nil"}, 2),
	})

	group := definitionDef{name: "group", relations: []relationDef{
		{name: "member", allowed: g.subset(groupSubjectTypes, 4)},
		{name: "admin", allowed: g.subset(groupSubjectTypes[:5], 2)},
	}}
	group.relations = append(group.relations, relationDef{
		name: "access",
		expr: g.expr([]string{"member", "admin", "self", "nil"}, 2),
	})

	folder := definitionDef{name: "folder", relations: []relationDef{
		{name: "parent", allowed: g.subset([]string{"folder", "folder with flag", "folder with expiration"}, 2)},
		{name: "viewer", allowed: g.subset(memberSubjectTypes, 3)},
		{name: "editor", allowed: g.subset(memberSubjectTypes, 3)},
	}}
	folder.relations = append(folder.relations, relationDef{
		name: "view",
		expr: g.expr([]string{"viewer", "editor", "parent->view", "parent.all(viewer)", "parent->editor", "nil"}, 2),
	})

	doc := definitionDef{name: "doc", relations: []relationDef{
		{name: "folder", allowed: g.subset([]string{"folder", "folder with less", "folder with expiration"}, 2)},
		{name: "owners", allowed: g.subset([]string{"group", "group with flag", "group#member"}, 2)},
		{name: "viewer", allowed: g.subset(memberSubjectTypes, 4)},
		{name: "editor", allowed: g.subset(memberSubjectTypes, 3)},
		{name: "banned", allowed: g.subset(memberSubjectTypes, 3)},
	}}
	atoms := []string{
		"viewer", "editor", "banned", "nil",
		"folder->view", "folder.all(view)", "folder->editor", "folder.any(viewer)",
		"owners->member", "owners.all(member)", "owners->access",
	}
	for _, name := range []string{"perm_a", "perm_b", "perm_c"} {
		doc.relations = append(doc.relations, relationDef{name: name, expr: g.expr(atoms, 3)})
		atoms = append(atoms, name)
	}
	return []definitionDef{user, group, folder, doc}
}

// scenarioSubjects are the subjects of every check of a random case. No
// relationship names user:u4.
var scenarioSubjects = []graph.SubjectRef{
	{Type: "user", ID: "u1"},
	{Type: "user", ID: "u2"},
	{Type: "user", ID: "u3"},
	{Type: "user", ID: "u4"},
	{Type: "group", ID: "g1", Relation: "member"},
	{Type: "group", ID: "g2", Relation: "access"},
	{Type: "group", ID: "g1"},
}

func (g *scenarioGenerator) scenario() scenario {
	defs := g.definitions()
	var b strings.Builder
	b.WriteString("use expiration\nuse self\n\n")
	b.WriteString(differentialCaveats)
	for _, d := range defs {
		fmt.Fprintf(&b, "\ndefinition %s {\n", d.name)
		for _, r := range d.relations {
			if r.expr != "" {
				fmt.Fprintf(&b, "  permission %s = %s\n", r.name, r.expr)
			} else {
				fmt.Fprintf(&b, "  relation %s: %s\n", r.name, strings.Join(r.allowed, " | "))
			}
		}
		b.WriteString("}\n")
	}
	sc := scenario{schema: b.String()}

	seen := make(map[string]bool)
	for _, d := range defs {
		for _, id := range objectIDs[d.name] {
			for _, r := range d.relations {
				if r.expr != "" {
					continue
				}
				for range g.rand.IntN(3) {
					rel := g.relationship(d.name+":"+id+"#"+r.name, g.pick(r.allowed))
					if rel == "" {
						continue
					}
					key := rel[:strings.IndexAny(rel+"[", "[")]
					if seen[key] {
						continue
					}
					seen[key] = true
					sc.relationships = append(sc.relationships, rel)
				}
			}
		}
	}

	for _, d := range defs {
		for _, id := range objectIDs[d.name] {
			for _, r := range d.relations {
				for _, subject := range scenarioSubjects {
					checkContext := checkContexts[g.rand.IntN(len(checkContexts))]
					sc.checks = append(sc.checks, checkCase{
						resource:   graph.ObjectRef{Type: d.name, ID: id},
						permission: r.name,
						subject:    subject,
						context:    checkContext,
					})
				}
			}
		}
	}
	return sc
}

// relationship returns a random relationship of resourceRelation with a
// subject of the given allowed type, in SpiceDB's tuple syntax.
func (g *scenarioGenerator) relationship(resourceRelation, allowed string) string {
	subjectType, traits, _ := strings.Cut(allowed, " with ")
	typeName, subjectRelation, _ := strings.Cut(subjectType, "#")
	var subject string
	if strings.HasSuffix(typeName, ":*") {
		subject = typeName
	} else {
		id, ok := g.subjectID(resourceRelation, typeName)
		if !ok {
			return ""
		}
		subject = typeName + ":" + id
		if subjectRelation != "" {
			subject += "#" + subjectRelation
		}
	}
	rel := resourceRelation + "@" + subject
	if traits == "" {
		return rel
	}
	for _, trait := range strings.Split(traits, " and ") {
		if trait == "expiration" {
			continue
		}
		contexts := caveatContexts[trait]
		caveatContext := contexts[g.rand.IntN(len(contexts))]
		if caveatContext == nil {
			rel += "[" + trait + "]"
			continue
		}
		rel += fmt.Sprintf("[%s:%s]", trait, jsonObject(caveatContext))
	}
	if strings.Contains(traits, "expiration") {
		if g.rand.IntN(3) == 0 {
			rel += "[expiration:2020-01-01T00:00:00Z]"
		} else {
			rel += "[expiration:2300-01-01T00:00:00Z]"
		}
	}
	return rel
}

// subjectID picks the id of a subject of subjectType for a relationship
// of resourceRelation. A subject of the resource's own type gets a later
// id than the resource, so the data has no cycles. SpiceDB's development
// server has no dispatch cache, so on a cycle that does not contain the
// subject it takes exponential time before it fails with its max depth
// error.
// It returns false when no later id exists.
func (g *scenarioGenerator) subjectID(resourceRelation, subjectType string) (string, bool) {
	ids := objectIDs[subjectType]
	resourceType, rest, _ := strings.Cut(resourceRelation, ":")
	if resourceType != subjectType {
		return g.pick(ids), true
	}
	resourceID, _, _ := strings.Cut(rest, "#")
	later := ids[slices.Index(ids, resourceID)+1:]
	if len(later) == 0 {
		return "", false
	}
	return g.pick(later), true
}

// jsonObject formats a flat context map as JSON with sorted keys.
func jsonObject(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%q:%v", k, m[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
