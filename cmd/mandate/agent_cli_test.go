package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
	"github.com/mandate-iam/mandate/server"
)

// The CLI tests run the agent, relationship and check commands in this
// process against a real server on a loopback port, the way the README's
// walkthrough runs them from a shell.

const cliPresharedKey = "cli-test-key"

// startAgentCLIServer starts a server with the default schema on an
// in-memory store and returns its address. It stops when the test ends.
func startAgentCLIServer(t *testing.T) string {
	t.Helper()
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	if _, err := server.InstallDefaultSchema(context.Background(), g); err != nil {
		g.Close()
		t.Fatalf("install default schema: %v", err)
	}

	srv, err := server.New(server.Config{Graph: g, PresharedKey: cliPresharedKey, Logger: zerolog.Nop()})
	if err != nil {
		g.Close()
		t.Fatalf("new server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		t.Fatalf("listen: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	})
	return lis.Addr().String()
}

// clearClientEnv unsets the variables that bindEnv would read into the
// client flags, so the caller's shell cannot change what a test sends.
func clearClientEnv(t *testing.T) {
	t.Helper()
	for _, name := range []string{"MANDATE_ADDR", "MANDATE_PRESHARED_KEY", "MANDATE_AGENT", "MANDATE_AGENT_KEY_FILE", "MANDATE_TOKEN_AUDIENCE"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
}

// runCLI runs one mandate command line and returns what it wrote to
// standard output and standard error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return stdout.String(), stderr.String(), err
}

// mustRunCLI is runCLI for a command that must succeed.
func mustRunCLI(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("mandate %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// agentJSON is the part of `mandate agent` output that the tests read.
type agentJSON struct {
	Agent struct {
		ID          string `json:"id"`
		Owner       string `json:"owner"`
		Department  string `json:"department"`
		Role        string `json:"role"`
		RiskLevel   string `json:"riskLevel"`
		State       string `json:"state"`
		StateReason string `json:"stateReason"`
	} `json:"agent"`
}

func parseAgentJSON(t *testing.T, out string) agentJSON {
	t.Helper()
	var a agentJSON
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("parse agent output %q: %v", out, err)
	}
	return a
}

func TestAgentCLIWalkthrough(t *testing.T) {
	clearClientEnv(t)
	addr := startAgentCLIServer(t)
	dir := t.TempDir()
	admin := []string{"--addr", addr, "--preshared-key", cliPresharedKey}
	botKey := filepath.Join(dir, "report-bot.key")
	asBot := []string{"--addr", addr, "--agent", "report-bot", "--agent-key-file", botKey}

	stdout, stderr, err := runCLI(t, append([]string{"agent", "create", "report-bot",
		"--owner", "alice", "--department", "finance", "--role", "analyst",
		"--purpose", "Builds the monthly finance report", "--key-file", botKey}, admin...)...)
	if err != nil {
		t.Fatalf("agent create: %v\nstderr: %s", err, stderr)
	}
	created := parseAgentJSON(t, stdout)
	if created.Agent.ID != "report-bot" || created.Agent.Owner != "alice" || created.Agent.Department != "finance" ||
		created.Agent.Role != "analyst" || created.Agent.RiskLevel != "low" || created.Agent.State != "AGENT_STATE_ACTIVE" {
		t.Errorf("agent create output: got %+v", created.Agent)
	}
	if !strings.Contains(stdout, "\n  \"agent\": {\n    \"id\": \"report-bot\",\n") {
		t.Errorf("agent create output is not JSON indented by two spaces:\n%s", stdout)
	}
	if want := "private key written to " + botKey + " (mode 0600)\n"; stderr != want {
		t.Errorf("agent create stderr: got %q, want %q", stderr, want)
	}
	info, err := os.Stat(botKey)
	if err != nil {
		t.Fatalf("stat key file: %v", err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode: got %v, want 0600", mode)
	}

	mustRunCLI(t, append([]string{"agent", "create", "etl-bot", "--owner", "bob", "--department", "engineering",
		"--key-file", filepath.Join(dir, "etl-bot.key")}, admin...)...)
	if out := mustRunCLI(t, append([]string{"relationship", "touch", "dataset:payroll#reader@department:finance#member"}, admin...)...); !strings.HasPrefix(out, "written at ") {
		t.Errorf("relationship touch output: got %q, want \"written at <token>\"", out)
	}

	checkSelf := append([]string{"check", "dataset:payroll", "read", "agent:report-bot"}, asBot...)
	if out := mustRunCLI(t, checkSelf...); out != "PERMISSIONSHIP_HAS_PERMISSION\n" {
		t.Errorf("check of itself: got %q, want PERMISSIONSHIP_HAS_PERMISSION", out)
	}
	_, _, err = runCLI(t, append([]string{"check", "dataset:payroll", "read", "agent:etl-bot"}, asBot...)...)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "agent:etl-bot") {
		t.Errorf("check of another agent: got %v, want PermissionDenied naming agent:etl-bot", err)
	}

	suspended := parseAgentJSON(t, mustRunCLI(t, append([]string{"agent", "suspend", "report-bot", "--reason", "unexpected exports"}, admin...)...))
	if suspended.Agent.State != "AGENT_STATE_SUSPENDED" || suspended.Agent.StateReason != "unexpected exports" {
		t.Errorf("agent suspend output: got %+v", suspended.Agent)
	}
	if out := mustRunCLI(t, checkSelf...); out != "PERMISSIONSHIP_NO_PERMISSION\n" {
		t.Errorf("check of itself while suspended: got %q, want PERMISSIONSHIP_NO_PERMISSION", out)
	}
	// The suspended agent may still read its own record.
	if got := parseAgentJSON(t, mustRunCLI(t, append([]string{"agent", "get", "report-bot"}, asBot...)...)); got.Agent.State != "AGENT_STATE_SUSPENDED" {
		t.Errorf("agent get as the suspended agent: got state %s", got.Agent.State)
	}

	mustRunCLI(t, append([]string{"agent", "reactivate", "report-bot"}, admin...)...)
	if out := mustRunCLI(t, checkSelf...); out != "PERMISSIONSHIP_HAS_PERMISSION\n" {
		t.Errorf("check of itself after reactivation: got %q, want PERMISSIONSHIP_HAS_PERMISSION", out)
	}

	listed := mustRunCLI(t, append([]string{"agent", "list", "--department", "finance"}, admin...)...)
	if !strings.Contains(listed, `"id": "report-bot"`) || strings.Contains(listed, "etl-bot") {
		t.Errorf("agent list --department finance: got\n%s", listed)
	}

	mustRunCLI(t, append([]string{"agent", "decommission", "report-bot"}, admin...)...)
	_, _, err = runCLI(t, checkSelf...)
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "decommissioned") {
		t.Errorf("check with a decommissioned agent's key: got %v, want Unauthenticated", err)
	}
}

func TestAgentCLITokenVerifies(t *testing.T) {
	clearClientEnv(t)
	addr := startAgentCLIServer(t)
	keyFile := filepath.Join(t.TempDir(), "bot.key")
	mustRunCLI(t, "agent", "create", "bot", "--owner", "alice", "--key-file", keyFile,
		"--addr", addr, "--preshared-key", cliPresharedKey)
	key, err := readPrivateKey(keyFile)
	if err != nil {
		t.Fatalf("read key file: %v", err)
	}
	token := strings.TrimSpace(mustRunCLI(t, "agent", "token", "bot", "--key-file", keyFile))
	agent := &identity.Agent{ID: "bot", State: identity.StateActive, PublicKey: key.Public().(ed25519.PublicKey)}
	v := identity.NewVerifier("", time.Now)
	if _, err := v.Verify(token, func(string) (*identity.Agent, error) { return agent, nil }); err != nil {
		t.Errorf("Verify of the printed token: %v", err)
	}

	// The command rejects a lifetime that the server would reject.
	for _, ttl := range []string{"16m", "0s", "-1m"} {
		out, _, err := runCLI(t, "agent", "token", "bot", "--key-file", keyFile, "--ttl", ttl)
		if err == nil || !strings.Contains(err.Error(), "invalid --ttl") {
			t.Errorf("agent token --ttl %s: got output %q and error %v, want an invalid --ttl error", ttl, out, err)
		}
	}
	if _, _, err := runCLI(t, "agent", "token", "bot", "--key-file", keyFile, "--ttl", "15m"); err != nil {
		t.Errorf("agent token --ttl 15m: %v", err)
	}
}

func TestAgentCLIErrors(t *testing.T) {
	clearClientEnv(t)
	addr := startAgentCLIServer(t)
	dir := t.TempDir()
	admin := []string{"--addr", addr, "--preshared-key", cliPresharedKey}

	// A rejected agent leaves no key file behind.
	keyFile := filepath.Join(dir, "bad.key")
	_, _, err := runCLI(t, append([]string{"agent", "create", "bad bot", "--owner", "alice", "--key-file", keyFile}, admin...)...)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `"bad bot"`) {
		t.Errorf("agent create of an invalid id: got %v, want InvalidArgument naming \"bad bot\"", err)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("key file after a rejected create: got stat error %v, want not exist", err)
	}

	// An existing key file is never overwritten.
	taken := filepath.Join(dir, "taken.key")
	if err := os.WriteFile(taken, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, append([]string{"agent", "create", "bot", "--owner", "alice", "--key-file", taken}, admin...)...)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("agent create onto an existing key file: got %v, want an error", err)
	}
	if data, _ := os.ReadFile(taken); string(data) != "keep me" {
		t.Errorf("existing key file was changed to %q", data)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no credentials", []string{"check", "dataset:x", "read", "agent:bot", "--addr", addr}, "no credentials"},
		{"agent without key file", []string{"check", "dataset:x", "read", "agent:bot", "--addr", addr, "--agent", "bot"}, "--agent-key-file is required"},
		{"unknown state", append([]string{"agent", "list", "--state", "sleeping"}, admin...), `invalid --state "sleeping"`},
		{"invalid context", append([]string{"check", "dataset:x", "read", "agent:bot", "--context", "{"}, admin...), "invalid --context"},
		{"invalid relationship", append([]string{"relationship", "touch", "dataset:x#reader"}, admin...), `invalid relationship "dataset:x#reader"`},
		{"wrong preshared key", []string{"agent", "list", "--addr", addr, "--preshared-key", "wrong"}, "invalid preshared key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("mandate %s: got %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
			}
		})
	}
}
