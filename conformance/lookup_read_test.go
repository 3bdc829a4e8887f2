package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mandate-iam/mandate/graph"
)

// Permissionships are compared in Kleene's three-valued logic, ordered
// no permission < conditional < has permission: a union takes the larger,
// an intersection the smaller, and a negation mirrors the order.
const (
	noPermission  = v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
	conditionalOn = v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION
	hasPermission = v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
)

func kleeneRank(p v1.CheckPermissionResponse_Permissionship) int {
	switch p {
	case hasPermission:
		return 2
	case conditionalOn:
		return 1
	default:
		return 0
	}
}

var kleeneValues = [3]v1.CheckPermissionResponse_Permissionship{noPermission, conditionalOn, hasPermission}

func kleeneOr(a, b v1.CheckPermissionResponse_Permissionship) v1.CheckPermissionResponse_Permissionship {
	return kleeneValues[max(kleeneRank(a), kleeneRank(b))]
}

func kleeneAnd(a, b v1.CheckPermissionResponse_Permissionship) v1.CheckPermissionResponse_Permissionship {
	return kleeneValues[min(kleeneRank(a), kleeneRank(b))]
}

func kleeneNot(a v1.CheckPermissionResponse_Permissionship) v1.CheckPermissionResponse_Permissionship {
	return kleeneValues[2-kleeneRank(a)]
}

// lookedUp is one lookup result as a check would return it: the
// permissionship and, for a conditional result, the missing caveat
// context, sorted and without repeats.
type lookedUp struct {
	permissionship v1.CheckPermissionResponse_Permissionship
	missing        []string
	// missingUnknown is set for a result implied by a wildcard, whose
	// missing context the lookup does not report per subject.
	missingUnknown bool
}

func (l lookedUp) String() string {
	if l.permissionship == conditionalOn {
		return fmt.Sprintf("%v missing %v", l.permissionship, l.missing)
	}
	return l.permissionship.String()
}

func lookedUpOf(p v1.LookupPermissionship, info *v1.PartialCaveatInfo) lookedUp {
	if p == v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION {
		return lookedUp{permissionship: conditionalOn, missing: uniqueSorted(info.GetMissingRequiredContext())}
	}
	return lookedUp{permissionship: hasPermission}
}

// mergeLookedUp combines two results for the same id as a union, for
// SpiceDB, which can return a conditional resource more than once.
func mergeLookedUp(a, b lookedUp) lookedUp {
	switch {
	case a.permissionship == hasPermission || b.permissionship == hasPermission:
		return lookedUp{permissionship: hasPermission}
	default:
		return lookedUp{permissionship: conditionalOn, missing: uniqueSorted(slices.Concat(a.missing, b.missing))}
	}
}

// resourcesFound maps each resource id of a LookupResources query to its
// result.
type resourcesFound map[string]lookedUp

// permissionshipOf returns what the results imply a check of id returns.
func (f resourcesFound) permissionshipOf(id string) lookedUp {
	if l, ok := f[id]; ok {
		return l
	}
	return lookedUp{permissionship: noPermission}
}

// subjectsFound is the result of a LookupSubjects query.
type subjectsFound struct {
	concrete map[string]lookedUp
	// wildcard is nil when the results have no wildcard.
	wildcard *lookedUp
	// excluded lists the subjects that the wildcard does not cover, with
	// has permission for a certain exclusion and conditional for one
	// under a caveat.
	excluded map[string]lookedUp
}

// permissionshipOf returns what the results imply a check of the subject
// with this id returns: it is listed itself, or covered by the wildcard
// and not excluded from it.
func (f subjectsFound) permissionshipOf(id string) v1.CheckPermissionResponse_Permissionship {
	p := noPermission
	if l, ok := f.concrete[id]; ok {
		p = l.permissionship
	}
	if f.wildcard == nil {
		return p
	}
	excluded := noPermission
	if l, ok := f.excluded[id]; ok {
		excluded = l.permissionship
	}
	return kleeneOr(p, kleeneAnd(f.wildcard.permissionship, kleeneNot(excluded)))
}

func (f subjectsFound) String() string {
	var parts []string
	if f.wildcard != nil {
		var excluded []string
		for _, id := range slices.Sorted(maps.Keys(f.excluded)) {
			excluded = append(excluded, id+" "+f.excluded[id].String())
		}
		parts = append(parts, fmt.Sprintf("* %v excluding [%s]", f.wildcard, strings.Join(excluded, ", ")))
	}
	for _, id := range slices.Sorted(maps.Keys(f.concrete)) {
		parts = append(parts, id+" "+f.concrete[id].String())
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func (f resourcesFound) String() string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, id+" "+f[id].String())
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// pagedReader reads a lookup to its end. With pageSize 0 it makes one
// call without a limit. Otherwise it requests pageSize results a call,
// passing the cursor of the last result of each page, until a page
// returns fewer. strict rejects a result id seen before, which SpiceDB
// may send for conditional resources.
type pagedReader struct {
	client   v1.PermissionsServiceClient
	pageSize uint32
	strict   bool
	// calls counts the calls made.
	calls int
}

// maxExtraPages bounds the pages beyond one per result that a reader
// follows before it reports that the lookup does not end.
const maxExtraPages = 3

// resources runs req, whose limit and cursor the reader sets. It returns
// the results, the rules of paging that the server broke, and the error
// of the first call that failed.
func (r *pagedReader) resources(ctx context.Context, req *v1.LookupResourcesRequest) (resourcesFound, []string, error) {
	found := resourcesFound{}
	var problems []string
	var cursor *v1.Cursor
	for page := 0; ; page++ {
		if page > len(found)+maxExtraPages {
			problems = append(problems, fmt.Sprintf("page size %d: still returning results after %d pages", r.pageSize, page))
			return found, problems, nil
		}
		pageReq := &v1.LookupResourcesRequest{
			Consistency:        req.Consistency,
			ResourceObjectType: req.ResourceObjectType,
			Permission:         req.Permission,
			Subject:            req.Subject,
			Context:            req.Context,
			OptionalLimit:      r.pageSize,
			OptionalCursor:     cursor,
		}
		r.calls++
		stream, err := r.client.LookupResources(ctx, pageReq)
		if err != nil {
			return found, problems, err
		}
		n := 0
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return found, problems, err
			}
			n++
			id := resp.GetResourceObjectId()
			l := lookedUpOf(resp.GetPermissionship(), resp.GetPartialCaveatInfo())
			if prev, ok := found[id]; ok {
				if r.strict {
					problems = append(problems, fmt.Sprintf("page size %d: resource %s returned twice, as %v and %v", r.pageSize, id, prev, l))
				}
				l = mergeLookedUp(prev, l)
			}
			found[id] = l
			if r.pageSize > 0 && resp.GetAfterResultCursor() == nil {
				problems = append(problems, fmt.Sprintf("page size %d: resource %s has no cursor", r.pageSize, id))
			}
			cursor = resp.GetAfterResultCursor()
		}
		if r.pageSize > 0 && n > int(r.pageSize) {
			problems = append(problems, fmt.Sprintf("page size %d: page %d has %d results", r.pageSize, page+1, n))
		}
		if r.pageSize == 0 || n < int(r.pageSize) || cursor == nil {
			return found, problems, nil
		}
	}
}

// subjects runs req as resources does. The page size limits the concrete
// subjects of a page; the wildcard may come in addition, once.
func (r *pagedReader) subjects(ctx context.Context, req *v1.LookupSubjectsRequest) (subjectsFound, []string, error) {
	found := subjectsFound{concrete: map[string]lookedUp{}, excluded: map[string]lookedUp{}}
	var problems []string
	var cursor *v1.Cursor
	for page := 0; ; page++ {
		if page > len(found.concrete)+maxExtraPages {
			problems = append(problems, fmt.Sprintf("page size %d: still returning subjects after %d pages", r.pageSize, page))
			return found, problems, nil
		}
		pageReq := &v1.LookupSubjectsRequest{
			Consistency:             req.Consistency,
			Resource:                req.Resource,
			Permission:              req.Permission,
			SubjectObjectType:       req.SubjectObjectType,
			OptionalSubjectRelation: req.OptionalSubjectRelation,
			Context:                 req.Context,
			OptionalConcreteLimit:   r.pageSize,
			WildcardOption:          req.WildcardOption,
			OptionalCursor:          cursor,
		}
		r.calls++
		stream, err := r.client.LookupSubjects(ctx, pageReq)
		if err != nil {
			return found, problems, err
		}
		n := 0
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return found, problems, err
			}
			subject := resp.GetSubject()
			l := lookedUpOf(subject.GetPermissionship(), subject.GetPartialCaveatInfo())
			if subject.GetSubjectObjectId() == graph.Wildcard {
				if found.wildcard != nil && r.strict {
					problems = append(problems, fmt.Sprintf("page size %d: wildcard returned twice", r.pageSize))
				}
				excluded := map[string]lookedUp{}
				for _, ex := range resp.GetExcludedSubjects() {
					excluded[ex.GetSubjectObjectId()] = lookedUpOf(ex.GetPermissionship(), ex.GetPartialCaveatInfo())
				}
				if found.wildcard != nil {
					// A union of two wildcards excludes only the subjects
					// that both exclude.
					l = mergeLookedUp(*found.wildcard, l)
					for id, ex := range excluded {
						prev, ok := found.excluded[id]
						if !ok {
							delete(excluded, id)
							continue
						}
						excluded[id] = lookedUp{permissionship: kleeneAnd(prev.permissionship, ex.permissionship),
							missing: uniqueSorted(slices.Concat(prev.missing, ex.missing))}
					}
				}
				found.wildcard = &l
				found.excluded = excluded
				continue
			}
			n++
			id := subject.GetSubjectObjectId()
			if prev, ok := found.concrete[id]; ok {
				if r.strict {
					problems = append(problems, fmt.Sprintf("page size %d: subject %s returned twice, as %v and %v", r.pageSize, id, prev, l))
				}
				l = mergeLookedUp(prev, l)
			}
			found.concrete[id] = l
			if len(resp.GetExcludedSubjects()) > 0 {
				problems = append(problems, fmt.Sprintf("page size %d: concrete subject %s has excluded subjects", r.pageSize, id))
			}
			if r.pageSize > 0 && resp.GetAfterResultCursor() == nil {
				problems = append(problems, fmt.Sprintf("page size %d: subject %s has no cursor", r.pageSize, id))
			}
			cursor = resp.GetAfterResultCursor()
		}
		if r.pageSize > 0 && n > int(r.pageSize) {
			problems = append(problems, fmt.Sprintf("page size %d: page %d has %d concrete subjects", r.pageSize, page+1, n))
		}
		if r.pageSize == 0 || n < int(r.pageSize) || cursor == nil {
			return found, problems, nil
		}
	}
}
