package graph

import (
	"fmt"
	"strings"
	"time"
)

// Revision is the version of the whole graph after a write transaction.
// Revisions start at 1 for the first write and grow by one per write.
type Revision uint64

// Ellipsis is the subject relation meaning the subject object itself,
// written "..." in SpiceDB's notation.
const Ellipsis = ""

// Wildcard is the subject id that stands for every object of its type.
const Wildcard = "*"

// ObjectRef names one object.
type ObjectRef struct {
	Type string
	ID   string
}

// SubjectRef names a subject: an object, or a set of objects reached
// through one of its relations (for example group:eng#member).
type SubjectRef struct {
	Type     string
	ID       string
	Relation string
}

// Object returns the subject's object without its relation.
func (s SubjectRef) Object() ObjectRef { return ObjectRef{Type: s.Type, ID: s.ID} }

func (s SubjectRef) String() string {
	if s.Relation == Ellipsis {
		return s.Type + ":" + s.ID
	}
	return s.Type + ":" + s.ID + "#" + s.Relation
}

// Key is the identity of a relationship: two relationships with equal keys
// are the same relationship, whatever their caveat or expiration.
type Key struct {
	ResourceType string
	ResourceID   string
	Relation     string
	Subject      SubjectRef
}

func (k Key) String() string {
	return k.ResourceType + ":" + k.ResourceID + "#" + k.Relation + "@" + k.Subject.String()
}

// Relationship is a stored edge of the graph with its optional caveat and
// expiration.
type Relationship struct {
	Key
	// Caveat is the name of the caveat that conditions the relationship,
	// or "" when it is unconditional.
	Caveat string
	// CaveatContext holds the caveat parameters stored with the
	// relationship, as JSON-compatible values.
	CaveatContext map[string]any
	// Expiration is when the relationship stops counting; zero means never.
	Expiration time.Time
}

// ExpiredAt reports whether the relationship no longer counts at t.
func (r *Relationship) ExpiredAt(t time.Time) bool {
	return !r.Expiration.IsZero() && !t.Before(r.Expiration)
}

func (r *Relationship) String() string {
	var b strings.Builder
	b.WriteString(r.Key.String())
	if r.Caveat != "" {
		fmt.Fprintf(&b, "[%s]", r.Caveat)
	}
	if !r.Expiration.IsZero() {
		fmt.Fprintf(&b, "[expiration:%s]", r.Expiration.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// Filter selects relationships. Empty fields match anything.
type Filter struct {
	ResourceType     string
	ResourceID       string
	ResourceIDPrefix string
	Relation         string
	Subject          *SubjectFilter
}

// SubjectFilter selects relationships by their subject.
type SubjectFilter struct {
	Type string
	ID   string
	// Relation, when not nil, must equal the subject relation; a pointer to
	// Ellipsis selects subjects without a relation.
	Relation *string
}

// Matches reports whether the relationship key passes the filter.
func (f *Filter) Matches(k Key) bool {
	if f.ResourceType != "" && f.ResourceType != k.ResourceType {
		return false
	}
	if f.ResourceID != "" && f.ResourceID != k.ResourceID {
		return false
	}
	if f.ResourceIDPrefix != "" && !strings.HasPrefix(k.ResourceID, f.ResourceIDPrefix) {
		return false
	}
	if f.Relation != "" && f.Relation != k.Relation {
		return false
	}
	if sf := f.Subject; sf != nil {
		if sf.Type != "" && sf.Type != k.Subject.Type {
			return false
		}
		if sf.ID != "" && sf.ID != k.Subject.ID {
			return false
		}
		if sf.Relation != nil && *sf.Relation != k.Subject.Relation {
			return false
		}
	}
	return true
}
