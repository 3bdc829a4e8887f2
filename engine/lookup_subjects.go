package engine

import (
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// SubjectResult is one subject found by LookupSubjects. For the wildcard
// (ID "*"), Excluded lists the concrete subjects that the wildcard does not
// cover, each with the result that decides whether it is excluded:
// HasPermission means always excluded, ConditionalPermission excluded
// under the caveat.
type SubjectResult struct {
	ID       string
	Result   Result
	Excluded []SubjectResult
}

// LookupSubjectsRequest asks for the subjects of SubjectType (through
// SubjectRelation, when not empty) that have Permission on Resource.
type LookupSubjectsRequest struct {
	Resource        graph.ObjectRef
	Permission      string
	SubjectType     string
	SubjectRelation string
	Context         map[string]any
	// After skips every concrete subject id up to and including it; the
	// wildcard, when present, is returned first and only without After.
	After string
	// Limit stops after this many concrete subjects; 0 means no limit.
	Limit int
	// Policy applies the server's rules about subjects; nil applies none.
	// A subject it disallows is left out, and excluded from a wildcard.
	Policy *Policy
}

// anySubjectID stands for a subject that appears in no relationship. It is
// not a valid object id, so it cannot collide with a stored one. A check
// for it succeeds exactly when a wildcard grants the permission.
const anySubjectID = "\x00any"

// LookupSubjects returns the matching subjects: the wildcard first, when it
// grants the permission, then concrete subjects sorted by id. It reports
// whether more concrete subjects remain after the last one returned.
func LookupSubjects(s *schema.Schema, snap graph.Snapshot, limits Limits, req LookupSubjectsRequest) ([]SubjectResult, bool, error) {
	ids, wildcardReached := forwardReachable(s, snap, req.Resource, req.SubjectType)
	decide := func(id string) (outcome, error) {
		subject := graph.SubjectRef{Type: req.SubjectType, ID: id, Relation: req.SubjectRelation}
		if id != anySubjectID && !req.Policy.allows(subject) {
			return outNo, nil
		}
		w := newWalker(s, snap, limits, subject, req.Context)
		w.trusted = req.Policy.trusted(subject)
		return w.check(req.Resource, req.Permission, 0)
	}

	var out []SubjectResult
	concrete := make(map[string]outcome, len(ids))
	for _, id := range ids {
		o, err := decide(id)
		if err != nil {
			return nil, false, err
		}
		concrete[id] = o
	}

	if wildcardReached && req.SubjectRelation == graph.Ellipsis && req.After == "" {
		o, err := decide(anySubjectID)
		if err != nil {
			return nil, false, err
		}
		if o.m != NoPermission {
			wild := SubjectResult{ID: graph.Wildcard, Result: o.result()}
			for _, id := range ids {
				c := concrete[id]
				switch {
				case c.m == NoPermission:
					wild.Excluded = append(wild.Excluded, SubjectResult{ID: id, Result: Result{Membership: HasPermission}})
				case c.m == ConditionalPermission && o.m == HasPermission:
					wild.Excluded = append(wild.Excluded, SubjectResult{ID: id, Result: Result{
						Membership: ConditionalPermission, MissingContext: c.result().MissingContext,
					}})
				}
			}
			out = append(out, wild)
		}
	}

	count := 0
	for _, id := range ids {
		if req.After != "" && id <= req.After {
			continue
		}
		o := concrete[id]
		if o.m == NoPermission {
			continue
		}
		if req.Limit > 0 && count == req.Limit {
			return out, true, nil
		}
		out = append(out, SubjectResult{ID: id, Result: o.result()})
		count++
	}
	return out, false, nil
}
