package audit

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openLog(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- l.Append(context.Background(), &Record{
				Time: time.Unix(int64(i), 0), Kind: KindCheck, Principal: "admin",
				Resource: fmt.Sprintf("dataset:d%d", i), Permission: "read", Subject: "agent:a", Result: "has_permission",
			})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
}

func TestLogAppendReopenVerify(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	appendN(t, l, 300)
	head := l.Head()
	if head.Size != 300 {
		t.Fatalf("head size %d, want 300", head.Size)
	}
	pub := l.PublicKey()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, dir)
	defer l.Close()
	if got := l.Head(); got.Size != 300 || got.Root != head.Root {
		t.Fatalf("reopened head %d/%x, want 300/%x", got.Size, got.Root, head.Root)
	}
	report, err := VerifyLog(l, pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Problems) != 0 || report.Records != 300 {
		t.Fatalf("verify: %d records, problems %v", report.Records, report.Problems)
	}
	seen := map[uint64]bool{}
	if err := l.Scan(Query{}, func(r *Record) bool { seen[r.Seq] = true; return true }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 300 {
		t.Fatalf("scan saw %d records, want 300", len(seen))
	}
}

// tamper opens the closed log's file directly and changes it with fn.
func tamper(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "audit.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name string
		edit func(tx *bolt.Tx) error
		want string
	}{
		{"edited record", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			v := strings.Replace(string(b.Get(seqKey(7))), "has_permission", "no_permission", 1)
			return b.Put(seqKey(7), []byte(v))
		}, "edited"},
		{"edited record and leaf", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			v := strings.Replace(string(b.Get(seqKey(7))), "has_permission", "no_permission", 1)
			leaf := LeafHash([]byte(v))
			if err := tx.Bucket(bucketLeaves).Put(seqKey(7), leaf[:]); err != nil {
				return err
			}
			return b.Put(seqKey(7), []byte(v))
		}, "does not match the records"},
		{"deleted record", func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketLeaves).Delete(seqKey(20)); err != nil {
				return err
			}
			return tx.Bucket(bucketRecords).Delete(seqKey(20))
		}, "removed"},
		{"deleted tail", func(tx *bolt.Tx) error {
			for i := uint64(40); i < 50; i++ {
				tx.Bucket(bucketRecords).Delete(seqKey(i))
				tx.Bucket(bucketLeaves).Delete(seqKey(i))
			}
			return nil
		}, "removed"},
		{"swapped records", func(tx *bolt.Tx) error {
			b, lb := tx.Bucket(bucketRecords), tx.Bucket(bucketLeaves)
			a, c := append([]byte(nil), b.Get(seqKey(3))...), append([]byte(nil), b.Get(seqKey(4))...)
			la, lc := append([]byte(nil), lb.Get(seqKey(3))...), append([]byte(nil), lb.Get(seqKey(4))...)
			b.Put(seqKey(3), c)
			b.Put(seqKey(4), a)
			lb.Put(seqKey(3), lc)
			return lb.Put(seqKey(4), la)
		}, "reordered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir)
			appendN(t, l, 50)
			pub := l.PublicKey()
			l.Close()
			tamper(t, dir, tc.edit)
			l = openLog(t, dir)
			defer l.Close()
			report, err := VerifyLog(l, pub)
			if err != nil {
				t.Fatal(err)
			}
			if len(report.Problems) == 0 {
				t.Fatal("tampering was not detected")
			}
			if !strings.Contains(strings.Join(report.Problems, "\n"), tc.want) {
				t.Fatalf("problems %q do not mention %q", report.Problems, tc.want)
			}
		})
	}
}
