package server

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/diff"
	caveatdiff "github.com/authzed/spicedb/pkg/diff/caveats"
	nsdiff "github.com/authzed/spicedb/pkg/diff/namespace"
)

// reflectSchemaDiff converts a schema diff into DiffSchema entries.
// SpiceDB v1.56 returns them in map order, so clients cannot rely on any
// order. This returns added, then removed definitions, added, then
// removed caveats, then the changes of each definition and each caveat.
// Each group is sorted by name, so the same request gives the same
// response.
func reflectSchemaDiff(d *diff.SchemaDiff, existing, comparison *diff.DiffableSchema) ([]*v1.ReflectionSchemaDiff, error) {
	var out []*v1.ReflectionSchemaDiff

	for _, name := range slices.Sorted(slices.Values(d.AddedNamespaces)) {
		def, ok := comparison.GetNamespace(name)
		if !ok {
			return nil, missingInDiff("definition", name)
		}
		out = append(out, &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_DefinitionAdded{
			DefinitionAdded: reflectDefinition(def, nil),
		}})
	}
	for _, name := range slices.Sorted(slices.Values(d.RemovedNamespaces)) {
		def, ok := existing.GetNamespace(name)
		if !ok {
			return nil, missingInDiff("definition", name)
		}
		out = append(out, &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_DefinitionRemoved{
			DefinitionRemoved: reflectDefinition(def, nil),
		}})
	}

	for _, name := range slices.Sorted(slices.Values(d.AddedCaveats)) {
		c, err := reflectCaveatNamed(comparison, name)
		if err != nil {
			return nil, err
		}
		out = append(out, &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatAdded{CaveatAdded: c}})
	}
	for _, name := range slices.Sorted(slices.Values(d.RemovedCaveats)) {
		c, err := reflectCaveatNamed(existing, name)
		if err != nil {
			return nil, err
		}
		out = append(out, &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatRemoved{CaveatRemoved: c}})
	}

	for _, name := range sortedKeys(d.ChangedNamespaces) {
		for _, delta := range sortedNamespaceDeltas(d.ChangedNamespaces[name].Deltas()) {
			entry, err := reflectNamespaceDelta(name, delta, existing, comparison)
			if err != nil {
				return nil, err
			}
			out = append(out, entry)
		}
	}
	for _, name := range sortedKeys(d.ChangedCaveats) {
		deltas := slices.Clone(d.ChangedCaveats[name].Deltas())
		sort.SliceStable(deltas, func(i, j int) bool {
			return deltas[i].ParameterName < deltas[j].ParameterName
		})
		for _, delta := range deltas {
			entry, err := reflectCaveatDelta(name, delta, existing, comparison)
			if err != nil {
				return nil, err
			}
			out = append(out, entry)
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortedNamespaceDeltas orders the changes of one definition by relation,
// then by kind of change, then by subject type.
func sortedNamespaceDeltas(deltas []nsdiff.Delta) []nsdiff.Delta {
	sorted := slices.Clone(deltas)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.RelationName != b.RelationName {
			return a.RelationName < b.RelationName
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return allowedTypeString(a) < allowedTypeString(b)
	})
	return sorted
}

// allowedTypeString identifies an allowed subject type for sorting.
func allowedTypeString(d nsdiff.Delta) string {
	a := d.AllowedType
	if a == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(a.Namespace)
	if a.GetPublicWildcard() != nil {
		b.WriteString(":*")
	} else {
		b.WriteString("#" + a.GetRelation())
	}
	if c := a.GetRequiredCaveat(); c != nil {
		b.WriteString(" with " + c.CaveatName)
	}
	if a.GetRequiredExpiration() != nil {
		b.WriteString(" and expiration")
	}
	return b.String()
}

// reflectNamespaceDelta converts one change of a definition. Added and
// changed elements are read from the comparison schema, removed ones from
// the existing schema.
func reflectNamespaceDelta(definition string, delta nsdiff.Delta, existing, comparison *diff.DiffableSchema) (*v1.ReflectionSchemaDiff, error) {
	source := comparison
	if delta.Type == nsdiff.RemovedRelation || delta.Type == nsdiff.RemovedPermission {
		source = existing
	}

	if delta.Type == nsdiff.NamespaceCommentsChanged {
		def, ok := comparison.GetNamespace(definition)
		if !ok {
			return nil, missingInDiff("definition", definition)
		}
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_DefinitionDocCommentChanged{
			DefinitionDocCommentChanged: reflectDefinition(def, nil),
		}}, nil
	}

	rel, ok := source.GetRelation(definition, delta.RelationName)
	if !ok {
		return nil, missingInDiff("relation or permission", definition+"#"+delta.RelationName)
	}
	switch delta.Type {
	case nsdiff.AddedPermission:
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_PermissionAdded{
			PermissionAdded: reflectPermission(rel, definition),
		}}, nil
	case nsdiff.RemovedPermission:
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_PermissionRemoved{
			PermissionRemoved: reflectPermission(rel, definition),
		}}, nil
	case nsdiff.ChangedPermissionComment:
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_PermissionDocCommentChanged{
			PermissionDocCommentChanged: reflectPermission(rel, definition),
		}}, nil
	case nsdiff.ChangedPermissionImpl:
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_PermissionExprChanged{
			PermissionExprChanged: reflectPermission(rel, definition),
		}}, nil
	case nsdiff.AddedRelation:
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationAdded{
			RelationAdded: reflectRelation(rel, definition),
		}}, nil
	case nsdiff.RemovedRelation:
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationRemoved{
			RelationRemoved: reflectRelation(rel, definition),
		}}, nil
	case nsdiff.ChangedRelationComment:
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationDocCommentChanged{
			RelationDocCommentChanged: reflectRelation(rel, definition),
		}}, nil
	case nsdiff.RelationAllowedTypeAdded:
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationSubjectTypeAdded{
			RelationSubjectTypeAdded: &v1.ReflectionRelationSubjectTypeChange{
				Relation:           reflectRelation(rel, definition),
				ChangedSubjectType: reflectTypeReference(delta.AllowedType),
			},
		}}, nil
	case nsdiff.RelationAllowedTypeRemoved:
		// SpiceDB reports the relation as it is in the comparison schema,
		// which no longer lists the removed type.
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationSubjectTypeRemoved{
			RelationSubjectTypeRemoved: &v1.ReflectionRelationSubjectTypeChange{
				Relation:           reflectRelation(rel, definition),
				ChangedSubjectType: reflectTypeReference(delta.AllowedType),
			},
		}}, nil
	default:
		return nil, fmt.Errorf("diff schema: definition %q: unsupported change %q", definition, delta.Type)
	}
}

// reflectCaveatDelta converts one change of a caveat.
func reflectCaveatDelta(name string, delta caveatdiff.Delta, existing, comparison *diff.DiffableSchema) (*v1.ReflectionSchemaDiff, error) {
	switch delta.Type {
	case caveatdiff.CaveatCommentsChanged:
		c, err := reflectCaveatNamed(comparison, name)
		if err != nil {
			return nil, err
		}
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatDocCommentChanged{CaveatDocCommentChanged: c}}, nil
	case caveatdiff.CaveatExpressionChanged:
		c, err := reflectCaveatNamed(comparison, name)
		if err != nil {
			return nil, err
		}
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatExprChanged{CaveatExprChanged: c}}, nil
	case caveatdiff.AddedParameter:
		p, err := reflectCaveatParameterNamed(comparison, name, delta.ParameterName)
		if err != nil {
			return nil, err
		}
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatParameterAdded{CaveatParameterAdded: p}}, nil
	case caveatdiff.RemovedParameter:
		p, err := reflectCaveatParameterNamed(existing, name, delta.ParameterName)
		if err != nil {
			return nil, err
		}
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatParameterRemoved{CaveatParameterRemoved: p}}, nil
	case caveatdiff.ParameterTypeChanged:
		previous, err := reflectCaveatParameterNamed(existing, name, delta.ParameterName)
		if err != nil {
			return nil, err
		}
		current, err := reflectCaveatParameterNamed(comparison, name, delta.ParameterName)
		if err != nil {
			return nil, err
		}
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatParameterTypeChanged{
			CaveatParameterTypeChanged: &v1.ReflectionCaveatParameterTypeChange{
				Parameter:    current,
				PreviousType: previous.Type,
			},
		}}, nil
	default:
		return nil, fmt.Errorf("diff schema: caveat %q: unsupported change %q", name, delta.Type)
	}
}

func reflectCaveatNamed(s *diff.DiffableSchema, name string) (*v1.ReflectionCaveat, error) {
	cd, ok := s.GetCaveat(name)
	if !ok {
		return nil, missingInDiff("caveat", name)
	}
	return reflectCaveat(cd)
}

func reflectCaveatParameterNamed(s *diff.DiffableSchema, caveat, parameter string) (*v1.ReflectionCaveatParameter, error) {
	cd, ok := s.GetCaveat(caveat)
	if !ok {
		return nil, missingInDiff("caveat", caveat)
	}
	return reflectCaveatParameter(cd, parameter)
}

// missingInDiff reports an element that the diff names but the schema it
// came from lacks, which would be a bug in the diff.
func missingInDiff(kind, name string) error {
	return fmt.Errorf("diff schema: %s %q is in the diff but not in its schema", kind, name)
}
