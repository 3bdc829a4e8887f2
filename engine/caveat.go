package engine

import (
	"errors"
	"fmt"

	"github.com/authzed/spicedb/pkg/caveats"
	caveattypes "github.com/authzed/spicedb/pkg/caveats/types"

	"github.com/mandate-iam/mandate/graph"
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
	merged := make(map[string]any, len(w.context)+len(r.CaveatContext))
	for k, v := range w.context {
		merged[k] = v
	}
	for k, v := range r.CaveatContext {
		merged[k] = v
	}
	for k, v := range w.trusted {
		merged[k] = v
	}
	params, err := caveats.ConvertContextToParameters(caveattypes.Default.TypeSet, merged,
		c.ParameterTypes, caveats.SkipUnknownParameters)
	if err != nil {
		return failedCaveat(&CaveatError{Caveat: r.Caveat, Err: err}), nil
	}
	res, err := caveats.EvaluateCaveatWithConfig(c.Compiled, params,
		&caveats.EvaluationConfig{MaxCost: w.limits.MaxCaveatCost})
	if err != nil {
		return failedCaveat(&CaveatError{Caveat: r.Caveat, Err: err}), nil
	}
	if res.IsPartial() {
		missing, _ := res.MissingVarNames()
		return conditional(missing), nil
	}
	if res.Value() {
		return outYes, nil
	}
	return outNo, nil
}
