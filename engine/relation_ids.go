package engine

import (
	"runtime"
	"sync"
	"weak"

	"github.com/mandate-iam/mandate/schema"
)

// relationIDs numbers the relations and permissions of one schema, so that
// the walker's memo keys a node by one integer made of the object's handle
// and the relation's number.
type relationIDs struct {
	byType map[string]map[string]numberedRelation
}

type numberedRelation struct {
	rel *schema.Relation
	id  uint32
}

func (r *relationIDs) lookup(objectType, name string) (numberedRelation, bool) {
	nr, ok := r.byType[objectType][name]
	return nr, ok
}

// relationIDCache maps a weak pointer to a compiled schema to its
// *relationIDs. An entry is deleted once its schema is garbage collected,
// so schemas that the server stopped using do not accumulate.
var relationIDCache sync.Map

// relationIDsOf returns the relation numbers of s, computing them on the
// first call for s.
func relationIDsOf(s *schema.Schema) *relationIDs {
	if s == nil {
		return &relationIDs{}
	}
	key := weak.Make(s)
	if v, ok := relationIDCache.Load(key); ok {
		return v.(*relationIDs)
	}
	ids := &relationIDs{byType: make(map[string]map[string]numberedRelation, len(s.Definitions))}
	var next uint32
	for name, def := range s.Definitions {
		relations := make(map[string]numberedRelation, len(def.Relations))
		for relName, rel := range def.Relations {
			next++
			relations[relName] = numberedRelation{rel: rel, id: next}
		}
		ids.byType[name] = relations
	}
	if v, loaded := relationIDCache.LoadOrStore(key, ids); loaded {
		return v.(*relationIDs)
	}
	runtime.AddCleanup(s, func(k weak.Pointer[schema.Schema]) { relationIDCache.Delete(k) }, key)
	return ids
}
