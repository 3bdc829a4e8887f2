package review

import (
	"fmt"
	"strings"

	"github.com/mandate-iam/mandate/graph"
)

func cutPrefix(s, prefix string) (string, bool) { return strings.CutPrefix(s, prefix) }

func containsAny(s, chars string) bool { return strings.ContainsAny(s, chars) }

// parseKey reads "type:id#relation@type:id[#relation]".
func parseKey(s string) (graph.Key, error) {
	bad := fmt.Errorf("invalid right %q: use type:id#relation@type:id[#relation] or delegation:<id>", s)
	resource, subject, ok := strings.Cut(s, "@")
	if !ok {
		return graph.Key{}, bad
	}
	object, relation, ok := strings.Cut(resource, "#")
	if !ok {
		return graph.Key{}, bad
	}
	rt, rid, ok := strings.Cut(object, ":")
	if !ok || rt == "" || rid == "" || relation == "" {
		return graph.Key{}, bad
	}
	subjectObject, subjectRelation, _ := strings.Cut(subject, "#")
	st, sid, ok := strings.Cut(subjectObject, ":")
	if !ok || st == "" || sid == "" {
		return graph.Key{}, bad
	}
	return graph.Key{ResourceType: rt, ResourceID: rid, Relation: relation,
		Subject: graph.SubjectRef{Type: st, ID: sid, Relation: subjectRelation}}, nil
}
