package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

func newDelegationCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "delegation",
		Short: "Delegate, revoke and inspect delegations on a running server",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd.Flags())
		},
	}
	o.bind(cmd.PersistentFlags())
	client := func() (mandatev1.DelegationServiceClient, func(), error) {
		conn, err := o.dial()
		if err != nil {
			return nil, nil, err
		}
		return mandatev1.NewDelegationServiceClient(conn), func() { conn.Close() }, nil
	}

	var req mandatev1.DelegateRequest
	var scopes []string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create DELEGATOR DELEGATE_AGENT",
		Short: "Hand part of DELEGATOR's access to an agent",
		Long: `Hand part of DELEGATOR's access (user:<id>, agent:<id>, or delegation:<id>
to re-delegate) to DELEGATE_AGENT. Each --scope is PERMS@RESOURCE, where
PERMS is a comma-separated list and RESOURCE is type:id, type:* or
type:id/... for everything inside a container.`,
		Example: `  mandate delegation create agent:planner researcher \
    --scope read@folder:q3/... --scope read,write@dataset:notes --ttl 1h --max-depth 1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Delegator, req.Delegate = args[0], args[1]
			for _, s := range scopes {
				perms, resource, ok := strings.Cut(s, "@")
				if !ok || perms == "" || resource == "" {
					return fmt.Errorf("invalid --scope %q: use PERMS@RESOURCE, such as read,write@dataset:payroll", s)
				}
				req.Scope = append(req.Scope, &mandatev1.Scope{Permissions: strings.Split(perms, ","), Resource: resource})
			}
			if ttl < 0 {
				return fmt.Errorf("invalid --ttl %s: use a positive duration, or 0 to inherit the parent's expiry", ttl)
			}
			if ttl > 0 {
				req.ExpiresAt = timestamppb.New(time.Now().Add(ttl))
			}
			c, done, err := client()
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Delegate(cmd.Context(), &req)
			if err != nil {
				return err
			}
			return printMessage(resp)
		},
	}
	f := create.Flags()
	f.StringVar(&req.Id, "id", "", "delegation id (generated when empty)")
	f.StringArrayVar(&scopes, "scope", nil, "PERMS@RESOURCE granted, repeatable")
	f.DurationVar(&ttl, "ttl", 0, "lifetime; 0 inherits the parent's expiry, or never expires at the root")
	f.Int32Var(&req.MaxDepth, "max-depth", 0, "further hops the delegate may re-delegate (0: none)")
	f.Int32Var(&req.MaxFanout, "max-fanout", 0, "child delegations allowed (0: inherit, 16 at the root)")

	revoke := &cobra.Command{
		Use:   "revoke DELEGATION_ID",
		Short: "Revoke a delegation and everything delegated below it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := client()
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Revoke(cmd.Context(), &mandatev1.RevokeRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return printMessage(resp)
		},
	}
	show := &cobra.Command{
		Use:   "show DELEGATION_ID",
		Short: "Show a delegation and its chain from the root delegator",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := client()
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.GetDelegation(cmd.Context(), &mandatev1.GetDelegationRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return printMessage(resp)
		},
	}
	var list mandatev1.ListDelegationsRequest
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List delegations by delegator or delegate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := client()
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.ListDelegations(cmd.Context(), &list)
			if err != nil {
				return err
			}
			return printMessage(resp)
		},
	}
	listCmd.Flags().StringVar(&list.Delegator, "delegator", "", "only delegations from this principal, such as agent:planner")
	listCmd.Flags().StringVar(&list.Delegate, "delegate", "", "only delegations to this agent id")
	listCmd.Flags().BoolVar(&list.IncludeRevoked, "include-revoked", false, "also list revoked delegations")

	explain := &cobra.Command{
		Use:   "explain DELEGATION_ID RESOURCE PERMISSION",
		Short: "Check through a delegation and show the chain and what limited it",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := client()
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.ExplainCheck(cmd.Context(), &mandatev1.ExplainCheckRequest{
				Delegation: args[0], Resource: args[1], Permission: args[2],
			})
			if err != nil {
				return err
			}
			return printMessage(resp)
		},
	}
	cmd.AddCommand(create, revoke, show, listCmd, explain)
	return cmd
}
