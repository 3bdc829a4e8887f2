package server_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/spicedb/pkg/development"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"github.com/authzed/spicedb/pkg/validationfile"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
	"github.com/mandate-iam/mandate/server"
)

// reflectRichSchema uses every element that the reflection calls report:
// doc comments, caveats with several parameter types, wildcards, subject
// relations, caveated and expiring subject types, arrows with .any and
// .all, intersection, exclusion, nil and self.
const reflectRichSchema = `use expiration
use self

/** user is a person. */
definition user {}

// ip_allowed passes when the address is in the CIDR.
caveat ip_allowed(ip ipaddress, cidr string) {
	ip.in_cidr(cidr)
}

/**
 * has_tags needs every tag.
 */
caveat has_tags(tags list<string>, required string, limits map<int>, when timestamp, ttl duration) {
	required in tags && limits["x"] > 0 && when > timestamp("2020-01-01T00:00:00Z") && ttl > duration("1s")
}

definition group {
	// member lists the people in the group and nested groups.
	relation member: user | group#member | user with ip_allowed
	relation manager: user with expiration
	permission manage = manager + member
}

/** folder holds documents. */
definition folder {
	relation parent: folder
	relation viewer: user | group#member | user with has_tags
	relation owner: user
	relation public: user:*
	/** view is inherited from the parent folder. */
	permission view = viewer + owner + public + parent->view
	permission view_all = parent.all(view) & viewer
	permission self_view = self + nil
}

definition document {
	relation folder: folder | group#member | group
	relation viewer: user | user:* with ip_allowed
	relation banned: user
	// view is what readers need.
	permission view = (viewer + folder->view) - banned
	permission edit = folder.any(owner) & viewer
	permission nothing = nil
}
`

// reflectSmallSchema is the schema of the hand-checked cases.
const reflectSmallSchema = `definition user {}

definition group {
	relation member: user | group#member
}

definition folder {
	relation parent: folder
	relation viewer: user | group#member
	permission view = viewer + parent->view
}

definition document {
	relation folder: folder
	relation viewer: user
	relation banned: user
	permission view = (viewer + folder->view) - banned
}
`

// startReflectMandate runs a Mandate server with an in-memory graph on a
// free port of 127.0.0.1 and returns a client connected to it. The server
// stops when the test ends.
func startReflectMandate(t *testing.T) *authzed.Client {
	t.Helper()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	srv, err := server.New(server.Config{Graph: g, InsecureNoAuth: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	client, err := authzed.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatalf("new client for %s: %v", lis.Addr(), err)
	}
	t.Cleanup(func() {
		client.Close()
		cancel()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	})
	return client
}

// startReflectSpiceDB runs SpiceDB's v1 schema service in process, on an
// in-memory connection and datastore, as its development package offers
// it, and returns a client for it.
func startReflectSpiceDB(t *testing.T) v1.SchemaServiceClient {
	t.Helper()
	dc, devErrs, err := development.NewDevContext(context.Background(), &devinterface.RequestContext{})
	if err != nil {
		t.Fatalf("new SpiceDB development context: %v", err)
	}
	if devErrs != nil {
		t.Fatalf("new SpiceDB development context: %v", devErrs)
	}
	conn, stop, err := dc.RunV1InMemoryService()
	if err != nil {
		t.Fatalf("run SpiceDB in-memory service: %v", err)
	}
	t.Cleanup(func() {
		stop()
		dc.Dispose()
	})
	return v1.NewSchemaServiceClient(conn)
}

// reflectPair is a Mandate server and a SpiceDB service with the same
// schema, for calls whose responses must be equal.
type reflectPair struct {
	mandate v1.SchemaServiceClient
	spicedb v1.SchemaServiceClient
}

// newReflectPair starts both servers and writes schemaText to each,
// unless it is empty.
func newReflectPair(t *testing.T, schemaText string) reflectPair {
	t.Helper()
	p := reflectPair{mandate: startReflectMandate(t), spicedb: startReflectSpiceDB(t)}
	if schemaText == "" {
		return p
	}
	ctx := reflectContext(t)
	if _, err := p.spicedb.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schemaText}); err != nil {
		t.Fatalf("SpiceDB WriteSchema: %v", err)
	}
	if _, err := p.mandate.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schemaText}); err != nil {
		t.Fatalf("Mandate WriteSchema: %v", err)
	}
	return p
}

func reflectContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requireSameResult fails the test unless Mandate and SpiceDB both
// returned an error with the same gRPC code, or both returned responses
// that are equal apart from their ZedToken.
func requireSameResult(t *testing.T, call string, mandate proto.Message, mandateErr error, spicedb proto.Message, spicedbErr error) {
	t.Helper()
	if mandateErr != nil || spicedbErr != nil {
		if status.Code(mandateErr) != status.Code(spicedbErr) {
			t.Errorf("%s: Mandate returned error %v, SpiceDB returned error %v", call, mandateErr, spicedbErr)
		}
		return
	}
	requireReadAt(t, call, mandate)
	m, s := withoutReadAt(mandate), withoutReadAt(spicedb)
	if !proto.Equal(m, s) {
		t.Errorf("%s: responses differ\nMandate: %s\nSpiceDB: %s", call, protojson.Format(m), protojson.Format(s))
	}
}

// requireReadAt checks that a Mandate response carries a ZedToken.
func requireReadAt(t *testing.T, call string, m proto.Message) {
	t.Helper()
	field := m.ProtoReflect().Descriptor().Fields().ByName("read_at")
	if field == nil {
		t.Fatalf("%s: response %T has no read_at field", call, m)
	}
	if !m.ProtoReflect().Has(field) {
		t.Errorf("%s: Mandate response has no read_at ZedToken", call)
	}
}

func withoutReadAt(m proto.Message) proto.Message {
	c := proto.Clone(m)
	c.ProtoReflect().Clear(c.ProtoReflect().Descriptor().Fields().ByName("read_at"))
	return c
}

// spicedbTestConfigSchemas returns the schema of every validation file
// that SpiceDB v1.56 uses for its integration tests, keyed by file name.
func spicedbTestConfigSchemas(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/authzed/spicedb").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/authzed/spicedb: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "internal", "services", "integrationtesting", "testconfigs")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no validation files found in %s: %v", dir, err)
	}
	schemas := make(map[string]string, len(paths))
	for _, path := range paths {
		contents, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		vf, err := validationfile.DecodeValidationFile(contents)
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		if vf.Schema.Schema != "" {
			schemas[filepath.Base(path)] = vf.Schema.Schema
		}
	}
	return schemas
}

// reflectCorpus returns the schemas the comparisons run on, keyed by a
// name for the subtest, sorted by that name.
func reflectCorpus(t *testing.T) ([]string, map[string]string) {
	t.Helper()
	schemas := spicedbTestConfigSchemas(t)
	schemas["rich"] = reflectRichSchema
	schemas["small"] = reflectSmallSchema
	names := make([]string, 0, len(schemas))
	for name := range schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, schemas
}

// reflectFilterCases returns ReflectSchema filter lists for a schema,
// built from its own names so that they match something, and a few that
// both servers must reject.
func reflectFilterCases(t *testing.T, schemaText string) [][]*v1.ReflectionSchemaFilter {
	t.Helper()
	compiled, err := schema.Compile(context.Background(), schemaText)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	cases := [][]*v1.ReflectionSchemaFilter{
		nil,
		{{OptionalDefinitionNameFilter: "nosuch"}},
		{{OptionalCaveatNameFilter: "nosuch"}},
		{{OptionalDefinitionNameFilter: "a", OptionalCaveatNameFilter: "b"}},
		{{OptionalRelationNameFilter: "a"}},
		{{OptionalPermissionNameFilter: "a"}},
		{{OptionalDefinitionNameFilter: "a", OptionalRelationNameFilter: "b", OptionalPermissionNameFilter: "c"}},
	}
	for _, def := range compiled.Definitions {
		prefix := def.Name[:1]
		cases = append(cases,
			[]*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: def.Name}},
			[]*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: prefix}, {OptionalCaveatNameFilter: "i"}},
		)
		for _, name := range def.Order {
			rel := def.Relations[name]
			if rel.IsPermission() {
				cases = append(cases, []*v1.ReflectionSchemaFilter{
					{OptionalDefinitionNameFilter: prefix, OptionalPermissionNameFilter: name[:1]},
				})
				continue
			}
			cases = append(cases, []*v1.ReflectionSchemaFilter{
				{OptionalDefinitionNameFilter: def.Name, OptionalRelationNameFilter: name},
				{OptionalDefinitionNameFilter: "nosuch", OptionalPermissionNameFilter: name},
			})
		}
	}
	for name := range compiled.Caveats {
		cases = append(cases, []*v1.ReflectionSchemaFilter{{OptionalCaveatNameFilter: name[:1]}})
	}
	return cases
}

func TestReflectSchemaMatchesSpiceDB(t *testing.T) {
	names, schemas := reflectCorpus(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newReflectPair(t, schemas[name])
			ctx := reflectContext(t)
			for _, filters := range reflectFilterCases(t, schemas[name]) {
				req := &v1.ReflectSchemaRequest{OptionalFilters: filters}
				m, mErr := p.mandate.ReflectSchema(ctx, req)
				s, sErr := p.spicedb.ReflectSchema(ctx, req)
				requireSameResult(t, "ReflectSchema "+req.String(), m, mErr, s, sErr)
			}
		})
	}
}

func TestReflectSchemaWithoutSchema(t *testing.T) {
	p := newReflectPair(t, "")
	ctx := reflectContext(t)
	m, mErr := p.mandate.ReflectSchema(ctx, &v1.ReflectSchemaRequest{})
	s, sErr := p.spicedb.ReflectSchema(ctx, &v1.ReflectSchemaRequest{})
	requireSameResult(t, "ReflectSchema", m, mErr, s, sErr)
	if mErr == nil && (len(m.GetDefinitions()) != 0 || len(m.GetCaveats()) != 0) {
		t.Errorf("ReflectSchema without a schema = %v, want no definitions and no caveats", m)
	}

	computableReq := &v1.ComputablePermissionsRequest{DefinitionName: "user"}
	mc, mErr := p.mandate.ComputablePermissions(ctx, computableReq)
	sc, sErr := p.spicedb.ComputablePermissions(ctx, computableReq)
	requireSameResult(t, "ComputablePermissions", mc, mErr, sc, sErr)
	if status.Code(mErr) != codes.FailedPrecondition {
		t.Errorf("ComputablePermissions without a schema: got %v, want FailedPrecondition", mErr)
	}

	dependentReq := &v1.DependentRelationsRequest{DefinitionName: "document", PermissionName: "view"}
	md, mErr := p.mandate.DependentRelations(ctx, dependentReq)
	sd, sErr := p.spicedb.DependentRelations(ctx, dependentReq)
	requireSameResult(t, "DependentRelations", md, mErr, sd, sErr)
	if status.Code(mErr) != codes.FailedPrecondition {
		t.Errorf("DependentRelations without a schema: got %v, want FailedPrecondition", mErr)
	}
}

// TestReflectSchemaAtExactSnapshot checks that reflection reads the schema
// of the requested revision, not the newest one.
func TestReflectSchemaAtExactSnapshot(t *testing.T) {
	client := startReflectMandate(t)
	ctx := reflectContext(t)
	first, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: "definition user {}"})
	if err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	if _, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: "definition account {}"}); err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	resp, err := client.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: &v1.Consistency{
		Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: first.GetWrittenAt()},
	}})
	if err != nil {
		t.Fatalf("ReflectSchema at the first revision: %v", err)
	}
	if len(resp.GetDefinitions()) != 1 || resp.GetDefinitions()[0].GetName() != "user" {
		t.Errorf("ReflectSchema at the first revision = %v, want the one definition user", resp.GetDefinitions())
	}
}

// reflectDiffBase and reflectDiffChanges cover every kind of DiffSchema
// entry: each change is compared with the base on both servers.
const reflectDiffBase = `/** user doc */
definition user {}

// old caveat comment
caveat only_on(day string, count int) {
	day == "tuesday" && count > 1
}

caveat removed_caveat(x int) {
	x == 1
}

definition removed_definition {}

definition document {
	// viewer doc
	relation viewer: user | user with only_on
	relation editor: user
	relation removed_relation: user
	/** view doc */
	permission view = viewer + editor
	permission removed_permission = editor
}
`

var reflectDiffChanges = map[string]string{
	"identical": reflectDiffBase,
	"everything": `/** new user doc */
definition user {}

definition team {
	relation member: user
}

// new caveat comment
caveat only_on(day string, count double, region string) {
	day == "wednesday" && count > 1.0 && region != ""
}

caveat added_caveat(y int) {
	y == 2
}

definition document {
	// new viewer doc
	relation viewer: user | team#member | user:*
	relation editor: user
	relation added_relation: user
	/** new view doc */
	permission view = viewer & editor
	permission added_permission = viewer
}
`,
	"empty": "",
	"only comments": `definition user {}

caveat only_on(day string, count int) {
	day == "tuesday" && count > 1
}

caveat removed_caveat(x int) {
	x == 1
}

definition removed_definition {}

definition document {
	relation viewer: user | user with only_on
	relation editor: user
	relation removed_relation: user
	permission view = viewer + editor
	permission removed_permission = editor
}
`,
	"relation becomes permission": `definition user {}

definition document {
	relation viewer: user
	permission editor = viewer
}
`,
}

// sortDiffs orders DiffSchema entries by their text, because SpiceDB
// returns them in map order.
func sortDiffs(t *testing.T, diffs []*v1.ReflectionSchemaDiff) {
	t.Helper()
	key := func(d *v1.ReflectionSchemaDiff) string {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(d)
		if err != nil {
			t.Fatalf("marshal diff entry: %v", err)
		}
		return string(b)
	}
	sort.Slice(diffs, func(i, j int) bool { return key(diffs[i]) < key(diffs[j]) })
}

func requireSameDiff(t *testing.T, p reflectPair, comparison string) {
	t.Helper()
	ctx := reflectContext(t)
	req := &v1.DiffSchemaRequest{ComparisonSchema: comparison}
	m, mErr := p.mandate.DiffSchema(ctx, req)
	s, sErr := p.spicedb.DiffSchema(ctx, req)
	if mErr == nil && sErr == nil {
		sortDiffs(t, m.Diffs)
		sortDiffs(t, s.Diffs)
	}
	requireSameResult(t, "DiffSchema", m, mErr, s, sErr)
}

func TestDiffSchemaMatchesSpiceDB(t *testing.T) {
	p := newReflectPair(t, reflectDiffBase)
	for name, comparison := range reflectDiffChanges {
		t.Run(name, func(t *testing.T) {
			requireSameDiff(t, p, comparison)
		})
	}
}

func TestDiffSchemaInvalidComparison(t *testing.T) {
	p := newReflectPair(t, reflectDiffBase)
	ctx := reflectContext(t)
	req := &v1.DiffSchemaRequest{ComparisonSchema: "definition user {"}
	_, mErr := p.mandate.DiffSchema(ctx, req)
	_, sErr := p.spicedb.DiffSchema(ctx, req)
	if status.Code(mErr) != codes.InvalidArgument {
		t.Errorf("DiffSchema with a syntax error: Mandate returned %v, want InvalidArgument", mErr)
	}
	if status.Code(sErr) != codes.InvalidArgument {
		t.Errorf("DiffSchema with a syntax error: SpiceDB returned %v, want InvalidArgument", sErr)
	}
	if !strings.Contains(status.Convert(mErr).Message(), "line 1") {
		t.Errorf("DiffSchema error %q does not name the line", status.Convert(mErr).Message())
	}
}

// TestDiffSchemaAcrossTestConfigs diffs each test config schema against
// the next one and against the rich schema, which changes definitions
// that share a name, such as user and document.
func TestDiffSchemaAcrossTestConfigs(t *testing.T) {
	names, schemas := reflectCorpus(t)
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newReflectPair(t, schemas[name])
			requireSameDiff(t, p, schemas[names[(i+1)%len(names)]])
			requireSameDiff(t, p, reflectRichSchema)
			requireSameDiff(t, p, schemas[name])
		})
	}
}

func TestDiffSchemaWithoutSchema(t *testing.T) {
	p := newReflectPair(t, "")
	requireSameDiff(t, p, reflectRichSchema)
}

// TestDiffSchemaOrderIsStable checks that Mandate returns the entries of
// one diff in the same order on every call.
func TestDiffSchemaOrderIsStable(t *testing.T) {
	client := startReflectMandate(t)
	ctx := reflectContext(t)
	if _, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: reflectDiffBase}); err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	req := &v1.DiffSchemaRequest{ComparisonSchema: reflectDiffChanges["everything"]}
	first, err := client.DiffSchema(ctx, req)
	if err != nil {
		t.Fatalf("DiffSchema: %v", err)
	}
	for range 10 {
		again, err := client.DiffSchema(ctx, req)
		if err != nil {
			t.Fatalf("DiffSchema: %v", err)
		}
		if !proto.Equal(withoutReadAt(first), withoutReadAt(again)) {
			t.Fatalf("DiffSchema order changed between calls:\n%s\n%s", protojson.Format(first), protojson.Format(again))
		}
	}
}

func TestComputablePermissionsMatchesSpiceDB(t *testing.T) {
	names, schemas := reflectCorpus(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newReflectPair(t, schemas[name])
			ctx := reflectContext(t)
			compiled, err := schema.Compile(ctx, schemas[name])
			if err != nil {
				t.Fatalf("compile schema: %v", err)
			}
			requests := []*v1.ComputablePermissionsRequest{
				{DefinitionName: "nosuch"},
				{DefinitionName: "nosuch", RelationName: "viewer"},
			}
			for _, def := range compiled.Definitions {
				requests = append(requests,
					&v1.ComputablePermissionsRequest{DefinitionName: def.Name},
					&v1.ComputablePermissionsRequest{DefinitionName: def.Name, RelationName: "nosuch"},
					&v1.ComputablePermissionsRequest{DefinitionName: def.Name, OptionalDefinitionNameFilter: def.Name[:1]},
				)
				for _, rel := range def.Order {
					requests = append(requests,
						&v1.ComputablePermissionsRequest{DefinitionName: def.Name, RelationName: rel},
						&v1.ComputablePermissionsRequest{DefinitionName: def.Name, RelationName: rel, OptionalDefinitionNameFilter: "d"},
					)
				}
			}
			for _, req := range requests {
				m, mErr := p.mandate.ComputablePermissions(ctx, req)
				s, sErr := p.spicedb.ComputablePermissions(ctx, req)
				requireSameResult(t, "ComputablePermissions "+req.String(), m, mErr, s, sErr)
			}
		})
	}
}

func TestDependentRelationsMatchesSpiceDB(t *testing.T) {
	names, schemas := reflectCorpus(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newReflectPair(t, schemas[name])
			ctx := reflectContext(t)
			compiled, err := schema.Compile(ctx, schemas[name])
			if err != nil {
				t.Fatalf("compile schema: %v", err)
			}
			requests := []*v1.DependentRelationsRequest{
				{DefinitionName: "nosuch", PermissionName: "view"},
			}
			for _, def := range compiled.Definitions {
				requests = append(requests, &v1.DependentRelationsRequest{DefinitionName: def.Name, PermissionName: "nosuch"})
				for _, rel := range def.Order {
					requests = append(requests, &v1.DependentRelationsRequest{DefinitionName: def.Name, PermissionName: rel})
				}
			}
			for _, req := range requests {
				m, mErr := p.mandate.DependentRelations(ctx, req)
				s, sErr := p.spicedb.DependentRelations(ctx, req)
				requireSameResult(t, "DependentRelations "+req.String(), m, mErr, s, sErr)
			}
		})
	}
}

// relationRefs renders reflection relation references as
// "definition#relation", with " (permission)" after permissions.
func relationRefs(refs []*v1.ReflectionRelationReference) string {
	parts := make([]string, 0, len(refs))
	for _, r := range refs {
		s := r.GetDefinitionName() + "#" + r.GetRelationName()
		if r.GetIsPermission() {
			s += " (permission)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// TestComputablePermissionsHandChecked checks results worked out by hand
// from reflectSmallSchema, in case both servers were wrong the same way.
func TestComputablePermissionsHandChecked(t *testing.T) {
	client := startReflectMandate(t)
	ctx := reflectContext(t)
	if _, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: reflectSmallSchema}); err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	cases := []struct {
		req  *v1.ComputablePermissionsRequest
		want string
	}{
		{
			req: &v1.ComputablePermissionsRequest{DefinitionName: "user"},
			want: "document#banned, document#view (permission), document#viewer, " +
				"folder#view (permission), folder#viewer, group#member",
		},
		{
			req:  &v1.ComputablePermissionsRequest{DefinitionName: "user", OptionalDefinitionNameFilter: "fo"},
			want: "folder#view (permission), folder#viewer",
		},
		{
			req:  &v1.ComputablePermissionsRequest{DefinitionName: "document", RelationName: "banned"},
			want: "document#view (permission)",
		},
		{
			// folder#view feeds itself through parent->view, but the
			// requested relation is never listed.
			req:  &v1.ComputablePermissionsRequest{DefinitionName: "folder", RelationName: "view"},
			want: "document#view (permission)",
		},
		{
			req:  &v1.ComputablePermissionsRequest{DefinitionName: "group", RelationName: "member"},
			want: "document#view (permission), folder#view (permission), folder#viewer",
		},
	}
	for _, c := range cases {
		resp, err := client.ComputablePermissions(ctx, c.req)
		if err != nil {
			t.Errorf("ComputablePermissions %v: %v", c.req, err)
			continue
		}
		if got := relationRefs(resp.GetPermissions()); got != c.want {
			t.Errorf("ComputablePermissions %v = %s, want %s", c.req, got, c.want)
		}
	}
}

func TestDependentRelationsHandChecked(t *testing.T) {
	client := startReflectMandate(t)
	ctx := reflectContext(t)
	if _, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: reflectSmallSchema}); err != nil {
		t.Fatalf("WriteSchema: %v", err)
	}
	resp, err := client.DependentRelations(ctx, &v1.DependentRelationsRequest{DefinitionName: "document", PermissionName: "view"})
	if err != nil {
		t.Fatalf("DependentRelations document#view: %v", err)
	}
	want := "document#banned, document#folder, document#viewer, folder#parent, " +
		"folder#view (permission), folder#viewer, group#member"
	if got := relationRefs(resp.GetRelations()); got != want {
		t.Errorf("DependentRelations document#view = %s, want %s", got, want)
	}

	_, err = client.DependentRelations(ctx, &v1.DependentRelationsRequest{DefinitionName: "document", PermissionName: "viewer"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("DependentRelations on the relation document#viewer: got %v, want InvalidArgument", err)
	}
	if !strings.Contains(status.Convert(err).Message(), `"viewer"`) {
		t.Errorf("DependentRelations error %q does not name the relation", status.Convert(err).Message())
	}
}
