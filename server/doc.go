// Package server serves SpiceDB's v1 gRPC API from Mandate's engine and
// graph: the schema, permissions and watch services, with gRPC health
// checking and server reflection, behind a preshared-key check.
package server
