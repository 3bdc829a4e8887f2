package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/authzed/spicedb/pkg/validationfile/blocks"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// checkValidationRelationship converts a relationship of the file and
// checks it against the schema as a write would: the relation must store
// relationships and allow the subject type with this caveat and
// expiration.
func checkValidationRelationship(s *schema.Schema, rel tuple.Relationship) (*graph.Relationship, error) {
	out := &graph.Relationship{Key: graph.Key{
		ResourceType: rel.Resource.ObjectType,
		ResourceID:   rel.Resource.ObjectID,
		Relation:     rel.Resource.Relation,
		Subject:      subjectRefOf(rel.Subject),
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

	def := s.Definition(out.ResourceType)
	if def == nil {
		return nil, fmt.Errorf("relationship %s: object definition %q not found", out.Key, out.ResourceType)
	}
	relation := def.Relations[out.Relation]
	switch {
	case relation == nil:
		return nil, fmt.Errorf("relationship %s: relation %q not found on definition %q", out.Key, out.Relation, out.ResourceType)
	case relation.IsPermission():
		return nil, fmt.Errorf("relationship %s: %q on definition %q is a permission: relationships can only be written to relations",
			out.Key, out.Relation, out.ResourceType)
	}
	if err := checkSubjectType(s, out.Subject); err != nil {
		return nil, fmt.Errorf("relationship %s: %w", out.Key, err)
	}
	if out.Caveat != "" {
		c := s.Caveats[out.Caveat]
		if c == nil {
			return nil, fmt.Errorf("relationship %s: caveat %q not found", out.Key, out.Caveat)
		}
		for name := range out.CaveatContext {
			if _, ok := c.ParameterTypes[name]; !ok {
				return nil, fmt.Errorf("relationship %s: caveat %q has no parameter %q", out.Key, out.Caveat, name)
			}
		}
	}
	if !subjectTypeAllowed(relation, out) {
		return nil, fmt.Errorf("relationship %s: subjects of type %s are not allowed on relation %s#%s",
			out.Key, describeSubject(out), out.ResourceType, out.Relation)
	}
	return out, nil
}

func subjectRefOf(onr tuple.ObjectAndRelation) graph.SubjectRef {
	relation := onr.Relation
	if relation == tuple.Ellipsis {
		relation = graph.Ellipsis
	}
	return graph.SubjectRef{Type: onr.ObjectType, ID: onr.ObjectID, Relation: relation}
}

// checkSubjectType checks that the subject's definition, and its relation
// if it names one, exist.
func checkSubjectType(s *schema.Schema, subject graph.SubjectRef) error {
	if s.Definition(subject.Type) == nil {
		return fmt.Errorf("object definition %q not found", subject.Type)
	}
	if subject.Relation != graph.Ellipsis && s.Relation(subject.Type, subject.Relation) == nil {
		return fmt.Errorf("relation %q not found on definition %q", subject.Relation, subject.Type)
	}
	return nil
}

func subjectTypeAllowed(rel *schema.Relation, r *graph.Relationship) bool {
	wildcard := r.Subject.ID == graph.Wildcard
	for _, a := range rel.Allowed {
		if a.Type != r.Subject.Type || a.Wildcard != wildcard {
			continue
		}
		if !wildcard && a.Relation != r.Subject.Relation {
			continue
		}
		if a.Caveat == r.Caveat && a.Expiration == !r.Expiration.IsZero() {
			return true
		}
	}
	return false
}

// describeSubject writes the subject type of a relationship as the schema
// language does, such as "user:* with ip_allowed".
func describeSubject(r *graph.Relationship) string {
	var b strings.Builder
	b.WriteString(r.Subject.Type)
	switch {
	case r.Subject.ID == graph.Wildcard:
		b.WriteString(":*")
	case r.Subject.Relation != graph.Ellipsis:
		b.WriteString("#" + r.Subject.Relation)
	}
	var traits []string
	if r.Caveat != "" {
		traits = append(traits, r.Caveat)
	}
	if !r.Expiration.IsZero() {
		traits = append(traits, "expiration")
	}
	if len(traits) > 0 {
		b.WriteString(" with " + strings.Join(traits, " and "))
	}
	return b.String()
}

// assertionKind is one of the assertion lists of a validation file.
type assertionKind struct {
	name string
	want engine.Membership
}

var assertionKinds = []assertionKind{
	{"assertTrue", engine.HasPermission},
	{"assertCaveated", engine.ConditionalPermission},
	{"assertFalse", engine.NoPermission},
}

func (lf *loadedValidationFile) assertions(kind assertionKind) []blocks.Assertion {
	a := lf.parsed.Assertions
	switch kind.name {
	case "assertTrue":
		return a.AssertTrue
	case "assertCaveated":
		return a.AssertCaveated
	default:
		return a.AssertFalse
	}
}

// runAssertions checks every assertion with engine.Check and returns the
// failed ones, and the number run.
func runAssertions(lf *loadedValidationFile) ([]validationProblem, int) {
	var problems []validationProblem
	count := 0
	for _, kind := range assertionKinds {
		for _, a := range lf.assertions(kind) {
			count++
			if p := checkAssertion(lf, kind, a); p != nil {
				problems = append(problems, *p)
			}
		}
	}
	return problems, count
}

func checkAssertion(lf *loadedValidationFile, kind assertionKind, a blocks.Assertion) *validationProblem {
	text := strings.TrimSpace(a.RelationshipWithContextString)
	problem := func(format string, args ...any) *validationProblem {
		return &validationProblem{
			line:    a.SourcePosition.LineNumber,
			column:  a.SourcePosition.ColumnPosition,
			excerpt: text,
			message: fmt.Sprintf("%s %s: ", kind.name, text) + fmt.Sprintf(format, args...),
		}
	}

	rel := a.Relationship
	if rel.OptionalCaveat != nil {
		return problem("an assertion cannot carry a caveat: pass caveat context with `with {...}` instead")
	}
	resource := graph.ObjectRef{Type: rel.Resource.ObjectType, ID: rel.Resource.ObjectID}
	permission := rel.Resource.Relation
	if lf.schema.Definition(resource.Type) == nil {
		return problem("object definition %q not found", resource.Type)
	}
	if lf.schema.Relation(resource.Type, permission) == nil {
		return problem("relation or permission %q not found on definition %q", permission, resource.Type)
	}
	subject := subjectRefOf(rel.Subject)
	if err := checkSubjectType(lf.schema, subject); err != nil {
		return problem("%v", err)
	}

	result, err := engine.Check(lf.schema, lf.snap, engine.Limits{}, engine.CheckRequest{
		Resource:   resource,
		Permission: permission,
		Subject:    subject,
		Context:    a.CaveatContext,
	})
	if err != nil {
		return problem("check failed: %v", err)
	}
	if result.Membership == kind.want {
		return nil
	}
	p := problem("failed")
	p.expected = describeMembership(engine.Result{Membership: kind.want})
	p.got = describeMembership(result)
	return p
}

func describeMembership(r engine.Result) string {
	switch r.Membership {
	case engine.HasPermission:
		return "has permission"
	case engine.ConditionalPermission:
		if len(r.MissingContext) == 0 {
			return "caveated (conditional permission)"
		}
		return "caveated (conditional permission), missing caveat context: " + strings.Join(r.MissingContext, ", ")
	default:
		return "no permission"
	}
}

// runExpectedRelations compares the subjects of every resource relation
// under `validation:` with those the engine finds, and returns the
// differences.
func runExpectedRelations(lf *loadedValidationFile) []validationProblem {
	keys := make([]blocks.ObjectRelation, 0, len(lf.parsed.ExpectedRelations.ValidationMap))
	for key := range lf.parsed.ExpectedRelations.ValidationMap {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].SourcePosition.LineNumber != keys[j].SourcePosition.LineNumber {
			return keys[i].SourcePosition.LineNumber < keys[j].SourcePosition.LineNumber
		}
		return keys[i].ObjectRelationString < keys[j].ObjectRelationString
	})

	var problems []validationProblem
	for _, key := range keys {
		expected := lf.parsed.ExpectedRelations.ValidationMap[key]
		problems = append(problems, checkExpectedRelation(lf, key, expected)...)
	}
	return problems
}

func checkExpectedRelation(lf *loadedValidationFile, key blocks.ObjectRelation, expected []blocks.ExpectedSubject) []validationProblem {
	onr := key.ObjectAndRelation
	keyProblem := func(format string, args ...any) validationProblem {
		return validationProblem{
			line:    key.SourcePosition.LineNumber,
			column:  key.SourcePosition.ColumnPosition,
			excerpt: key.ObjectRelationString,
			message: fmt.Sprintf("validation %s: ", key.ObjectRelationString) + fmt.Sprintf(format, args...),
		}
	}
	if lf.schema.Definition(onr.ObjectType) == nil {
		return []validationProblem{keyProblem("object definition %q not found", onr.ObjectType)}
	}
	if lf.schema.Relation(onr.ObjectType, onr.Relation) == nil {
		return []validationProblem{keyProblem("relation or permission %q not found on definition %q", onr.Relation, onr.ObjectType)}
	}

	expansion := &subjectExpansion{schema: lf.schema, snap: lf.snap}
	found, err := expansion.subjectsOf(graph.ObjectRef{Type: onr.ObjectType, ID: onr.ObjectID}, onr.Relation, 0)
	if err != nil {
		if errors.Is(err, engine.ErrMaxDepth) {
			return []validationProblem{keyProblem("%v: the data has a cycle or a very long chain", err)}
		}
		return []validationProblem{keyProblem("%v", err)}
	}
	return compareSubjects(key, found, expected)
}

// compareSubjects reports, as SpiceDB's validation does, every expected
// subject that is missing or differs in its relationship paths, wildcard
// exclusions or caveat, and every found subject that is not listed.
func compareSubjects(key blocks.ObjectRelation, found subjectsByType, expected []blocks.ExpectedSubject) []validationProblem {
	var problems []validationProblem
	listed := make(map[string]bool)
	for _, es := range expected {
		validationString := strings.TrimSpace(string(es.ValidationString))
		problem := func(format string, args ...any) validationProblem {
			return validationProblem{
				line:    es.SourcePosition.LineNumber,
				column:  es.SourcePosition.ColumnPosition,
				excerpt: validationString,
				message: fmt.Sprintf("validation %s: ", key.ObjectRelationString) + fmt.Sprintf(format, args...),
			}
		}

		want := es.SubjectWithExceptions
		if want == nil {
			problems = append(problems, problem("no subject in %q: write it as [type:id] is <resource#relation>", validationString))
			continue
		}
		subjectString := tuple.StringONR(want.Subject.Subject)
		listed[subjectString] = true

		fs, ok := found.lookup(want.Subject.Subject)
		if !ok {
			p := problem("missing expected subject %s", subjectString)
			p.expected = validationString
			p.got = "no such subject; found: " + describeFound(found)
			problems = append(problems, p)
			continue
		}

		wantResources := tuple.StringsONRs(es.Resources)
		gotResources := fs.resourceStrings()
		if strings.Join(wantResources, "/") != strings.Join(gotResources, "/") {
			p := problem("different relationship paths for subject %s", subjectString)
			p.expected = wrapResources(wantResources)
			p.got = wrapResources(gotResources)
			problems = append(problems, p)
		}

		switch {
		case fs.isWildcard():
			wantExclusions := exceptionStrings(want.Exceptions)
			gotExclusions := fs.exclusionStrings()
			if strings.Join(wantExclusions, ", ") != strings.Join(gotExclusions, ", ") {
				p := problem("different excluded subjects for subject %s", subjectString)
				p.expected = "{" + strings.Join(wantExclusions, ", ") + "}"
				p.got = "{" + strings.Join(gotExclusions, ", ") + "}"
				problems = append(problems, p)
			}
		case len(want.Exceptions) > 0:
			problems = append(problems, problem("subject %s is not a wildcard, so it cannot have excluded subjects", subjectString))
		}

		if fs.caveated != want.Subject.IsCaveated {
			p := problem("caveat mismatch for subject %s", subjectString)
			p.expected = caveatState(want.Subject.IsCaveated)
			p.got = caveatState(fs.caveated)
			problems = append(problems, p)
		}
	}

	for _, fs := range found.list() {
		subjectString := tuple.StringONR(fs.subject)
		if listed[subjectString] {
			continue
		}
		problems = append(problems, validationProblem{
			line:     key.SourcePosition.LineNumber,
			column:   key.SourcePosition.ColumnPosition,
			excerpt:  key.ObjectRelationString,
			message:  fmt.Sprintf("validation %s: subject %s was found but is not listed", key.ObjectRelationString, subjectString),
			expected: "no such subject",
			got:      fmt.Sprintf("[%s] is %s", validationSubjectString(fs), wrapResources(fs.resourceStrings())),
		})
	}
	return problems
}

func wrapResources(resources []string) string {
	if len(resources) == 0 {
		return "(no relationship path)"
	}
	wrapped := make([]string, 0, len(resources))
	for _, r := range resources {
		wrapped = append(wrapped, "<"+r+">")
	}
	return strings.Join(wrapped, "/")
}

func exceptionStrings(exceptions []blocks.SubjectAndCaveat) []string {
	out := make([]string, 0, len(exceptions))
	for _, e := range exceptions {
		s := tuple.StringONR(e.Subject)
		if e.IsCaveated {
			s += "[...]"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func caveatState(caveated bool) string {
	if caveated {
		return "caveated ([...])"
	}
	return "not caveated"
}

// validationSubjectString writes a found subject as a validation file
// does, such as "user:tom[...]" or "user:* - {user:bob}".
func validationSubjectString(fs *foundSubject) string {
	s := tuple.StringONR(fs.subject)
	if fs.caveated {
		s += "[...]"
	}
	if fs.isWildcard() && len(fs.excluded) > 0 {
		s += " - {" + strings.Join(fs.exclusionStrings(), ", ") + "}"
	}
	return s
}

func describeFound(found subjectsByType) string {
	list := found.list()
	if len(list) == 0 {
		return "(none)"
	}
	out := make([]string, 0, len(list))
	for _, fs := range list {
		out = append(out, validationSubjectString(fs))
	}
	return strings.Join(out, ", ")
}
