package server

import (
	"context"
	"fmt"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/schema"
)

// InstallDefaultSchema writes Mandate's Agent IAM schema when the graph has
// no schema yet, and reports whether it did.
func InstallDefaultSchema(ctx context.Context, g *graph.Graph) (bool, error) {
	if _, err := schema.Compile(ctx, schema.AgentIAM); err != nil {
		return false, fmt.Errorf("install default schema: %w", err)
	}
	installed := false
	_, err := g.Update(ctx, func(tx *graph.Tx) error {
		if tx.Snapshot().SchemaText != "" {
			return nil
		}
		tx.SetSchema(schema.AgentIAM)
		installed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("install default schema: %w", err)
	}
	return installed, nil
}
