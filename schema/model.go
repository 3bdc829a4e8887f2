package schema

import (
	"github.com/authzed/spicedb/pkg/caveats"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
)

// Ellipsis is the relation of a subject that is the object itself, written
// "..." in SpiceDB's notation and stored here as the empty string.
const Ellipsis = ""

// Schema is a compiled, validated schema.
type Schema struct {
	// Text is the source the schema was compiled from.
	Text string
	// Definitions maps an object type name to its definition.
	Definitions map[string]*Definition
	// Caveats maps a caveat name to its compiled form.
	Caveats map[string]*Caveat
}

// Definition is an object type with its relations and permissions.
type Definition struct {
	Name string
	// Relations maps a name to a relation or a permission; both share
	// one namespace within a definition.
	Relations map[string]*Relation
	// Order lists the relation and permission names as the source does.
	Order []string
}

// Relation is either a relation that stores relationships (Rewrite is nil)
// or a permission computed from a rewrite (Allowed is empty).
type Relation struct {
	Name       string
	Definition string
	Allowed    []AllowedSubject
	Rewrite    *Rewrite
}

// IsPermission reports whether the relation is computed by a rewrite.
func (r *Relation) IsPermission() bool { return r.Rewrite != nil }

// AllowedSubject is one subject type a relation accepts, such as
// "user", "group#member", "user:*" or "user with ip_allowed".
type AllowedSubject struct {
	Type string
	// Relation is the subject relation, or Ellipsis for the object itself.
	Relation string
	Wildcard bool
	// Caveat is the caveat the relationship must carry, or "".
	Caveat string
	// Expiration is true when the relationship may carry an expiration.
	Expiration bool
}

// RewriteKind names the operator at a node of a permission's rewrite tree.
type RewriteKind int

const (
	// Union is true when any child is.
	Union RewriteKind = iota
	// Intersection is true when every child is.
	Intersection
	// Exclusion is true when the first child is and no later child is.
	Exclusion
	// Computed evaluates another relation or permission on the same object.
	Computed
	// Arrow follows Tupleset to each subject object and evaluates Target
	// there; the result is true if any (or, for ArrowAll, every) subject
	// object has it.
	Arrow
	// Nil is never true.
	Nil
	// Self is true when the subject is the resource itself.
	Self
)

// ArrowFunction chooses how an arrow combines the subject objects it reaches.
type ArrowFunction int

const (
	// ArrowAny is `->` and `.any()`.
	ArrowAny ArrowFunction = iota
	// ArrowAll is `.all()`.
	ArrowAll
)

// Rewrite is one node of a permission's rewrite tree.
type Rewrite struct {
	Kind     RewriteKind
	Children []*Rewrite
	// Relation is the target of Computed.
	Relation string
	// Tupleset and Target are the left and right side of Arrow.
	Tupleset string
	Target   string
	Function ArrowFunction
}

// Caveat is a named CEL expression with typed parameters.
type Caveat struct {
	Name     string
	Compiled *caveats.CompiledCaveat
	// ParameterNames lists the declared parameters, sorted.
	ParameterNames []string
	// ParameterTypes is the encoded type of each parameter, used to
	// convert context values before evaluation.
	ParameterTypes map[string]*core.CaveatTypeReference
}

// Definition returns the named definition, or nil.
func (s *Schema) Definition(name string) *Definition {
	if s == nil {
		return nil
	}
	return s.Definitions[name]
}

// Relation returns the named relation or permission of a definition, or nil.
func (s *Schema) Relation(definition, name string) *Relation {
	d := s.Definition(definition)
	if d == nil {
		return nil
	}
	return d.Relations[name]
}
