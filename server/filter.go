package server

import (
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mandate-iam/mandate/schema"
)

// validateFilter checks that a relationship filter selects something and
// names only types and relations the schema defines.
func validateFilter(sch *schema.Schema, f *v1.RelationshipFilter) error {
	if f == nil {
		return invalidArgument("relationship filter is missing")
	}
	if f.GetResourceType() == "" && f.GetOptionalResourceId() == "" && f.GetOptionalResourceIdPrefix() == "" &&
		f.GetOptionalRelation() == "" && f.GetOptionalSubjectFilter() == nil {
		return invalidArgument("relationship filter is empty: set at least one field")
	}
	if f.GetOptionalResourceId() != "" && f.GetOptionalResourceIdPrefix() != "" {
		return invalidArgument("relationship filter %s: set either optional_resource_id or optional_resource_id_prefix, not both", describeFilter(f))
	}
	if err := requireSchema(sch); err != nil {
		return err
	}
	if t := f.GetResourceType(); t != "" {
		def := sch.Definition(t)
		if def == nil {
			return failedPrecondition("relationship filter: object definition %q not found", t)
		}
		if r := f.GetOptionalRelation(); r != "" && def.Relations[r] == nil {
			return failedPrecondition("relationship filter: relation %q not found on definition %q", r, t)
		}
	}
	if sf := f.GetOptionalSubjectFilter(); sf != nil {
		def := sch.Definition(sf.GetSubjectType())
		if def == nil {
			return failedPrecondition("relationship filter: subject definition %q not found", sf.GetSubjectType())
		}
		if rf := sf.GetOptionalRelation(); rf != nil && rf.GetRelation() != "" && rf.GetRelation() != ellipsisText &&
			def.Relations[rf.GetRelation()] == nil {
			return failedPrecondition("relationship filter: relation %q not found on subject definition %q",
				rf.GetRelation(), sf.GetSubjectType())
		}
	}
	return nil
}

// describeFilter renders a filter for error messages, such as
// "document:readme#viewer@user:*".
func describeFilter(f *v1.RelationshipFilter) string {
	var b strings.Builder
	b.WriteString(orAny(f.GetResourceType()))
	b.WriteString(":")
	switch {
	case f.GetOptionalResourceId() != "":
		b.WriteString(f.GetOptionalResourceId())
	case f.GetOptionalResourceIdPrefix() != "":
		b.WriteString(f.GetOptionalResourceIdPrefix() + "…")
	default:
		b.WriteString("(any)")
	}
	b.WriteString("#" + orAny(f.GetOptionalRelation()))
	if sf := f.GetOptionalSubjectFilter(); sf != nil {
		b.WriteString("@" + sf.GetSubjectType() + ":" + orAny(sf.GetOptionalSubjectId()))
		if rf := sf.GetOptionalRelation(); rf != nil {
			b.WriteString("#" + orAny(rf.GetRelation()))
		}
	}
	return b.String()
}

func orAny(s string) string {
	if s == "" {
		return "(any)"
	}
	return s
}
