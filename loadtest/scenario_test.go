package loadtest

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// collect returns every relationship of s as text, in load order.
func collect(t *testing.T, s Scenario) []string {
	t.Helper()
	var rels []string
	err := s.Relationships(func(r *v1.Relationship) error {
		rels = append(rels, FormatRelationship(r))
		return nil
	})
	if err != nil {
		t.Fatalf("relationships of %s: %v", s.Name(), err)
	}
	return rels
}

func mustScenario(t *testing.T, name string, n int, seed uint64) Scenario {
	t.Helper()
	s, err := NewScenario(name, n, seed)
	if err != nil {
		t.Fatalf("new scenario %s: %v", name, err)
	}
	return s
}

func TestScenarioSizes(t *testing.T) {
	for _, name := range ScenarioNames() {
		for _, n := range []int{1000, 4321, 50_000, 200_000} {
			s := mustScenario(t, name, n, 1)
			rels := collect(t, s)
			if len(rels) != s.Count() {
				t.Errorf("%s/%d: emitted %d relationships, Count = %d", name, n, len(rels), s.Count())
			}
			if s.Count() != n {
				t.Errorf("%s/%d: Count = %d, want the requested %d", name, n, s.Count(), n)
			}
			seen := make(map[string]bool, len(rels))
			for _, r := range rels {
				if seen[r] {
					t.Errorf("%s/%d: relationship %s emitted twice", name, n, r)
					break
				}
				seen[r] = true
			}
		}
	}
}

func TestScenarioTinySizeRoundsUp(t *testing.T) {
	for _, name := range ScenarioNames() {
		s := mustScenario(t, name, 10, 1)
		if got := len(collect(t, s)); got != s.Count() || got < 10 {
			t.Errorf("%s/10: emitted %d, Count %d, want equal and at least 10", name, got, s.Count())
		}
	}
}

func TestNewScenarioRejectsBadInput(t *testing.T) {
	if _, err := NewScenario("nope", 100, 1); err == nil || !strings.Contains(err.Error(), "agents") {
		t.Errorf("unknown scenario: err = %v, want one that lists the scenarios", err)
	}
	if _, err := NewScenario("agents", 0, 1); err == nil {
		t.Errorf("zero relationships: err = nil, want an error")
	}
}

func digest(rels []string) uint64 {
	h := fnv.New64a()
	for _, r := range rels {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return h.Sum64()
}

func TestScenarioSeedDeterminesData(t *testing.T) {
	for _, name := range ScenarioNames() {
		first := digest(collect(t, mustScenario(t, name, 20_000, 9)))
		again := digest(collect(t, mustScenario(t, name, 20_000, 9)))
		other := digest(collect(t, mustScenario(t, name, 20_000, 10)))
		if first != again {
			t.Errorf("%s: same seed gave different data", name)
		}
		if first == other {
			t.Errorf("%s: seeds 9 and 10 gave the same data", name)
		}
	}
}

func TestScenarioChecksMixExpectations(t *testing.T) {
	for _, name := range ScenarioNames() {
		s := mustScenario(t, name, 30_000, 2)
		data := make(map[string]bool)
		for _, r := range collect(t, s) {
			resource, _, _ := strings.Cut(r, "#")
			data[resource] = true
		}
		r := rand.New(rand.NewPCG(1, 2))
		counts := map[Expectation]int{}
		for range 20_000 {
			c := s.NextCheck(r)
			counts[c.Expect]++
			if c.Expect != Unverified && !data[formatObject(c.Resource)] {
				t.Fatalf("%s: verified check %s names a resource outside the data set", name, c)
			}
		}
		// Each expectation should have a sizable share of the traffic.
		for _, e := range []Expectation{ExpectAllowed, ExpectDenied, Unverified} {
			if counts[e] < 1000 {
				t.Errorf("%s: %d of 20000 checks have expectation %d, want at least 1000", name, counts[e], e)
			}
		}
	}
}

// resourceIDs returns the IDs of every resource of type typ in s.
func resourceIDs(t *testing.T, s Scenario, typ string) map[string]bool {
	t.Helper()
	ids := make(map[string]bool)
	err := s.Relationships(func(r *v1.Relationship) error {
		if r.GetResource().GetObjectType() == typ {
			ids[r.GetResource().GetObjectId()] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("relationships: %v", err)
	}
	return ids
}

func TestScenarioLookupCountsAgreeWithAllowed(t *testing.T) {
	for _, name := range ScenarioNames() {
		s := mustScenario(t, name, 30_000, 4)
		r := rand.New(rand.NewPCG(3, 4))
		idsByType := make(map[string]map[string]bool)
		verified := 0
		for range 50 {
			c := s.NextLookup(r)
			if !c.Verified {
				continue
			}
			verified++
			if idsByType[c.ResourceType] == nil {
				idsByType[c.ResourceType] = resourceIDs(t, s, c.ResourceType)
			}
			allowed := 0
			for id := range idsByType[c.ResourceType] {
				if c.Allowed(id) {
					allowed++
				}
			}
			if allowed != c.ExpectedCount {
				t.Errorf("%s: lookup %s allows %d resources of the data set, ExpectedCount = %d", name, c, allowed, c.ExpectedCount)
			}
			if c.ExpectedCount == 0 {
				t.Errorf("%s: lookup %s expects no resources", name, c)
			}
		}
		if verified == 0 {
			t.Errorf("%s: none of 50 lookups is verified", name)
		}
	}
}

func TestScenarioWritesStayOutsideData(t *testing.T) {
	for _, name := range ScenarioNames() {
		s := mustScenario(t, name, 5000, 1)
		data := make(map[string]bool)
		for _, rel := range collect(t, s) {
			data[rel] = true
		}
		r := rand.New(rand.NewPCG(5, 6))
		for worker := range 8 {
			rel := FormatRelationship(s.NextWrite(r, worker))
			if data[rel] {
				t.Errorf("%s: write %s is part of the data set", name, rel)
			}
			if !strings.HasSuffix(rel, "wguest-"+string(rune('0'+worker))) {
				t.Errorf("%s: worker %d writes %s, want a subject of its own", name, worker, rel)
			}
		}
		marker := FormatRelationship(s.Marker())
		if !data[marker] {
			t.Errorf("%s: marker %s is not part of the data set", name, marker)
		}
		if got := s.ReadyCheck().Expect; got != ExpectAllowed {
			t.Errorf("%s: ready check expectation = %d, want allowed", name, got)
		}
	}
}

func TestEntityIDRoundTrip(t *testing.T) {
	id := entityID('d', 12, "s", 345)
	if id != "d12-s345" {
		t.Errorf("entityID = %q, want d12-s345", id)
	}
	group, index, ok := parseEntityID(id, 'd', "s")
	if !ok || group != 12 || index != 345 {
		t.Errorf("parseEntityID(%q) = %d, %d, %v, want 12, 345, true", id, group, index, ok)
	}
	for _, bad := range []string{"d12-staff3", "o12-s3", "d-s3", "d12-s", "guest-4"} {
		if _, _, ok := parseEntityID(bad, 'd', "s"); ok {
			t.Errorf("parseEntityID(%q) accepted a non-dataset ID", bad)
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix(DefaultMix)
	if err != nil {
		t.Fatalf("parse default mix: %v", err)
	}
	if m != (Mix{80, 10, 5, 5}) {
		t.Errorf("default mix = %v, want [80 10 5 5]", m)
	}
	if got := m.String(); got != DefaultMix {
		t.Errorf("mix string = %q, want %q", got, DefaultMix)
	}
	m, err = ParseMix(" lookup = 3 ")
	if err != nil {
		t.Fatalf("parse one kind: %v", err)
	}
	if m != (Mix{KindLookup: 3}) {
		t.Errorf("mix = %v, want only lookup=3", m)
	}
	for _, bad := range []string{"", "check", "check=-1", "check=x", "read=5", "check=0", "check=1,check=2"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) succeeded, want an error", bad)
		}
	}
}

func TestMixPickFollowsWeights(t *testing.T) {
	m := Mix{KindCheck: 70, KindLookup: 30}
	r := rand.New(rand.NewPCG(1, 1))
	var counts [numKinds]int
	const n = 100_000
	for range n {
		counts[m.pick(r)]++
	}
	if counts[KindBulk] != 0 || counts[KindWrite] != 0 {
		t.Errorf("picked kinds of weight 0: %v", counts)
	}
	if share := float64(counts[KindCheck]) / n; share < 0.69 || share > 0.71 {
		t.Errorf("check share = %.3f, want 0.70 within 0.01", share)
	}
}
