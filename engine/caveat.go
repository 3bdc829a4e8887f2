package engine

import (
	"errors"
	"fmt"

	"github.com/authzed/spicedb/pkg/caveats"
	caveattypes "github.com/authzed/spicedb/pkg/caveats/types"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// CaveatError reports a caveat that could not be evaluated, such as a
// context value of the wrong type.
type CaveatError struct {
	Caveat string
	Err    error
}

func (e *CaveatError) Error() string {
	return fmt.Sprintf("evaluate caveat %q: %v", e.Caveat, e.Err)
}

func (e *CaveatError) Unwrap() error { return e.Err }

// caveatOutcome evaluates the caveat of a relationship, with the
// relationship's stored context taking precedence over the request's.
//
// A context value of the wrong type, or a failed CEL evaluation, does not
// fail the walk at once. The caveat becomes a conditional outcome that
// carries the error, and the check fails only if its result depends on
// that caveat. SpiceDB v1.56 likewise drops the caveats of a path when a
// caveat-free path decides the result, and evaluates the rest only at the
// end. The returned error is for a caveat missing from the schema.
func (w *walker) caveatOutcome(r *graph.Relationship) (outcome, error) {
	if r.Caveat == "" {
		return outYes, nil
	}
	c := w.schema.Caveats[r.Caveat]
	if c == nil {
		return outNo, &CaveatError{Caveat: r.Caveat, Err: errors.New("caveat is not defined in the schema")}
	}
	if len(r.CaveatContext) > 0 {
		return w.evaluateCaveat(c, r.CaveatContext), nil
	}
	// Without context of its own, a relationship's caveat is evaluated with
	// only the walker's fixed request and trusted context, so every such
	// relationship with the same caveat has the same outcome. SpiceDB
	// v1.56.2's EvaluateCaveatWithConfig builds a CEL program on every
	// call, so the walker evaluates each caveat once.
	if o, ok := w.caveatOutcomes[c]; ok {
		return o, nil
	}
	o := w.evaluateCaveat(c, nil)
	if w.caveatOutcomes == nil {
		w.caveatOutcomes = make(map[*schema.Caveat]outcome)
	}
	w.caveatOutcomes[c] = o
	return o, nil
}

// evaluateCaveat evaluates c with the request's context, overridden by
// relationshipContext, overridden by the trusted context.
func (w *walker) evaluateCaveat(c *schema.Caveat, relationshipContext map[string]any) outcome {
	trusted := w.trustedContext()
	merged := make(map[string]any, len(w.context)+len(relationshipContext)+len(trusted))
	for k, v := range w.context {
		merged[k] = v
	}
	for k, v := range relationshipContext {
		merged[k] = v
	}
	for k, v := range trusted {
		merged[k] = v
	}
	params, err := caveats.ConvertContextToParameters(caveattypes.Default.TypeSet, merged,
		c.ParameterTypes, caveats.SkipUnknownParameters)
	if err != nil {
		return failedCaveat(&CaveatError{Caveat: c.Name, Err: err})
	}
	res, err := caveats.EvaluateCaveatWithConfig(c.Compiled, params,
		&caveats.EvaluationConfig{MaxCost: w.limits.MaxCaveatCost})
	if err != nil {
		return failedCaveat(&CaveatError{Caveat: c.Name, Err: err})
	}
	if res.IsPartial() {
		missing, _ := res.MissingVarNames()
		return conditional(missing)
	}
	if res.Value() {
		return outYes
	}
	return outNo
}
