// Package conformance holds tests that compare Mandate's check results
// with SpiceDB's: the validation files that SpiceDB ships as its own
// integration test configs, run against a real Mandate gRPC server, and a
// differential test against SpiceDB's in-process checker.
//
// The package has no code outside its tests.
package conformance
