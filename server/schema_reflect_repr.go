package server

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/caveats"
	caveattypes "github.com/authzed/spicedb/pkg/caveats/types"
	"github.com/authzed/spicedb/pkg/namespace"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	iv1 "github.com/authzed/spicedb/pkg/proto/impl/v1"
)

// reflectionFilters are the optional filters of ReflectSchema. With no
// filters, everything is returned. Otherwise definitions are returned only
// if a filter names a definition, and caveats only if one names a caveat.
// An element is returned when any filter of its kind matches it by name
// prefix. Relations and permissions are all returned unless a filter
// names their kind.
type reflectionFilters []*v1.ReflectionSchemaFilter

// newReflectionFilters rejects filters that combine names that cannot
// apply to the same element.
func newReflectionFilters(filters []*v1.ReflectionSchemaFilter) (reflectionFilters, error) {
	for _, f := range filters {
		switch {
		case f.GetOptionalDefinitionNameFilter() != "" && f.GetOptionalCaveatNameFilter() != "":
			return nil, invalidArgument("invalid reflection filter {%v}: cannot filter by both definition and caveat name", f)
		case f.GetOptionalRelationNameFilter() != "" && f.GetOptionalDefinitionNameFilter() == "":
			return nil, invalidArgument("invalid reflection filter {%v}: a relation name filter requires a definition name filter", f)
		case f.GetOptionalRelationNameFilter() != "" && f.GetOptionalPermissionNameFilter() != "":
			return nil, invalidArgument("invalid reflection filter {%v}: cannot filter by both relation and permission name", f)
		case f.GetOptionalPermissionNameFilter() != "" && f.GetOptionalDefinitionNameFilter() == "":
			return nil, invalidArgument("invalid reflection filter {%v}: a permission name filter requires a definition name filter", f)
		}
	}
	return reflectionFilters(filters), nil
}

// includesDefinitions reports whether any definitions are returned: with
// no filters, or when a filter names a definition.
func (fs reflectionFilters) includesDefinitions() bool {
	if len(fs) == 0 {
		return true
	}
	for _, f := range fs {
		if f.GetOptionalDefinitionNameFilter() != "" {
			return true
		}
	}
	return false
}

// includesCaveats reports whether any caveats are returned: with no
// filters, or when a filter names a caveat.
func (fs reflectionFilters) includesCaveats() bool {
	if len(fs) == 0 {
		return true
	}
	for _, f := range fs {
		if f.GetOptionalCaveatNameFilter() != "" {
			return true
		}
	}
	return false
}

func (fs reflectionFilters) matchesDefinition(name string) bool {
	limited := false
	for _, f := range fs {
		prefix := f.GetOptionalDefinitionNameFilter()
		if prefix == "" {
			continue
		}
		limited = true
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return !limited
}

func (fs reflectionFilters) matchesCaveat(name string) bool {
	limited := false
	for _, f := range fs {
		prefix := f.GetOptionalCaveatNameFilter()
		if prefix == "" {
			continue
		}
		limited = true
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return !limited
}

// matchesRelation reports whether a relation of the definition passes the
// filters that name a relation. The definition prefix of such a filter
// must match as well.
func (fs reflectionFilters) matchesRelation(definition, relation string) bool {
	limited := false
	for _, f := range fs {
		prefix := f.GetOptionalRelationNameFilter()
		if prefix == "" {
			continue
		}
		limited = true
		if strings.HasPrefix(relation, prefix) && strings.HasPrefix(definition, f.GetOptionalDefinitionNameFilter()) {
			return true
		}
	}
	return !limited
}

// matchesPermission is matchesRelation for the permission name filters.
func (fs reflectionFilters) matchesPermission(definition, permission string) bool {
	limited := false
	for _, f := range fs {
		prefix := f.GetOptionalPermissionNameFilter()
		if prefix == "" {
			continue
		}
		limited = true
		if strings.HasPrefix(permission, prefix) && strings.HasPrefix(definition, f.GetOptionalDefinitionNameFilter()) {
			return true
		}
	}
	return !limited
}

// reflectDefinition converts a definition with the relations and
// permissions that pass the filters, or returns nil when the filters
// exclude the definition. Nil filters include everything.
func reflectDefinition(def *core.NamespaceDefinition, filters reflectionFilters) *v1.ReflectionDefinition {
	if !filters.matchesDefinition(def.Name) {
		return nil
	}
	out := &v1.ReflectionDefinition{
		Name:        def.Name,
		Comment:     docComment(def.Metadata),
		Relations:   []*v1.ReflectionRelation{},
		Permissions: []*v1.ReflectionPermission{},
	}
	for _, rel := range def.Relation {
		if isPermission(rel) {
			if filters.matchesPermission(def.Name, rel.Name) {
				out.Permissions = append(out.Permissions, reflectPermission(rel, def.Name))
			}
			continue
		}
		if filters.matchesRelation(def.Name, rel.Name) {
			out.Relations = append(out.Relations, reflectRelation(rel, def.Name))
		}
	}
	return out
}

func isPermission(rel *core.Relation) bool {
	return namespace.GetRelationKind(rel) == iv1.RelationMetadata_PERMISSION
}

// docComment joins the comments attached to a schema element, each with
// its "//" or "/** */" markers, one per line.
func docComment(metadata *core.Metadata) string {
	return strings.Join(namespace.GetComments(metadata), "\n")
}

func reflectPermission(rel *core.Relation, definition string) *v1.ReflectionPermission {
	return &v1.ReflectionPermission{
		Name:                 rel.Name,
		Comment:              docComment(rel.Metadata),
		ParentDefinitionName: definition,
	}
}

func reflectRelation(rel *core.Relation, definition string) *v1.ReflectionRelation {
	out := &v1.ReflectionRelation{
		Name:                 rel.Name,
		Comment:              docComment(rel.Metadata),
		ParentDefinitionName: definition,
	}
	for _, allowed := range rel.GetTypeInformation().GetAllowedDirectRelations() {
		out.SubjectTypes = append(out.SubjectTypes, reflectTypeReference(allowed))
	}
	return out
}

// reflectTypeReference converts one allowed subject type of a relation.
// A plain type such as "user" sets is_terminal_subject, whose value is
// false as in SpiceDB v1.56: the oneof case, not the value, marks it.
func reflectTypeReference(allowed *core.AllowedRelation) *v1.ReflectionTypeReference {
	out := &v1.ReflectionTypeReference{
		SubjectDefinitionName: allowed.Namespace,
		Typeref:               &v1.ReflectionTypeReference_IsTerminalSubject{},
	}
	switch {
	case allowed.GetRelation() != "" && allowed.GetRelation() != ellipsisText:
		out.Typeref = &v1.ReflectionTypeReference_OptionalRelationName{OptionalRelationName: allowed.GetRelation()}
	case allowed.GetPublicWildcard() != nil:
		out.Typeref = &v1.ReflectionTypeReference_IsPublicWildcard{IsPublicWildcard: true}
	}
	if c := allowed.GetRequiredCaveat(); c != nil {
		out.OptionalCaveatName = c.CaveatName
	}
	return out
}

// reflectCaveat converts a caveat with its parameters sorted by name and
// its expression printed back from the compiled form.
func reflectCaveat(cd *core.CaveatDefinition) (*v1.ReflectionCaveat, error) {
	typeSet := caveattypes.Default.TypeSet
	params, err := caveattypes.DecodeParameterTypes(typeSet, cd.ParameterTypes)
	if err != nil {
		return nil, fmt.Errorf("caveat %q: decode parameter types: %v", cd.Name, err)
	}
	compiled, err := caveats.DeserializeCaveatWithTypeSet(typeSet, cd.SerializedExpression, params)
	if err != nil {
		return nil, fmt.Errorf("caveat %q: decode expression: %v", cd.Name, err)
	}
	expression, err := compiled.ExprString()
	if err != nil {
		return nil, fmt.Errorf("caveat %q: print expression: %v", cd.Name, err)
	}

	out := &v1.ReflectionCaveat{
		Name:       cd.Name,
		Comment:    docComment(cd.Metadata),
		Parameters: []*v1.ReflectionCaveatParameter{},
		Expression: expression,
	}
	for _, name := range slices.Sorted(maps.Keys(cd.ParameterTypes)) {
		param, err := reflectCaveatParameter(cd, name)
		if err != nil {
			return nil, err
		}
		out.Parameters = append(out.Parameters, param)
	}
	return out, nil
}

func reflectCaveatParameter(cd *core.CaveatDefinition, name string) (*v1.ReflectionCaveatParameter, error) {
	ref, ok := cd.ParameterTypes[name]
	if !ok {
		return nil, fmt.Errorf("caveat %q has no parameter %q", cd.Name, name)
	}
	decoded, err := caveattypes.DecodeParameterType(caveattypes.Default.TypeSet, ref)
	if err != nil {
		return nil, fmt.Errorf("caveat %q: decode type of parameter %q: %v", cd.Name, name, err)
	}
	return &v1.ReflectionCaveatParameter{
		Name:             name,
		Type:             decoded.String(),
		ParentCaveatName: cd.Name,
	}, nil
}
