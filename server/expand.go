package server

import (
	"context"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/schema"
)

func (ps *permissionsService) ExpandPermissionTree(ctx context.Context, req *v1.ExpandPermissionTreeRequest) (*v1.ExpandPermissionTreeResponse, error) {
	if err := requireAdmin(ctx, "ExpandPermissionTree"); err != nil {
		return nil, err
	}
	if err := validateProto(req); err != nil {
		return nil, err
	}
	v, err := ps.s.viewFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	resource := objectFromProto(req.GetResource())
	if err := requireSchema(v.schema); err != nil {
		return nil, err
	}
	def := v.schema.Definition(resource.Type)
	if def == nil {
		return nil, failedPrecondition("object definition %q not found", resource.Type)
	}
	if def.Relations[req.GetPermission()] == nil {
		return nil, failedPrecondition("relation or permission %q not found on definition %q", req.GetPermission(), resource.Type)
	}
	root, err := engine.Expand(v.schema, v.snap, ps.s.cfg.Limits, resource, req.GetPermission())
	if err != nil {
		return nil, err
	}
	return &v1.ExpandPermissionTreeResponse{ExpandedAt: encodeToken(v.snap.Revision), TreeRoot: expandNodeToProto(root)}, nil
}

func expandNodeToProto(n *engine.ExpandNode) *v1.PermissionRelationshipTree {
	out := &v1.PermissionRelationshipTree{ExpandedObject: objectToProto(n.Object), ExpandedRelation: n.Relation}
	if n.Leaf {
		set := &v1.DirectSubjectSet{}
		for _, s := range n.Subjects {
			set.Subjects = append(set.Subjects, subjectToProto(s))
		}
		out.TreeType = &v1.PermissionRelationshipTree_Leaf{Leaf: set}
		return out
	}
	op := v1.AlgebraicSubjectSet_OPERATION_UNION
	switch n.Operation {
	case schema.Intersection:
		op = v1.AlgebraicSubjectSet_OPERATION_INTERSECTION
	case schema.Exclusion:
		op = v1.AlgebraicSubjectSet_OPERATION_EXCLUSION
	}
	set := &v1.AlgebraicSubjectSet{Operation: op}
	for _, c := range n.Children {
		set.Children = append(set.Children, expandNodeToProto(c))
	}
	out.TreeType = &v1.PermissionRelationshipTree_Intermediate{Intermediate: set}
	return out
}
