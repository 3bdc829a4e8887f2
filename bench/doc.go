// Package bench holds Go benchmarks of permission checks: the engine walking
// an in-memory graph, and CheckPermission over gRPC. BenchmarkSpiceDBScenarios
// runs SpiceDB's own benchmark scenarios on Mandate and on SpiceDB's
// embedded checker in the same process. The package has no code of its
// own; run it with
//
//	go test ./bench -bench . -benchmem -run '^$'
package bench
