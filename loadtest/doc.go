// Package loadtest drives a server of SpiceDB's v1 gRPC API, Mandate or
// SpiceDB itself, with a mix of CheckPermission, CheckBulkPermissions,
// LookupResources and WriteRelationships calls over a generated data set.
// It reports throughput, latency percentiles, errors by gRPC code and
// wrong results.
//
// A scenario (agents or docs) is a schema plus a data set generated from a
// seed to a requested size. Part of every data set is built so that the
// generator stores the expected results, and the load test compares each
// such result with the server's and counts mismatches, so speed never hides
// wrong results. `mandate loadtest` is the command line front end, and
// loadtest/compare.sh runs it against Mandate and SpiceDB side by side.
package loadtest
