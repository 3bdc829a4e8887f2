// Package identity keeps agent identities: each agent's public key, owner,
// department, role, purpose, risk level and lifecycle state.
//
// An identity is a record in the graph, written in the same transaction as
// the relationships that describe it (agent:<id>#owner@user:<owner> and so
// on), so the graph decides on it like on any other relationship. The
// package also verifies the short-lived tokens that agents sign with their
// own keys.
package identity
