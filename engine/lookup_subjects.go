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
//
// Every subject's result follows Check: a subject is listed with its
// check's result, or covered by the wildcard and not excluded from it. A
// subject that the wildcard covers is listed by itself only where
// SpiceDB v1.56 lists it, which listing decides.
func LookupSubjects(s *schema.Schema, snap graph.Snapshot, limits Limits, req LookupSubjectsRequest) ([]SubjectResult, bool, error) {
	ids, wildcardReached := forwardReachable(s, snap, req.Resource, req.SubjectType)
	newSubjectWalker := func(id string) *walker {
		subject := graph.SubjectRef{Type: req.SubjectType, ID: id, Relation: req.SubjectRelation}
		w := newWalker(s, snap, limits, subject, req.Context)
		w.trustFrom(req.Policy, subject)
		return w
	}
	decide := func(id string) (outcome, error) {
		subject := graph.SubjectRef{Type: req.SubjectType, ID: id, Relation: req.SubjectRelation}
		if id != anySubjectID && !req.Policy.allows(subject) {
			return outNo, nil
		}
		return newSubjectWalker(id).check(req.Resource, req.Permission, 0)
	}

	concrete := make(map[string]outcome, len(ids))
	for _, id := range ids {
		o, err := decide(id)
		if err != nil {
			return nil, false, err
		}
		concrete[id] = o
	}
	wild := outNo
	if wildcardReached {
		o, err := decide(anySubjectID)
		if err != nil {
			return nil, false, err
		}
		wild = o
	}

	var out []SubjectResult
	listed := make(map[string]bool, len(ids))
	var excluded []SubjectResult
	for _, id := range ids {
		l := listing(newSubjectWalker, id, req, concrete[id], wild)
		listed[id] = l.listed
		if l.excluded.m != NoPermission {
			excluded = append(excluded, SubjectResult{ID: id, Result: l.excluded.result()})
		}
	}
	if wild.m != NoPermission && req.After == "" {
		out = append(out, SubjectResult{ID: graph.Wildcard, Result: wild.result(), Excluded: excluded})
	}

	count := 0
	for _, id := range ids {
		if req.After != "" && id <= req.After {
			continue
		}
		if !listed[id] {
			continue
		}
		if req.Limit > 0 && count == req.Limit {
			return out, true, nil
		}
		out = append(out, SubjectResult{ID: id, Result: concrete[id].result()})
		count++
	}
	return out, false, nil
}

// subjectListing is the place of one concrete subject in a LookupSubjects
// result: whether it is listed by itself, with its check's result, and the
// outcome of its exclusion from the wildcard.
type subjectListing struct {
	listed   bool
	excluded outcome
}

// listing decides how the subject id, whose check outcome is member,
// appears beside a wildcard with outcome wild. It lists the subject as
// SpiceDB v1.56 does when the subject set walk agrees with the check, and
// otherwise by the check alone: listed when it has the permission, and
// excluded where the wildcard would grant more than the check.
func listing(newSubjectWalker func(string) *walker, id string, req LookupSubjectsRequest, member, wild outcome) subjectListing {
	// A subject that the policy disallows has member NoPermission, so it
	// never reaches the subject set walk.
	byCheck := subjectListing{listed: member.m != NoPermission, excluded: outNo}
	switch {
	case wild.m == NoPermission:
		return byCheck
	case member.m == NoPermission:
		byCheck.excluded = outYes
		return byCheck
	case member.m == ConditionalPermission && wild.m == HasPermission:
		byCheck.excluded = conditional(nil).addMissing(member)
	}
	set, err := newSetWalker(newSubjectWalker(id)).set(req.Resource, req.Permission, 0)
	if err != nil || set.failed() {
		return byCheck
	}
	bySet := subjectListing{listed: set.concrete.m != NoPermission, excluded: outNo}
	if set.excluded.m != NoPermission {
		bySet.excluded = set.excluded
	}
	listedOutcome := outNo
	if bySet.listed {
		listedOutcome = member
	}
	if or(listedOutcome, and(wild, not(bySet.excluded))).m != member.m {
		return byCheck
	}
	return bySet
}
