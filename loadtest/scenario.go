package loadtest

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// Expectation is the result a check must return, when the data set fixes it.
type Expectation int

const (
	// Unverified marks a check whose result the generator does not track,
	// for example one about relationships that concurrent writes change.
	Unverified Expectation = iota
	// ExpectAllowed marks a check that must return HAS_PERMISSION.
	ExpectAllowed
	// ExpectDenied marks a check that must return NO_PERMISSION.
	ExpectDenied
)

// CheckCase is one permission check and its expected result.
type CheckCase struct {
	Resource   *v1.ObjectReference
	Permission string
	Subject    *v1.SubjectReference
	Expect     Expectation
}

// String formats the check as resource#permission@subject.
func (c CheckCase) String() string {
	return formatObject(c.Resource) + "#" + c.Permission + "@" + formatSubject(c.Subject)
}

// LookupCase is one LookupResources request and, when Verified is set, the
// exact result it must return: ExpectedCount distinct resource IDs, each of
// which Allowed accepts.
type LookupCase struct {
	ResourceType  string
	Permission    string
	Subject       *v1.SubjectReference
	Verified      bool
	ExpectedCount int
	Allowed       func(resourceID string) bool
}

// String formats the lookup as type#permission@subject.
func (c LookupCase) String() string {
	return c.ResourceType + "#" + c.Permission + "@" + formatSubject(c.Subject)
}

// Scenario is a schema with a generated data set of a requested size, and
// generators of requests against it. Building a scenario with the same
// name, size and seed gives the same data, so a later run can reuse data
// that an earlier one loaded.
//
// Every data set has a part whose results the generator tracks, and writes
// only change relationships that no verified check or lookup depends on,
// so the expected results stay true while the load test writes.
type Scenario interface {
	// Name returns the name that --schema selects the scenario by.
	Name() string
	// Schema returns the schema text, in the SpiceDB schema language.
	Schema() string
	// Count returns the number of relationships Relationships emits.
	Count() int
	// Relationships calls emit for every relationship of the data set, in
	// load order, and stops at the first error emit returns.
	Relationships(emit func(*v1.Relationship) error) error
	// NextCheck returns a random check, verified or not.
	NextCheck(r *rand.Rand) CheckCase
	// NextLookup returns a random LookupResources request.
	NextLookup(r *rand.Rand) LookupCase
	// NextWrite returns a relationship for worker to create and then
	// delete. It is outside the data set, no verified request depends on
	// it, and no other worker writes it.
	NextWrite(r *rand.Rand, worker int) *v1.Relationship
	// ReadyCheck returns a check that is allowed once the whole data set
	// is visible, because it depends on the last relationships loaded.
	ReadyCheck() CheckCase
	// Marker returns a relationship of the data set. Touching it yields a
	// ZedToken at least as fresh as the loaded data.
	Marker() *v1.Relationship
}

// scenarioBuilders maps each scenario name to its constructor, which takes
// the requested number of relationships and the seed.
var scenarioBuilders = map[string]func(relationships int, seed uint64) Scenario{
	"agents": func(n int, seed uint64) Scenario { return newAgentsScenario(n, seed) },
	"docs":   func(n int, seed uint64) Scenario { return newDocsScenario(n, seed) },
}

// ScenarioNames returns the names NewScenario accepts, sorted.
func ScenarioNames() []string {
	names := make([]string, 0, len(scenarioBuilders))
	for name := range scenarioBuilders {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// NewScenario builds the named scenario with about relationships
// relationships, generated from seed. Very small sizes are rounded up to
// the smallest data set that still has every verified case, so check
// Count for the exact number.
func NewScenario(name string, relationships int, seed uint64) (Scenario, error) {
	build, ok := scenarioBuilders[name]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q: use one of %s", name, strings.Join(ScenarioNames(), ", "))
	}
	if relationships <= 0 {
		return nil, fmt.Errorf("invalid relationship count %d: must be at least 1", relationships)
	}
	return build(relationships, seed), nil
}

func object(typ, id string) *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: typ, ObjectId: id}
}

func subject(typ, id string) *v1.SubjectReference {
	return &v1.SubjectReference{Object: object(typ, id)}
}

func subjectSet(typ, id, relation string) *v1.SubjectReference {
	return &v1.SubjectReference{Object: object(typ, id), OptionalRelation: relation}
}

func relationship(resType, resID, relation string, sub *v1.SubjectReference) *v1.Relationship {
	return &v1.Relationship{Resource: object(resType, resID), Relation: relation, Subject: sub}
}

func formatObject(o *v1.ObjectReference) string {
	return o.GetObjectType() + ":" + o.GetObjectId()
}

func formatSubject(s *v1.SubjectReference) string {
	text := formatObject(s.GetObject())
	if rel := s.GetOptionalRelation(); rel != "" {
		text += "#" + rel
	}
	return text
}

// FormatRelationship formats r as resource#relation@subject.
func FormatRelationship(r *v1.Relationship) string {
	return formatObject(r.GetResource()) + "#" + r.GetRelation() + "@" + formatSubject(r.GetSubject())
}

// entityID builds IDs such as "d12-s34": prefix, group number, a dash, the
// kind letter and the index within the group.
func entityID(prefix byte, group int, kind string, index int) string {
	b := make([]byte, 0, 16)
	b = append(b, prefix)
	b = strconv.AppendInt(b, int64(group), 10)
	b = append(b, '-')
	b = append(b, kind...)
	b = strconv.AppendInt(b, int64(index), 10)
	return string(b)
}

// parseEntityID reverses entityID for the given prefix and kind, and
// reports whether id has that form.
func parseEntityID(id string, prefix byte, kind string) (group, index int, ok bool) {
	if len(id) < 2 || id[0] != prefix {
		return 0, 0, false
	}
	groupText, rest, found := strings.Cut(id[1:], "-")
	if !found || !strings.HasPrefix(rest, kind) {
		return 0, 0, false
	}
	g, err := strconv.Atoi(groupText)
	if err != nil {
		return 0, 0, false
	}
	i, err := strconv.Atoi(rest[len(kind):])
	if err != nil {
		return 0, 0, false
	}
	return g, i, true
}

// scaled returns base*scale rounded, but at least floor.
func scaled(base int, scale float64, floor int) int {
	return max(floor, int(float64(base)*scale+0.5))
}
