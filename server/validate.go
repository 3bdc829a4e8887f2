package server

import (
	"github.com/authzed/spicedb/pkg/caveats"
	caveattypes "github.com/authzed/spicedb/pkg/caveats/types"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// validateProto runs the field rules that the authzed-go protos declare,
// such as the patterns of object types and ids.
func validateProto(m interface{ ValidateAll() error }) error {
	if err := m.ValidateAll(); err != nil {
		return invalidArgument("invalid request: %v", err)
	}
	return nil
}

func requireSchema(s *schema.Schema) error {
	if s == nil {
		return failedPrecondition("no schema has been written: call WriteSchema first")
	}
	return nil
}

// validateRelationship checks a relationship to be written against the
// schema: the resource relation must store relationships, and the subject
// type, subject relation, caveat and expiration must be among the ones the
// relation allows. A deletion may leave out the caveat.
func validateRelationship(s *schema.Schema, r *graph.Relationship, forDelete bool) error {
	if err := requireSchema(s); err != nil {
		return err
	}
	def := s.Definition(r.ResourceType)
	if def == nil {
		return failedPrecondition("relationship %s: object definition %q not found", r.Key, r.ResourceType)
	}
	rel := def.Relations[r.Relation]
	if rel == nil {
		return failedPrecondition("relationship %s: relation %q not found on definition %q", r.Key, r.Relation, r.ResourceType)
	}
	if rel.IsPermission() {
		return invalidArgument("relationship %s: %q is a permission on %q, and relationships can only be written to relations",
			r.Key, r.Relation, r.ResourceType)
	}
	subjDef := s.Definition(r.Subject.Type)
	if subjDef == nil {
		return failedPrecondition("relationship %s: object definition %q not found", r.Key, r.Subject.Type)
	}
	if r.Subject.Relation != graph.Ellipsis && subjDef.Relations[r.Subject.Relation] == nil {
		return failedPrecondition("relationship %s: relation %q not found on definition %q",
			r.Key, r.Subject.Relation, r.Subject.Type)
	}
	wildcard := r.Subject.ID == graph.Wildcard
	if wildcard && r.Subject.Relation != graph.Ellipsis {
		return invalidArgument("relationship %s: a wildcard subject cannot have a relation", r.Key)
	}
	if !allowedSubject(rel, r, wildcard, forDelete) {
		return invalidArgument("relationship %s: subjects of type %q are not allowed on relation %s#%s%s",
			r.Key, describeSubjectType(r, wildcard), r.ResourceType, r.Relation, describeTraits(r))
	}
	if r.Caveat != "" {
		c := s.Caveats[r.Caveat]
		if c == nil {
			return failedPrecondition("relationship %s: caveat %q not found", r.Key, r.Caveat)
		}
		if _, err := caveats.ConvertContextToParameters(caveattypes.Default.TypeSet, r.CaveatContext,
			c.ParameterTypes, caveats.ErrorForUnknownParameters); err != nil {
			return invalidArgument("relationship %s: invalid context for caveat %q: %v", r.Key, r.Caveat, err)
		}
	}
	return nil
}

// allowedSubject reports whether the relation lists the relationship's
// subject type with exactly its caveat and expiration trait. A deletion
// without a caveat only needs the subject type to be listed.
func allowedSubject(rel *schema.Relation, r *graph.Relationship, wildcard, forDelete bool) bool {
	for _, a := range rel.Allowed {
		if a.Type != r.Subject.Type || a.Wildcard != wildcard {
			continue
		}
		if !wildcard && a.Relation != r.Subject.Relation {
			continue
		}
		if forDelete && r.Caveat == "" {
			return true
		}
		if a.Caveat == r.Caveat && a.Expiration == !r.Expiration.IsZero() {
			return true
		}
	}
	return false
}

func describeSubjectType(r *graph.Relationship, wildcard bool) string {
	switch {
	case wildcard:
		return r.Subject.Type + ":*"
	case r.Subject.Relation != graph.Ellipsis:
		return r.Subject.Type + "#" + r.Subject.Relation
	default:
		return r.Subject.Type
	}
}

func describeTraits(r *graph.Relationship) string {
	out := ""
	if r.Caveat != "" {
		out += " with caveat " + r.Caveat
	}
	if !r.Expiration.IsZero() {
		out += " with expiration"
	}
	return out
}

// validatePermissionQuery checks that a resource type, permission and
// subject in a check or lookup are known to the schema.
func validatePermissionQuery(s *schema.Schema, resourceType, permission string, subject graph.SubjectRef) error {
	if err := requireSchema(s); err != nil {
		return err
	}
	def := s.Definition(resourceType)
	if def == nil {
		return failedPrecondition("object definition %q not found", resourceType)
	}
	if def.Relations[permission] == nil {
		return failedPrecondition("relation or permission %q not found on definition %q", permission, resourceType)
	}
	return validateSubjectType(s, subject)
}

func validateSubjectType(s *schema.Schema, subject graph.SubjectRef) error {
	sd := s.Definition(subject.Type)
	if sd == nil {
		return failedPrecondition("object definition %q not found", subject.Type)
	}
	if subject.Relation != graph.Ellipsis && sd.Relations[subject.Relation] == nil {
		return failedPrecondition("relation or permission %q not found on definition %q", subject.Relation, subject.Type)
	}
	return nil
}
