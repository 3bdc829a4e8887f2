package main

import (
	"fmt"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/spf13/cobra"
)

func newRelationshipCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "relationship",
		Short: "Write or delete relationships on a running server",
	}
	o.bind(cmd.PersistentFlags())
	ops := []struct {
		name  string
		op    v1.RelationshipUpdate_Operation
		short string
	}{
		{"create", v1.RelationshipUpdate_OPERATION_CREATE, "Create relationships; fail if one exists"},
		{"touch", v1.RelationshipUpdate_OPERATION_TOUCH, "Create relationships or replace their caveat and expiration"},
		{"delete", v1.RelationshipUpdate_OPERATION_DELETE, "Delete relationships"},
	}
	for _, op := range ops {
		cmd.AddCommand(&cobra.Command{
			Use:     op.name + " RELATIONSHIP...",
			Short:   op.short + ", in one transaction",
			Example: "  mandate relationship " + op.name + " 'dataset:payroll#reader@department:finance#member'",
			Args:    cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := bindEnv(cmd.Flags()); err != nil {
					return err
				}
				req := &v1.WriteRelationshipsRequest{}
				for _, arg := range args {
					rel, err := tuple.ParseV1Rel(arg)
					if err != nil {
						return fmt.Errorf("invalid relationship %q: %w", arg, err)
					}
					req.Updates = append(req.Updates, &v1.RelationshipUpdate{Operation: op.op, Relationship: rel})
				}
				client, err := o.v1Client()
				if err != nil {
					return err
				}
				defer client.Close()
				resp, err := client.WriteRelationships(cmd.Context(), req)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "written at", resp.GetWrittenAt().GetToken())
				return nil
			},
		})
	}
	return cmd
}
