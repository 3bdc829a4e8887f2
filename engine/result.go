package engine

import (
	"errors"
	"sort"
)

// Membership is the outcome of a check.
type Membership int

const (
	// NoPermission means the subject does not have the permission.
	NoPermission Membership = iota
	// HasPermission means the subject has the permission.
	HasPermission
	// ConditionalPermission means the answer depends on caveat context
	// that the request did not supply.
	ConditionalPermission
)

func (m Membership) String() string {
	switch m {
	case HasPermission:
		return "has_permission"
	case ConditionalPermission:
		return "conditional_permission"
	default:
		return "no_permission"
	}
}

// Result is the answer to one check.
type Result struct {
	Membership Membership
	// MissingContext lists the caveat parameters whose absence made the
	// result conditional, sorted.
	MissingContext []string
}

// ErrMaxDepth is returned when a check recurses deeper than the configured
// limit.
var ErrMaxDepth = errors.New("max depth exceeded")

// outcome is a three-valued result: Kleene logic over caveats whose
// context is missing.
type outcome struct {
	m       Membership
	missing map[string]struct{}
	// err is the first caveat evaluation error that a conditional
	// outcome depends on. It is nil for HasPermission and NoPermission,
	// because those results do not depend on the failed caveat.
	err error
}

var (
	outNo  = outcome{m: NoPermission}
	outYes = outcome{m: HasPermission}
)

func conditional(missing []string) outcome {
	o := outcome{m: ConditionalPermission, missing: make(map[string]struct{}, len(missing))}
	for _, name := range missing {
		o.missing[name] = struct{}{}
	}
	return o
}

// failedCaveat is the outcome of a caveat that could not be evaluated.
// It behaves as conditional, so a path that decides the result without
// it hides the error.
func failedCaveat(err error) outcome {
	return outcome{m: ConditionalPermission, err: err}
}

// addMissing adds the missing context and the error of other to o.
func (o outcome) addMissing(other outcome) outcome {
	if o.err == nil {
		o.err = other.err
	}
	if len(other.missing) == 0 {
		return o
	}
	merged := make(map[string]struct{}, len(o.missing)+len(other.missing))
	for k := range o.missing {
		merged[k] = struct{}{}
	}
	for k := range other.missing {
		merged[k] = struct{}{}
	}
	o.missing = merged
	return o
}

// or combines two outcomes of a union.
func or(a, b outcome) outcome {
	switch {
	case a.m == HasPermission || b.m == HasPermission:
		return outYes
	case a.m == ConditionalPermission && b.m == ConditionalPermission:
		return a.addMissing(b)
	case a.m == ConditionalPermission:
		return a
	default:
		return b
	}
}

// and combines two outcomes of an intersection.
func and(a, b outcome) outcome {
	switch {
	case a.m == NoPermission || b.m == NoPermission:
		return outNo
	case a.m == ConditionalPermission && b.m == ConditionalPermission:
		return a.addMissing(b)
	case a.m == ConditionalPermission:
		return a
	default:
		return b
	}
}

// andNot combines the base and the excluded side of an exclusion.
func andNot(base, excluded outcome) outcome {
	switch {
	case base.m == NoPermission || excluded.m == HasPermission:
		return outNo
	case excluded.m == NoPermission:
		return base
	default:
		return conditional(nil).addMissing(base).addMissing(excluded)
	}
}

func (o outcome) result() Result {
	r := Result{Membership: o.m}
	if o.m == ConditionalPermission {
		for k := range o.missing {
			r.MissingContext = append(r.MissingContext, k)
		}
		sort.Strings(r.MissingContext)
	}
	return r
}
