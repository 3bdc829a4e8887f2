package server

import (
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mandate-iam/mandate/graph"
)

const ellipsisText = "..."

func subjectRelation(r string) string {
	if r == ellipsisText {
		return graph.Ellipsis
	}
	return r
}

func objectFromProto(o *v1.ObjectReference) graph.ObjectRef {
	return graph.ObjectRef{Type: o.GetObjectType(), ID: o.GetObjectId()}
}

func subjectFromProto(s *v1.SubjectReference) graph.SubjectRef {
	return graph.SubjectRef{
		Type:     s.GetObject().GetObjectType(),
		ID:       s.GetObject().GetObjectId(),
		Relation: subjectRelation(s.GetOptionalRelation()),
	}
}

func relationshipFromProto(r *v1.Relationship) *graph.Relationship {
	rel := &graph.Relationship{Key: graph.Key{
		ResourceType: r.GetResource().GetObjectType(),
		ResourceID:   r.GetResource().GetObjectId(),
		Relation:     r.GetRelation(),
		Subject:      subjectFromProto(r.GetSubject()),
	}}
	if c := r.GetOptionalCaveat(); c != nil {
		rel.Caveat = c.GetCaveatName()
		if ctx := c.GetContext(); ctx != nil && len(ctx.GetFields()) > 0 {
			rel.CaveatContext = ctx.AsMap()
		}
	}
	if e := r.GetOptionalExpiresAt(); e != nil {
		rel.Expiration = e.AsTime()
	}
	return rel
}

func objectToProto(o graph.ObjectRef) *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: o.Type, ObjectId: o.ID}
}

func subjectToProto(s graph.SubjectRef) *v1.SubjectReference {
	return &v1.SubjectReference{
		Object:           &v1.ObjectReference{ObjectType: s.Type, ObjectId: s.ID},
		OptionalRelation: s.Relation,
	}
}

func relationshipToProto(r *graph.Relationship) *v1.Relationship {
	out := &v1.Relationship{
		Resource: &v1.ObjectReference{ObjectType: r.ResourceType, ObjectId: r.ResourceID},
		Relation: r.Relation,
		Subject:  subjectToProto(r.Subject),
	}
	if r.Caveat != "" {
		c := &v1.ContextualizedCaveat{CaveatName: r.Caveat}
		if len(r.CaveatContext) > 0 {
			if ctx, err := structpb.NewStruct(r.CaveatContext); err == nil {
				c.Context = ctx
			}
		}
		out.OptionalCaveat = c
	}
	if !r.Expiration.IsZero() {
		out.OptionalExpiresAt = timestamppb.New(r.Expiration.UTC().Truncate(time.Microsecond))
	}
	return out
}

func filterFromProto(f *v1.RelationshipFilter) graph.Filter {
	out := graph.Filter{
		ResourceType:     f.GetResourceType(),
		ResourceID:       f.GetOptionalResourceId(),
		ResourceIDPrefix: f.GetOptionalResourceIdPrefix(),
		Relation:         f.GetOptionalRelation(),
	}
	if sf := f.GetOptionalSubjectFilter(); sf != nil {
		out.Subject = &graph.SubjectFilter{Type: sf.GetSubjectType(), ID: sf.GetOptionalSubjectId()}
		if rf := sf.GetOptionalRelation(); rf != nil {
			rel := subjectRelation(rf.GetRelation())
			out.Subject.Relation = &rel
		}
	}
	return out
}

func contextMap(s *structpb.Struct) map[string]any {
	if s == nil || len(s.GetFields()) == 0 {
		return nil
	}
	return s.AsMap()
}

// checkTimestamp rejects a timestamp that protobuf considers invalid
// (out of the years 1 to 9999, or nanoseconds out of range) or that lies
// before 1970: the zero time would otherwise read as "never expires".
func checkTimestamp(what string, ts *timestamppb.Timestamp) error {
	if ts == nil {
		return nil
	}
	if err := ts.CheckValid(); err != nil {
		return invalidArgument("%s: invalid timestamp: %v", what, err)
	}
	if ts.GetSeconds() < 0 {
		return invalidArgument("%s: timestamp %s is before 1970", what, ts.AsTime().UTC().Format(time.RFC3339))
	}
	return nil
}

func describeProtoRelationship(r *v1.Relationship) string {
	return relationshipFromProto(r).Key.String()
}
