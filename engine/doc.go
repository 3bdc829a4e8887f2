// Package engine answers permission questions by walking the relationship
// graph.
//
// The walker does no I/O and reads no clock: it is given a compiled schema,
// a graph.Snapshot (which fixes the revision and the time used for
// expiration) and the request's caveat context, so every answer is a pure
// function of its inputs.
package engine
