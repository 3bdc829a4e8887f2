package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/server"
)

// writeLongAuditLog fills the closed, empty audit log in dir with n
// records, each with a signed tree head of its own, as n group commits of
// one record would leave it. It writes the file with bbolt in one
// transaction, because n real commits would take minutes of fsyncs.
func writeLongAuditLog(t *testing.T, dir string, n int) {
	t.Helper()
	pemData, err := os.ReadFile(filepath.Join(dir, "audit-signing.pem"))
	if err != nil {
		t.Fatalf("read signing key: %v", err)
	}
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("signing key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse signing key: %v", err)
	}
	key := parsed.(ed25519.PrivateKey)

	db, err := bolt.Open(filepath.Join(dir, "audit.db"), 0o600, nil)
	if err != nil {
		t.Fatalf("open audit.db: %v", err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		records, leaves, heads := tx.Bucket(auditRecordsBucket), tx.Bucket(auditLeavesBucket), tx.Bucket(auditHeadsBucket)
		var all []audit.Hash
		for i := range n {
			data := []byte(fmt.Sprintf(`{"seq":%d,"time":"2025-06-11T10:00:00Z","kind":"check","principal":"admin","result":"no_permission"}`, i))
			leaf := audit.LeafHash(data)
			all = append(all, leaf)
			if err := records.Put(auditKey(uint64(i)), data); err != nil {
				return err
			}
			if err := leaves.Put(auditKey(uint64(i)), leaf[:]); err != nil {
				return err
			}
		}
		// RootOf is linear, so computing every prefix's root from scratch
		// would be quadratic; a head every record needs the running roots.
		roots := prefixRoots(all)
		for i := range n {
			h := audit.TreeHead{Size: uint64(i + 1), Root: roots[i], Time: time.Unix(1749636000, 0).UTC()}
			h.Signature = ed25519.Sign(key, h.SignedBytes())
			b, err := json.Marshal(h)
			if err != nil {
				return err
			}
			if err := heads.Put(auditKey(h.Size), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write audit.db: %v", err)
	}
}

// prefixRoots returns the RFC 9162 root of every prefix of leaves, from
// one leaf to all, keeping the roots of the perfect subtrees that make up
// the tree so far.
func prefixRoots(leaves []audit.Hash) []audit.Hash {
	var stack []audit.Hash
	roots := make([]audit.Hash, 0, len(leaves))
	for i, leaf := range leaves {
		stack = append(stack, leaf)
		for size := i; size&1 == 1; size >>= 1 {
			n := len(stack)
			stack = append(stack[:n-2], auditNodeHash(stack[n-2], stack[n-1]))
		}
		root := stack[len(stack)-1]
		for j := len(stack) - 2; j >= 0; j-- {
			root = auditNodeHash(stack[j], root)
		}
		roots = append(roots, root)
	}
	return roots
}

// auditNodeHash is the RFC 9162 interior node hash: SHA-256 over 0x01 and
// the two children.
func auditNodeHash(left, right audit.Hash) audit.Hash {
	return audit.Hash(sha256.Sum256(append(append([]byte{1}, left[:]...), right[:]...)))
}

// TestAuditVerifyManyHeads verifies a log with more signed tree heads than
// fit in gRPC's default 4 MiB message: about 24,000 at roughly 175 bytes
// each.
func TestAuditVerifyManyHeads(t *testing.T) {
	if testing.Short() {
		t.Skip("signs 30,000 tree heads; skipped with -short")
	}
	clearClientEnv(t)
	const n = 30000
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatalf("open audit log: %v", err)
	}
	l.Close()
	writeLongAuditLog(t, dir, n)

	l, err = audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatalf("reopen audit log: %v", err)
	}
	g, err := graph.Open(graph.NewMemoryStore(), graph.Options{})
	if err != nil {
		t.Fatalf("open graph: %v", err)
	}
	srv, err := server.New(server.Config{Graph: g, PresharedKey: cliPresharedKey, Audit: l, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		<-served
		l.Close()
		g.Close()
	})

	out, stderr, err := runCLI(t, "audit", "verify", "--addr", lis.Addr().String(), "--preshared-key", cliPresharedKey)
	if err != nil {
		t.Fatalf("mandate audit verify: %v\n%s%s", err, out, stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("records: %d\n", n),
		fmt.Sprintf("tree heads: %d\n", n),
		"verified: every record matches the signed tree heads",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output does not contain %q:\n%s", want, out)
		}
	}
}
