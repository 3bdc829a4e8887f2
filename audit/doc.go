// Package audit keeps the decision and event log: one record for every
// check, lookup, write, delegation and lifecycle event, appended in order,
// made durable before the decision is answered, and chained into a Merkle
// tree in the manner of Certificate Transparency (RFC 9162), whose signed
// tree heads let an auditor prove that no record was edited, removed or
// reordered.
package audit
