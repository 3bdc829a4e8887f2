// Package graph stores relationships at revisions.
//
// A Graph keeps every relationship in an in-memory index that can be read
// at any revision still inside the retention window, and commits each write
// transaction to a durable Store before the index shows it. Readers take a
// Snapshot, which is a fixed revision plus the time used to hide expired
// relationships; a Snapshot never changes under its reader.
//
// Writes are serialized by the Graph: a transaction reads the head
// revision, buffers its changes, and either commits all of them under one
// new revision or none.
package graph
