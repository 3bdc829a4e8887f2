package loadtest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Kind is one kind of call that the load test sends.
type Kind int

// The kinds of call, in the order that reports list them.
const (
	KindCheck  Kind = iota // CheckPermission
	KindBulk               // CheckBulkPermissions
	KindLookup             // LookupResources
	KindWrite              // WriteRelationships
	numKinds
)

var kindNames = [numKinds]string{"check", "bulk", "lookup", "write"}

// String returns the kind's name as --mix spells it.
func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Mix is the relative weight of each kind of call. A call's kind is drawn
// at random with probability weight/sum of weights.
type Mix [numKinds]int

// DefaultMix is mostly checks, with some bulk checks, lookups and writes.
const DefaultMix = "check=80,bulk=10,lookup=5,write=5"

// ParseMix parses a comma-separated list of kind=weight pairs such as
// "check=80,bulk=10,lookup=5,write=5". Weights are non-negative integers
// and kinds left out get weight 0.
func ParseMix(text string) (Mix, error) {
	var m Mix
	seen := [numKinds]bool{}
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("invalid mix entry %q: want kind=weight, e.g. check=80", part)
		}
		kind, err := parseKind(strings.TrimSpace(name))
		if err != nil {
			return Mix{}, err
		}
		if seen[kind] {
			return Mix{}, fmt.Errorf("invalid mix: kind %q appears more than once", kind)
		}
		seen[kind] = true
		weight, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || weight < 0 {
			return Mix{}, fmt.Errorf("invalid mix weight %q for %s: want a non-negative integer", value, kind)
		}
		m[kind] = weight
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("invalid mix %q: at least one weight must be above 0", text)
	}
	return m, nil
}

func parseKind(name string) (Kind, error) {
	for k, n := range kindNames {
		if n == name {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("invalid mix kind %q: use %s", name, strings.Join(kindNames[:], ", "))
}

func (m Mix) total() int {
	sum := 0
	for _, w := range m {
		sum += w
	}
	return sum
}

// String formats the mix as ParseMix reads it, leaving out zero weights.
func (m Mix) String() string {
	var parts []string
	for k, w := range m {
		if w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", Kind(k), w))
		}
	}
	return strings.Join(parts, ",")
}

// pick draws a kind with the mix's weights. The mix must have a positive
// total weight.
func (m Mix) pick(r *rand.Rand) Kind {
	n := r.IntN(m.total())
	for k, w := range m {
		if n < w {
			return Kind(k)
		}
		n -= w
	}
	return numKinds - 1
}
