package main

import (
	"encoding/json"
	"fmt"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"
)

func newCheckCommand() *cobra.Command {
	var o clientOptions
	var caveatContext string
	cmd := &cobra.Command{
		Use:   "check RESOURCE PERMISSION SUBJECT",
		Short: "Ask a running server whether SUBJECT has PERMISSION on RESOURCE",
		Example: `  mandate check dataset:payroll read agent:report-bot \
    --agent report-bot --agent-key-file report-bot.key`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			resource, err := tuple.ParseONR(args[0] + "#" + args[1])
			if err != nil {
				return fmt.Errorf("invalid resource %q: use type:id", args[0])
			}
			subject, err := tuple.ParseSubjectONR(args[2])
			if err != nil {
				return fmt.Errorf("invalid subject %q: use type:id or type:id#relation", args[2])
			}
			req := &v1.CheckPermissionRequest{
				Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
				Resource:    &v1.ObjectReference{ObjectType: resource.ObjectType, ObjectId: resource.ObjectID},
				Permission:  args[1],
				Subject: &v1.SubjectReference{
					Object:           &v1.ObjectReference{ObjectType: subject.ObjectType, ObjectId: subject.ObjectID},
					OptionalRelation: stripEllipsis(subject.Relation),
				},
			}
			if caveatContext != "" {
				var m map[string]any
				if err := json.Unmarshal([]byte(caveatContext), &m); err != nil {
					return fmt.Errorf("invalid --context %q: %w", caveatContext, err)
				}
				if req.Context, err = structpb.NewStruct(m); err != nil {
					return fmt.Errorf("invalid --context %q: %w", caveatContext, err)
				}
			}
			client, err := o.v1Client()
			if err != nil {
				return err
			}
			defer client.Close()
			resp, err := client.CheckPermission(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.GetPermissionship().String())
			if missing := resp.GetPartialCaveatInfo().GetMissingRequiredContext(); len(missing) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "missing context:", missing)
			}
			return nil
		},
	}
	o.bind(cmd.Flags())
	cmd.Flags().StringVar(&caveatContext, "context", "", "caveat context as a JSON object")
	return cmd
}

func stripEllipsis(relation string) string {
	if relation == tuple.Ellipsis {
		return ""
	}
	return relation
}
