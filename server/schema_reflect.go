package server

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	caveattypes "github.com/authzed/spicedb/pkg/caveats/types"
	"github.com/authzed/spicedb/pkg/diff"
	"github.com/authzed/spicedb/pkg/schemadsl/compiler"
	"github.com/authzed/spicedb/pkg/schemadsl/input"

	"github.com/mandate-iam/mandate/schema"
)

// ReflectSchema returns the definitions and caveats of the schema at the
// requested revision, with their doc comments, limited by the optional
// filters. Definitions and caveats are sorted by name, as SpiceDB lists
// them; relations and permissions keep their order in the schema text.
func (ss *schemaService) ReflectSchema(ctx context.Context, req *v1.ReflectSchemaRequest) (*v1.ReflectSchemaResponse, error) {
	if err := validateProto(req); err != nil {
		return nil, err
	}
	filters, err := newReflectionFilters(req.GetOptionalFilters())
	if err != nil {
		return nil, err
	}
	v, err := ss.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	current, err := compiledSchemas.get(v.snap.SchemaText)
	if err != nil {
		return nil, err
	}

	resp := &v1.ReflectSchemaResponse{
		Definitions: []*v1.ReflectionDefinition{},
		Caveats:     []*v1.ReflectionCaveat{},
		ReadAt:      encodeToken(v.snap.Revision),
	}
	if filters.includesDefinitions() {
		for _, def := range current.ObjectDefinitions {
			if rd := reflectDefinition(def, filters); rd != nil {
				resp.Definitions = append(resp.Definitions, rd)
			}
		}
	}
	if filters.includesCaveats() {
		for _, cd := range current.CaveatDefinitions {
			if !filters.matchesCaveat(cd.Name) {
				continue
			}
			rc, err := reflectCaveat(cd)
			if err != nil {
				return nil, err
			}
			resp.Caveats = append(resp.Caveats, rc)
		}
	}
	return resp, nil
}

// DiffSchema compares the schema at the requested revision with the
// comparison schema in the request and lists every added, removed and
// changed definition, relation, permission, caveat and caveat parameter.
// The comparison schema is only compiled, not checked against the stored
// relationships, because nothing is written.
func (ss *schemaService) DiffSchema(ctx context.Context, req *v1.DiffSchemaRequest) (*v1.DiffSchemaResponse, error) {
	if err := validateProto(req); err != nil {
		return nil, err
	}
	v, err := ss.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	existing, err := compiledSchemas.get(v.snap.SchemaText)
	if err != nil {
		return nil, err
	}
	comparison, err := compiler.Compile(compiler.InputSchema{
		Source:       input.Source("schema"),
		SchemaString: req.GetComparisonSchema(),
	}, compiler.AllowUnprefixedObjectType(), compiler.CaveatTypeSet(caveattypes.Default.TypeSet))
	if err != nil {
		return nil, invalidArgument("diff schema: invalid comparison schema: %v", err)
	}

	existingDiffable := diff.DiffableSchema{
		ObjectDefinitions: existing.ObjectDefinitions,
		CaveatDefinitions: existing.CaveatDefinitions,
	}
	comparisonDiffable := diff.NewDiffableSchemaFromCompiledSchema(comparison)
	schemaDiff, err := diff.DiffSchemas(existingDiffable, comparisonDiffable, caveattypes.Default.TypeSet)
	if err != nil {
		return nil, invalidArgument("diff schema: %v", err)
	}
	diffs, err := reflectSchemaDiff(schemaDiff, &existingDiffable, &comparisonDiffable)
	if err != nil {
		return nil, err
	}
	return &v1.DiffSchemaResponse{Diffs: diffs, ReadAt: encodeToken(v.snap.Revision)}, nil
}

// ComputablePermissions lists the relations and permissions, in every
// definition, whose value can change when a relationship with the given
// relation of the given definition changes. An empty relation name stands
// for the object itself as a subject (the "..." relation).
func (ss *schemaService) ComputablePermissions(ctx context.Context, req *v1.ComputablePermissionsRequest) (*v1.ComputablePermissionsResponse, error) {
	if err := validateProto(req); err != nil {
		return nil, err
	}
	v, err := ss.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	if v.schema.Definition(req.GetDefinitionName()) == nil {
		return nil, failedPrecondition("object definition %q not found", req.GetDefinitionName())
	}
	if req.GetRelationName() != "" && v.schema.Relation(req.GetDefinitionName(), req.GetRelationName()) == nil {
		return nil, failedPrecondition("relation or permission %q not found on definition %q",
			req.GetRelationName(), req.GetDefinitionName())
	}

	start := relationRef{definition: req.GetDefinitionName(), relation: req.GetRelationName()}
	refs := newReachability(v.schema).computedFrom(start)
	permissions := make([]*v1.ReflectionRelationReference, 0, len(refs))
	for _, ref := range refs {
		if ref == start || !strings.HasPrefix(ref.definition, req.GetOptionalDefinitionNameFilter()) {
			continue
		}
		permissions = append(permissions, reflectRelationReference(v.schema, ref))
	}
	return &v1.ComputablePermissionsResponse{Permissions: permissions, ReadAt: encodeToken(v.snap.Revision)}, nil
}

// DependentRelations lists the relations and permissions, in every
// definition, that the given permission is computed from, directly or
// through other permissions and arrows.
func (ss *schemaService) DependentRelations(ctx context.Context, req *v1.DependentRelationsRequest) (*v1.DependentRelationsResponse, error) {
	if err := validateProto(req); err != nil {
		return nil, err
	}
	v, err := ss.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	if v.schema.Definition(req.GetDefinitionName()) == nil {
		return nil, failedPrecondition("object definition %q not found", req.GetDefinitionName())
	}
	rel := v.schema.Relation(req.GetDefinitionName(), req.GetPermissionName())
	if rel == nil {
		return nil, failedPrecondition("relation or permission %q not found on definition %q",
			req.GetPermissionName(), req.GetDefinitionName())
	}
	if !rel.IsPermission() {
		return nil, invalidArgument("%q on definition %q is a relation, not a permission: DependentRelations takes a permission",
			req.GetPermissionName(), req.GetDefinitionName())
	}

	start := relationRef{definition: req.GetDefinitionName(), relation: req.GetPermissionName()}
	refs := newReachability(v.schema).dependenciesOf(start)
	relations := make([]*v1.ReflectionRelationReference, 0, len(refs))
	for _, ref := range refs {
		if ref == start {
			continue
		}
		relations = append(relations, reflectRelationReference(v.schema, ref))
	}
	return &v1.DependentRelationsResponse{Relations: relations, ReadAt: encodeToken(v.snap.Revision)}, nil
}

func reflectRelationReference(s *schema.Schema, ref relationRef) *v1.ReflectionRelationReference {
	rel := s.Relation(ref.definition, ref.relation)
	return &v1.ReflectionRelationReference{
		DefinitionName: ref.definition,
		RelationName:   ref.relation,
		IsPermission:   rel != nil && rel.IsPermission(),
	}
}

// compiledSchemas caches SpiceDB's compiled form of the schema texts in
// use. Mandate's schema model drops the doc comments and the caveat
// source that the reflection calls return, so they compile the text again.
var compiledSchemas = &compiledSchemaCache{}

type compiledSchemaCache struct {
	mu     sync.Mutex
	byText map[string]*compiler.CompiledSchema
}

// get compiles text, or returns the cached result, with definitions and
// caveats sorted by name. An empty text is the empty schema.
func (c *compiledSchemaCache) get(text string) (*compiler.CompiledSchema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs, ok := c.byText[text]; ok {
		return cs, nil
	}
	compiled := &compiler.CompiledSchema{}
	if text != "" {
		var err error
		compiled, err = compiler.Compile(compiler.InputSchema{
			Source:       input.Source("schema"),
			SchemaString: text,
		}, compiler.AllowUnprefixedObjectType(), compiler.CaveatTypeSet(caveattypes.Default.TypeSet))
		if err != nil {
			// The stored text passed WriteSchema, so this is a bug.
			return nil, fmt.Errorf("compile stored schema: %w", err)
		}
	}
	sort.SliceStable(compiled.ObjectDefinitions, func(i, j int) bool {
		return compiled.ObjectDefinitions[i].Name < compiled.ObjectDefinitions[j].Name
	})
	sort.SliceStable(compiled.CaveatDefinitions, func(i, j int) bool {
		return compiled.CaveatDefinitions[i].Name < compiled.CaveatDefinitions[j].Name
	})
	if c.byText == nil || len(c.byText) >= schemaCacheSize {
		c.byText = make(map[string]*compiler.CompiledSchema)
	}
	c.byText[text] = compiled
	return compiled, nil
}
