package main

import (
	"fmt"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// parseRelationship parses "type:id#relation@type:id" with an optional
// "#relation" on the subject, as in "dataset:payroll#writer@role:etl#assignee".
func parseRelationship(text string) (*v1.Relationship, error) {
	resourcePart, subjectPart, ok := strings.Cut(text, "@")
	if !ok {
		return nil, fmt.Errorf("invalid relationship %q: expected resource#relation@subject", text)
	}
	objectPart, relation, ok := strings.Cut(resourcePart, "#")
	if !ok || relation == "" {
		return nil, fmt.Errorf("invalid relationship %q: missing #relation after the resource", text)
	}
	resource, err := parseObject(objectPart)
	if err != nil {
		return nil, fmt.Errorf("invalid relationship %q: %w", text, err)
	}
	subjectObject, subjectRelation, _ := strings.Cut(subjectPart, "#")
	subject, err := parseObject(subjectObject)
	if err != nil {
		return nil, fmt.Errorf("invalid relationship %q: %w", text, err)
	}
	return &v1.Relationship{
		Resource: resource,
		Relation: relation,
		Subject:  &v1.SubjectReference{Object: subject, OptionalRelation: subjectRelation},
	}, nil
}

// parseObject parses "type:id".
func parseObject(text string) (*v1.ObjectReference, error) {
	objectType, id, ok := strings.Cut(text, ":")
	if !ok || objectType == "" || id == "" {
		return nil, fmt.Errorf("invalid object %q: expected type:id", text)
	}
	return &v1.ObjectReference{ObjectType: objectType, ObjectId: id}, nil
}
