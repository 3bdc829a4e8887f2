package conformance

import (
	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/mandate-iam/mandate/graph"
)

// graphRelationship converts a relationship parsed by SpiceDB's tuple
// package into Mandate's form.
func graphRelationship(rel tuple.Relationship) *graph.Relationship {
	subjectRelation := rel.Subject.Relation
	if subjectRelation == tuple.Ellipsis {
		subjectRelation = graph.Ellipsis
	}
	out := &graph.Relationship{Key: graph.Key{
		ResourceType: rel.Resource.ObjectType,
		ResourceID:   rel.Resource.ObjectID,
		Relation:     rel.Resource.Relation,
		Subject: graph.SubjectRef{
			Type:     rel.Subject.ObjectType,
			ID:       rel.Subject.ObjectID,
			Relation: subjectRelation,
		},
	}}
	if c := rel.OptionalCaveat; c != nil {
		out.Caveat = c.CaveatName
		if fields := c.GetContext().AsMap(); len(fields) > 0 {
			out.CaveatContext = fields
		}
	}
	if rel.OptionalExpiration != nil {
		out.Expiration = *rel.OptionalExpiration
	}
	return out
}
