package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

func newReviewCommand() *cobra.Command {
	var o clientOptions
	var req mandatev1.ReviewAccessRequest
	var unusedFor time.Duration
	var revoke []string
	var revokeUnused bool
	cmd := &cobra.Command{
		Use:   "review agent:ID|department:ID",
		Short: "List an agent's or a department's rights unused for a period, and revoke them",
		Example: `  mandate review agent:report-bot --unused-for 720h
  mandate review agent:report-bot --unused-for 720h --revoke-unused
  mandate review department:finance --unused-for 2160h --revoke 'dataset:old#reader@department:finance#member'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, id, ok := strings.Cut(args[0], ":")
			switch {
			case ok && kind == "agent" && id != "":
				req.Agent = id
			case ok && kind == "department" && id != "":
				req.Department = id
			default:
				return fmt.Errorf("invalid review target %q: use agent:ID or department:ID", args[0])
			}
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			req.UnusedForSeconds = int64(unusedFor / time.Second)
			conn, err := o.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			c := mandatev1.NewReviewServiceClient(conn)
			resp, err := c.ReviewAccess(cmd.Context(), &req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%-8s %-6s %-20s %s\n", "STATUS", "USES", "LAST USED", "RIGHT")
			for _, r := range resp.GetRights() {
				status, last := "unused", "-"
				if r.GetUsed() {
					status = "used"
					last = r.GetLastUsed().AsTime().UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(out, "%-8s %-6d %-20s %s\n", status, r.GetUses(), last, r.GetId())
				if revokeUnused && !r.GetUsed() {
					revoke = append(revoke, r.GetId())
				}
			}
			for _, e := range resp.GetDelegationsIn() {
				fmt.Fprintf(out, "delegation %s: %v, scope %v\n", e.GetDelegation(), e.GetChain(), e.GetScope())
			}
			if len(revoke) == 0 {
				return nil
			}
			revoked, err := c.RevokeRights(cmd.Context(), &mandatev1.RevokeRightsRequest{Ids: revoke})
			if err != nil {
				return err
			}
			for _, id := range revoked.GetRevoked() {
				fmt.Fprintln(out, "revoked", id)
			}
			return nil
		},
	}
	o.bind(cmd.Flags())
	f := cmd.Flags()
	f.DurationVar(&unusedFor, "unused-for", 30*24*time.Hour, "a right with no granted decision in this period is unused")
	f.StringArrayVar(&revoke, "revoke", nil, "right id to revoke, repeatable")
	f.BoolVar(&revokeUnused, "revoke-unused", false, "revoke every unused right listed")
	return cmd
}
