package audit

import (
	"encoding/json"
	"time"
)

// Kinds of records.
const (
	KindCheck           = "check"
	KindLookupResources = "lookup_resources"
	KindLookupSubjects  = "lookup_subjects"
	KindWrite           = "write"
	KindSchema          = "schema"
	KindDelegation      = "delegation"
	KindLifecycle       = "lifecycle"
	KindReview          = "review"
	// KindRefused is a call refused because its caller failed
	// authentication or lacked the right to make it.
	KindRefused = "refused"
)

// Record is one decision or event.
type Record struct {
	// Seq is the record's index in the log, from 0; Append assigns it.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Principal is the authenticated caller: "admin" or "agent:<id>".
	Principal string `json:"principal"`
	// Actors is the chain of custody, from the root delegator to the
	// acting agent, for a decision made through a delegation.
	Actors     []string `json:"actors,omitempty"`
	Delegation string   `json:"delegation,omitempty"`
	Resource   string   `json:"resource,omitempty"`
	Permission string   `json:"permission,omitempty"`
	Subject    string   `json:"subject,omitempty"`
	// Result is the decision: has_permission, no_permission,
	// conditional_permission, or for events "ok" or the error code.
	Result string `json:"result"`
	// Why is the path that granted access, or what denied it.
	Why        string `json:"why,omitempty"`
	Revision   uint64 `json:"revision,omitempty"`
	SchemaHash string `json:"schema_hash,omitempty"`
	Purpose    string `json:"purpose,omitempty"`
	RequestID  string `json:"request_id,omitempty"`
	// Detail holds event-specific fields, such as the relationships a
	// write changed.
	Detail map[string]string `json:"detail,omitempty"`
}

// encode returns the canonical bytes of a record: its leaf data.
func (r *Record) encode() ([]byte, error) {
	r.Time = r.Time.UTC()
	return json.Marshal(r)
}
