package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/authzed/spicedb/pkg/caveats"
	caveattypes "github.com/authzed/spicedb/pkg/caveats/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// validateProto runs the field rules that the authzed-go protos declare,
// such as the patterns of object types and ids, and the hand-written rules
// that authzed-go adds to some requests. The error names each invalid
// field by its path in the request and quotes its value.
func validateProto(m interface{ ValidateAll() error }) error {
	if err := m.ValidateAll(); err != nil {
		pm, ok := m.(proto.Message)
		if !ok {
			return invalidArgument("invalid request: %v", err)
		}
		return invalidArgument("invalid request: %s", strings.Join(describeViolations(pm.ProtoReflect(), "", err), "; "))
	}
	if hv, ok := m.(interface{ HandwrittenValidate() error }); ok {
		// Every hand-written rule of authzed-go v1.10 rejects the wildcard
		// "*" where it cannot be used: as a resource id, or as a subject id
		// with a subject relation.
		if err := hv.HandwrittenValidate(); err != nil {
			return invalidArgument("invalid request: wildcard \"*\" used where it is not allowed: %v", err)
		}
	}
	return nil
}

// fieldViolation is the interface of the error types that
// protoc-gen-validate generates, one for each message.
type fieldViolation interface {
	Field() string
	Reason() string
	Cause() error
}

// describeViolations turns the errors of ValidateAll on msg into messages
// such as `updates[0].relationship.resource.object_id "bad id!": value
// does not match regex pattern ...`. A field it cannot resolve keeps the
// generated message.
func describeViolations(msg protoreflect.Message, prefix string, err error) []string {
	if multi, ok := err.(interface{ AllErrors() []error }); ok {
		var out []string
		for _, e := range multi.AllErrors() {
			out = append(out, describeViolations(msg, prefix, e)...)
		}
		return out
	}
	fv, ok := err.(fieldViolation)
	if !ok {
		return []string{err.Error()}
	}
	name, index, hasIndex := strings.Cut(fv.Field(), "[")
	index = strings.TrimSuffix(index, "]")
	fd := fieldByGoName(msg.Descriptor(), name)
	if fd == nil {
		return []string{err.Error()}
	}
	path := string(fd.Name())
	if prefix != "" {
		path = prefix + "." + path
	}
	if hasIndex {
		path += "[" + index + "]"
	}

	value, ok := msg.Get(fd), true
	if fd.IsList() {
		i, convErr := strconv.Atoi(index)
		ok = hasIndex && convErr == nil && i >= 0 && i < value.List().Len()
		if ok {
			value = value.List().Get(i)
		}
	} else if fd.IsMap() {
		ok = false
	}
	switch {
	case !ok:
		return []string{path + ": " + fv.Reason()}
	case fd.Message() != nil && fv.Cause() != nil && msg.Has(fd):
		return describeViolations(value.Message(), path, fv.Cause())
	case fd.Message() != nil:
		return []string{path + ": " + fv.Reason()}
	default:
		return []string{path + " " + formatFieldValue(fd, value) + ": " + fv.Reason()}
	}
}

// fieldByGoName finds the field that protoc-gen-validate names by its Go
// name, such as ObjectId for object_id.
func fieldByGoName(md protoreflect.MessageDescriptor, goName string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		var b strings.Builder
		for _, part := range strings.Split(string(fd.Name()), "_") {
			if part != "" {
				b.WriteString(strings.ToUpper(part[:1]) + part[1:])
			}
		}
		if b.String() == goName {
			return fd
		}
	}
	return nil
}

// maxQuotedValue is the number of characters of a value that an error
// message quotes.
const maxQuotedValue = 64

func formatFieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := v.String()
		if r := []rune(s); len(r) > maxQuotedValue {
			return fmt.Sprintf("%q… (%d bytes)", string(r[:maxQuotedValue]), len(s))
		}
		return strconv.Quote(s)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	default:
		return fmt.Sprint(v.Interface())
	}
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
