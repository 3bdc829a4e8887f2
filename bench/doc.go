// Package bench holds Go benchmarks of permission checks: the engine walking
// an in-memory graph, and CheckPermission over gRPC. It has no code of its
// own; run it with
//
//	go test ./bench -bench . -benchmem -run '^$'
package bench
