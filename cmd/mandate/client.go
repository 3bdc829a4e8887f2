package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/identity"
)

// clientOptions are the connection flags of every command that calls a
// running server.
type clientOptions struct {
	addr         string
	presharedKey string
	agentID      string
	agentKeyFile string
	audience     string
}

func (o *clientOptions) bind(f *pflag.FlagSet) {
	f.StringVar(&o.addr, "addr", "127.0.0.1:50051", "address of the Mandate gRPC server")
	f.StringVar(&o.presharedKey, "preshared-key", "", "administrator's preshared key (MANDATE_PRESHARED_KEY)")
	f.StringVar(&o.agentID, "agent", "", "call as this agent, signing each call with --agent-key-file")
	f.StringVar(&o.agentKeyFile, "agent-key-file", "", "PEM file with the agent's Ed25519 private key")
	f.StringVar(&o.audience, "token-audience", identity.DefaultAudience, "audience to put in agent tokens")
}

// dialOptions returns the credentials of the call, without TLS: Mandate
// serves plaintext gRPC on loopback by default.
// NOTE: TLS for the client and the server is not built yet.
func (o *clientOptions) dialOptions() ([]grpc.DialOption, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	switch {
	case o.agentID != "":
		key, err := readPrivateKey(o.agentKeyFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(identity.TokenCredentials{
			AgentID: o.agentID, Key: key, Audience: o.audience, Insecure: true,
		}))
	case o.presharedKey != "":
		opts = append(opts, grpcutil.WithInsecureBearerToken(o.presharedKey))
	case os.Getenv("MANDATE_GRPC_PRESHARED_KEY") != "":
		// The variable mandate serve reads also works for its clients.
		opts = append(opts, grpcutil.WithInsecureBearerToken(os.Getenv("MANDATE_GRPC_PRESHARED_KEY")))
	default:
		return nil, fmt.Errorf("no credentials: pass --preshared-key (or MANDATE_PRESHARED_KEY), or --agent with --agent-key-file")
	}
	return opts, nil
}

func (o *clientOptions) dial() (*grpc.ClientConn, error) {
	opts, err := o.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(o.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.addr, err)
	}
	return conn, nil
}

func (o *clientOptions) agentClient() (mandatev1.AgentServiceClient, func(), error) {
	conn, err := o.dial()
	if err != nil {
		return nil, nil, err
	}
	return mandatev1.NewAgentServiceClient(conn), func() { conn.Close() }, nil
}

func (o *clientOptions) v1Client() (*authzed.Client, error) {
	opts, err := o.dialOptions()
	if err != nil {
		return nil, err
	}
	client, err := authzed.NewClient(o.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.addr, err)
	}
	return client, nil
}

// writePrivateKey stores key as PKCS #8 PEM, readable by its owner only.
func writePrivateKey(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	return f.Close()
}

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, fmt.Errorf("--agent-key-file is required with --agent")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("read private key %s: not a PEM \"PRIVATE KEY\" block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read private key %s: %w", path, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("read private key %s: not an Ed25519 key", path)
	}
	return key, nil
}
