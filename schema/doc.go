// Package schema compiles SpiceDB schema text into Mandate's model.
//
// Parsing and type checking are done by SpiceDB's own compiler and type
// system, so a schema is accepted here exactly when SpiceDB v1.56 accepts
// it. The model keeps what the engine and the relationship validator need:
// each definition's relations with their allowed subject types, each
// permission as a rewrite tree, and each caveat compiled for evaluation.
// A Schema is immutable once compiled and safe for concurrent use.
package schema
