package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/identity"
)

func newAgentCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Manage agent identities on a running server",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd.Flags())
		},
	}
	o.bind(cmd.PersistentFlags())
	cmd.AddCommand(
		newAgentCreateCommand(&o),
		newAgentSimpleCommand(&o, "get", "Show an agent's identity", func(ctx context.Context, c mandatev1.AgentServiceClient, id string) (proto.Message, error) {
			return c.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: id})
		}),
		newAgentSimpleCommand(&o, "reactivate", "Make a suspended agent active again", func(ctx context.Context, c mandatev1.AgentServiceClient, id string) (proto.Message, error) {
			return c.ReactivateAgent(ctx, &mandatev1.ReactivateAgentRequest{Id: id})
		}),
		newAgentSimpleCommand(&o, "decommission", "Remove an agent's relationships and refuse its key", func(ctx context.Context, c mandatev1.AgentServiceClient, id string) (proto.Message, error) {
			return c.DecommissionAgent(ctx, &mandatev1.DecommissionAgentRequest{Id: id})
		}),
		newAgentSuspendCommand(&o),
		newAgentUpdateCommand(&o),
		newAgentListCommand(&o),
		newAgentTokenCommand(),
	)
	return cmd
}

// printMessage writes a response to standard output as indented JSON.
func printMessage(m proto.Message) error {
	return writeMessage(os.Stdout, m)
}

// writeMessage writes a response to w as JSON indented by two spaces.
// protojson varies its whitespace from build to build on purpose, so
// json.Indent lays the output out again to keep it stable.
func writeMessage(w io.Writer, m proto.Message) error {
	out, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, out, "", "  "); err != nil {
		return err
	}
	indented.WriteByte('\n')
	_, err = w.Write(indented.Bytes())
	return err
}

func newAgentSimpleCommand(o *clientOptions, name, short string, call func(context.Context, mandatev1.AgentServiceClient, string) (proto.Message, error)) *cobra.Command {
	return &cobra.Command{
		Use:   name + " AGENT_ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, done, err := o.agentClient()
			if err != nil {
				return err
			}
			defer done()
			resp, err := call(cmd.Context(), client, args[0])
			if err != nil {
				return err
			}
			return writeMessage(cmd.OutOrStdout(), resp)
		},
	}
}

func newAgentCreateCommand(o *clientOptions) *cobra.Command {
	var req mandatev1.CreateAgentRequest
	var keyFile string
	cmd := &cobra.Command{
		Use:   "create AGENT_ID",
		Short: "Generate a key pair locally and register the agent with its public key",
		Long: `Generate an Ed25519 key pair on this machine, write the private key to
--key-file with mode 0600, and register the agent with its public key. The
server never sees the private key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Id = args[0]
			if keyFile == "" {
				keyFile = args[0] + ".key"
			}
			if _, err := os.Stat(keyFile); err == nil {
				return fmt.Errorf("key file %s already exists; choose another --key-file", keyFile)
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			req.PublicKey = pub
			client, done, err := o.agentClient()
			if err != nil {
				return err
			}
			defer done()
			resp, err := client.CreateAgent(cmd.Context(), &req)
			if err != nil {
				return err
			}
			if err := writePrivateKey(keyFile, priv); err != nil {
				return fmt.Errorf("agent %q was created, but %w", req.Id, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "private key written to %s (mode 0600)\n", keyFile)
			return writeMessage(cmd.OutOrStdout(), resp)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Owner, "owner", "", "id of the user who owns the agent (required)")
	f.StringVar(&req.Department, "department", "", "department id")
	f.StringVar(&req.Role, "role", "", "role id")
	f.StringVar(&req.Purpose, "purpose", "", "what the agent is for, in a sentence")
	f.StringVar(&req.RiskLevel, "risk-level", "low", "low, medium or high")
	f.StringVar(&keyFile, "key-file", "", "where to write the private key (default AGENT_ID.key)")
	return cmd
}

func newAgentSuspendCommand(o *clientOptions) *cobra.Command {
	var reason string
	cmd := newAgentSimpleCommand(o, "suspend", "Deny every check for the agent until it is reactivated",
		func(ctx context.Context, c mandatev1.AgentServiceClient, id string) (proto.Message, error) {
			return c.SuspendAgent(ctx, &mandatev1.SuspendAgentRequest{Id: id, Reason: reason})
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why the agent is suspended")
	return cmd
}

func newAgentUpdateCommand(o *clientOptions) *cobra.Command {
	var owner, department, role, purpose, risk string
	cmd := &cobra.Command{
		Use:   "update AGENT_ID",
		Short: "Change an agent's owner, department, role, purpose or risk level",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &mandatev1.UpdateAgentRequest{Id: args[0]}
			f := cmd.Flags()
			pick := func(name, value string) *string {
				if f.Changed(name) {
					return &value
				}
				return nil
			}
			req.Owner, req.Department, req.Role = pick("owner", owner), pick("department", department), pick("role", role)
			req.Purpose, req.RiskLevel = pick("purpose", purpose), pick("risk-level", risk)
			client, done, err := o.agentClient()
			if err != nil {
				return err
			}
			defer done()
			resp, err := client.UpdateAgent(cmd.Context(), req)
			if err != nil {
				return err
			}
			return writeMessage(cmd.OutOrStdout(), resp)
		},
	}
	f := cmd.Flags()
	f.StringVar(&owner, "owner", "", "new owner id")
	f.StringVar(&department, "department", "", "new department id (empty to clear)")
	f.StringVar(&role, "role", "", "new role id (empty to clear)")
	f.StringVar(&purpose, "purpose", "", "new purpose")
	f.StringVar(&risk, "risk-level", "", "low, medium or high")
	return cmd
}

func newAgentListCommand(o *clientOptions) *cobra.Command {
	var req mandatev1.ListAgentsRequest
	var state string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agents, optionally by department, owner or state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state != "" {
				v, ok := mandatev1.AgentState_value["AGENT_STATE_"+strings.ToUpper(state)]
				if !ok {
					return fmt.Errorf("invalid --state %q: use provisioned, active, suspended or decommissioned", state)
				}
				req.State = mandatev1.AgentState(v)
			}
			client, done, err := o.agentClient()
			if err != nil {
				return err
			}
			defer done()
			resp, err := client.ListAgents(cmd.Context(), &req)
			if err != nil {
				return err
			}
			return writeMessage(cmd.OutOrStdout(), resp)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Department, "department", "", "only agents of this department")
	f.StringVar(&req.Owner, "owner", "", "only agents of this owner")
	f.StringVar(&state, "state", "", "only agents in this state")
	return cmd
}

func newAgentTokenCommand() *cobra.Command {
	var keyFile, audience string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token AGENT_ID",
		Short: "Print a single-use token signed with the agent's key",
		Long: `Print an EdDSA token for one call by the agent, for clients such as zed
or grpcurl: send it as "authorization: Bearer TOKEN". The server accepts
each token once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl <= 0 || ttl > identity.MaxTokenLifetime {
				return fmt.Errorf("invalid --ttl %s: the server accepts lifetimes above 0 and up to %s", ttl, identity.MaxTokenLifetime)
			}
			if keyFile == "" {
				keyFile = args[0] + ".key"
			}
			key, err := readPrivateKey(keyFile)
			if err != nil {
				return err
			}
			token, err := identity.SignToken(key, args[0], audience, time.Now(), ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), token)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key-file", "", "PEM file with the agent's private key (default AGENT_ID.key)")
	f.StringVar(&audience, "audience", identity.DefaultAudience, "audience of the server")
	f.DurationVar(&ttl, "ttl", time.Minute, "token lifetime, at most 15m")
	return cmd
}
