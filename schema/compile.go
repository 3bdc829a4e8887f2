package schema

import (
	"context"
	"fmt"
	"sort"

	"github.com/authzed/spicedb/pkg/caveats"
	caveattypes "github.com/authzed/spicedb/pkg/caveats/types"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	"github.com/authzed/spicedb/pkg/schemadsl/compiler"
	"github.com/authzed/spicedb/pkg/schemadsl/input"
	"github.com/authzed/spicedb/pkg/schemautil"
)

// Compile parses and type-checks schema text and builds its model. The
// error carries the compiler's message, which names the line and the
// element at fault.
func Compile(ctx context.Context, text string) (*Schema, error) {
	if text == "" {
		return nil, fmt.Errorf("compile schema: schema text is empty")
	}
	compiled, err := compiler.Compile(compiler.InputSchema{
		Source:       input.Source("schema"),
		SchemaString: text,
	}, compiler.AllowUnprefixedObjectType())
	if err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}
	if _, err := schemautil.ValidateSchemaChanges(ctx, compiled, false, text); err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}

	s := &Schema{
		Text:        text,
		Definitions: make(map[string]*Definition, len(compiled.ObjectDefinitions)),
		Caveats:     make(map[string]*Caveat, len(compiled.CaveatDefinitions)),
	}
	for _, cd := range compiled.CaveatDefinitions {
		c, err := convertCaveat(cd)
		if err != nil {
			return nil, fmt.Errorf("compile schema: caveat %q: %w", cd.Name, err)
		}
		s.Caveats[c.Name] = c
	}
	for _, nd := range compiled.ObjectDefinitions {
		d, err := convertDefinition(nd)
		if err != nil {
			return nil, fmt.Errorf("compile schema: definition %q: %w", nd.Name, err)
		}
		s.Definitions[d.Name] = d
	}
	return s, nil
}

func convertCaveat(cd *core.CaveatDefinition) (*Caveat, error) {
	ts := caveattypes.Default.TypeSet
	params, err := caveattypes.DecodeParameterTypes(ts, cd.ParameterTypes)
	if err != nil {
		return nil, err
	}
	compiled, err := caveats.DeserializeCaveatWithTypeSet(ts, cd.SerializedExpression, params)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	return &Caveat{
		Name:           cd.Name,
		Compiled:       compiled,
		ParameterNames: names,
		ParameterTypes: cd.ParameterTypes,
	}, nil
}

func convertDefinition(nd *core.NamespaceDefinition) (*Definition, error) {
	d := &Definition{Name: nd.Name, Relations: make(map[string]*Relation, len(nd.Relation))}
	for _, rel := range nd.Relation {
		r := &Relation{Name: rel.Name, Definition: nd.Name}
		if rel.UsersetRewrite != nil {
			rw, err := convertRewrite(rel.UsersetRewrite)
			if err != nil {
				return nil, fmt.Errorf("permission %q: %w", rel.Name, err)
			}
			r.Rewrite = rw
		}
		if ti := rel.TypeInformation; ti != nil {
			for _, ar := range ti.AllowedDirectRelations {
				r.Allowed = append(r.Allowed, convertAllowed(ar))
			}
		}
		d.Relations[r.Name] = r
		d.Order = append(d.Order, r.Name)
	}
	return d, nil
}

func convertAllowed(ar *core.AllowedRelation) AllowedSubject {
	a := AllowedSubject{Type: ar.Namespace}
	switch rw := ar.RelationOrWildcard.(type) {
	case *core.AllowedRelation_PublicWildcard_:
		a.Wildcard = true
	case *core.AllowedRelation_Relation:
		if rw.Relation != "..." {
			a.Relation = rw.Relation
		}
	}
	if ar.RequiredCaveat != nil {
		a.Caveat = ar.RequiredCaveat.CaveatName
	}
	a.Expiration = ar.RequiredExpiration != nil
	return a
}

func convertRewrite(rw *core.UsersetRewrite) (*Rewrite, error) {
	var kind RewriteKind
	var op *core.SetOperation
	switch t := rw.RewriteOperation.(type) {
	case *core.UsersetRewrite_Union:
		kind, op = Union, t.Union
	case *core.UsersetRewrite_Intersection:
		kind, op = Intersection, t.Intersection
	case *core.UsersetRewrite_Exclusion:
		kind, op = Exclusion, t.Exclusion
	default:
		return nil, fmt.Errorf("unsupported rewrite operation %T", rw.RewriteOperation)
	}
	node := &Rewrite{Kind: kind}
	for _, child := range op.Child {
		c, err := convertChild(child)
		if err != nil {
			return nil, err
		}
		node.Children = append(node.Children, c)
	}
	return node, nil
}

func convertChild(child *core.SetOperation_Child) (*Rewrite, error) {
	switch c := child.ChildType.(type) {
	case *core.SetOperation_Child_ComputedUserset:
		return &Rewrite{Kind: Computed, Relation: c.ComputedUserset.Relation}, nil
	case *core.SetOperation_Child_TupleToUserset:
		return &Rewrite{
			Kind:     Arrow,
			Tupleset: c.TupleToUserset.Tupleset.Relation,
			Target:   c.TupleToUserset.ComputedUserset.Relation,
		}, nil
	case *core.SetOperation_Child_FunctionedTupleToUserset:
		f := ArrowAny
		if c.FunctionedTupleToUserset.Function == core.FunctionedTupleToUserset_FUNCTION_ALL {
			f = ArrowAll
		}
		return &Rewrite{
			Kind:     Arrow,
			Tupleset: c.FunctionedTupleToUserset.Tupleset.Relation,
			Target:   c.FunctionedTupleToUserset.ComputedUserset.Relation,
			Function: f,
		}, nil
	case *core.SetOperation_Child_UsersetRewrite:
		return convertRewrite(c.UsersetRewrite)
	case *core.SetOperation_Child_XNil:
		return &Rewrite{Kind: Nil}, nil
	case *core.SetOperation_Child_XSelf:
		return &Rewrite{Kind: Self}, nil
	case *core.SetOperation_Child_XThis:
		return nil, fmt.Errorf("_this is not supported in a permission")
	default:
		return nil, fmt.Errorf("unsupported rewrite child %T", child.ChildType)
	}
}
