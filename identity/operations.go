package identity

import (
	"fmt"

	"github.com/mandate-iam/mandate/graph"
)

// Operational states administrators may declare; caveats read the current
// one as operational_state.
const (
	OperationsNormal      = "normal"
	OperationsIncident    = "incident"
	OperationsMaintenance = "maintenance"
)

const (
	operationsKind = "platform"
	operationsID   = "operational_state"
)

// OperationalState returns the declared state at the snapshot's revision,
// "normal" when none was ever set.
func OperationalState(snap graph.Snapshot) string {
	if data := snap.Record(operationsKind, operationsID); data != nil {
		return string(data)
	}
	return OperationsNormal
}

// SetOperationalState declares a new state in tx.
func SetOperationalState(tx *graph.Tx, state string) error {
	switch state {
	case OperationsNormal, OperationsIncident, OperationsMaintenance:
	default:
		return fmt.Errorf("%w: invalid operational state %q: use normal, incident or maintenance", ErrInvalid, state)
	}
	tx.PutRecord(operationsKind, operationsID, []byte(state))
	return nil
}
