package conformance

import (
	"context"
	"errors"
	"net"
	"testing"

	authzed "github.com/authzed/authzed-go/v1"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/server"
)

// startServer runs a Mandate server with an embedded bbolt store in a
// temporary directory, listening on a free port of 127.0.0.1, and returns
// an authzed-go client connected to it. The server and the client stop
// when the test ends.
func startServer(t *testing.T) *authzed.Client {
	t.Helper()
	store, err := graph.OpenBolt(t.TempDir())
	if err != nil {
		t.Fatalf("open bolt store: %v", err)
	}
	return startServerOn(t, store)
}

// startServerOn is startServer on the given store, which the server
// closes when the test ends.
func startServerOn(t *testing.T, store graph.Store) *authzed.Client {
	t.Helper()
	g, err := graph.Open(store, graph.Options{})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	srv, err := server.New(server.Config{Graph: g, InsecureNoAuth: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("create server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	client, err := authzed.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatalf("create client for %s: %v", lis.Addr(), err)
	}
	t.Cleanup(func() {
		if err := client.Close(); err != nil {
			t.Errorf("close client: %v", err)
		}
		cancel()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("close graph: %v", err)
		}
	})
	return client
}
