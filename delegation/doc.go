// Package delegation keeps delegations: grants by which a delegator (a
// user, an agent, or the delegate of another delegation) hands part of its
// access to a delegate agent, within a scope, until an expiry, with limits
// on how much further it may be handed on.
//
// A delegation is a graph record plus two relationships,
// delegation:<id>#delegator@<delegator> and delegation:<id>#delegate@agent:<id>,
// written in one transaction. Checks through a delegation are answered by
// the engine as the intersection along the chain (engine.Chain); this
// package enforces the creation rules and resolves chains from records at
// the revision being read, so a revoked or expired link takes effect on
// the next request.
package delegation
