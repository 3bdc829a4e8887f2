package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The tamper tests stop `mandate serve`, change its audit.db with bbolt
// the way someone with access to the file could, start the server again,
// and run `mandate audit verify` against it, which must fail and name the
// problem. The bucket names and the big-endian sequence keys are those of
// the audit package's storage format.

var (
	auditRecordsBucket = []byte("records")
	auditLeavesBucket  = []byte("leaves")
	auditHeadsBucket   = []byte("heads")
)

func auditKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// sendAuditChecks sends n checks, one at a time, so each record gets its
// own group commit and a signed tree head of its own size.
func sendAuditChecks(t *testing.T, client *authzed.Client, n int) {
	t.Helper()
	for i := range n {
		resource := "logs"
		if i%2 == 1 {
			resource = "other"
		}
		_, err := client.CheckPermission(testCtx(t), &v1.CheckPermissionRequest{
			Resource:   &v1.ObjectReference{ObjectType: "dataset", ObjectId: resource},
			Permission: "read",
			Subject:    &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
		})
		if err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
	}
}

// editAuditDB opens the audit.db of a stopped server and applies edit in
// one transaction.
func editAuditDB(t *testing.T, dataDir string, edit func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataDir, "audit", "audit.db"), 0o600, nil)
	if err != nil {
		t.Fatalf("open audit.db: %v", err)
	}
	defer db.Close()
	if err := db.Update(edit); err != nil {
		t.Fatalf("edit audit.db: %v", err)
	}
}

// replaceInRecord replaces old with new in the stored bytes of record seq,
// and fails the test unless old was there.
func replaceInRecord(t *testing.T, tx *bolt.Tx, seq uint64, old, new string) []byte {
	t.Helper()
	records := tx.Bucket(auditRecordsBucket)
	data := string(records.Get(auditKey(seq)))
	if !strings.Contains(data, old) {
		t.Fatalf("record %d does not contain %q: %s", seq, old, data)
	}
	edited := []byte(strings.Replace(data, old, new, 1))
	if err := records.Put(auditKey(seq), edited); err != nil {
		t.Fatalf("put record %d: %v", seq, err)
	}
	return edited
}

// auditLeafHash is the RFC 9162 leaf hash, SHA-256 over 0x00 and the data,
// computed here so the test does not trust the package it checks.
func auditLeafHash(data []byte) []byte {
	sum := sha256.Sum256(append([]byte{0}, data...))
	return sum[:]
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and restarts it for every case; skipped with -short")
	}
	bin := buildMandate(t)

	// The server writes one grant, whose record is 0, and then 30 checks:
	// records 1 to 30, of which the odd ones are has_permission.
	cases := []struct {
		name string
		edit func(t *testing.T, tx *bolt.Tx)
		// want is a problem that verify must print.
		want string
		// withheld is whether the restarted server finds the change
		// itself and withholds decisions.
		withheld bool
	}{
		{"edited record", func(t *testing.T, tx *bolt.Tx) {
			replaceInRecord(t, tx, 7, `"result":"has_permission"`, `"result":"no_permission"`)
		}, "PROBLEM: record 7 does not match its stored leaf hash: the record was edited", false},
		{"edited record and leaf", func(t *testing.T, tx *bolt.Tx) {
			edited := replaceInRecord(t, tx, 7, `"result":"has_permission"`, `"result":"no_permission"`)
			if err := tx.Bucket(auditLeavesBucket).Put(auditKey(7), auditLeafHash(edited)); err != nil {
				t.Fatal(err)
			}
		}, "PROBLEM: tree head of size 8 does not match the records: a record up to 7 was edited or reordered", true},
		{"deleted record", func(t *testing.T, tx *bolt.Tx) {
			for _, b := range [][]byte{auditRecordsBucket, auditLeavesBucket} {
				if err := tx.Bucket(b).Delete(auditKey(12)); err != nil {
					t.Fatal(err)
				}
			}
		}, "PROBLEM: record 13 found where record 12 was expected: a record was removed or reordered", true},
		{"deleted record without its leaf", func(t *testing.T, tx *bolt.Tx) {
			if err := tx.Bucket(auditRecordsBucket).Delete(auditKey(12)); err != nil {
				t.Fatal(err)
			}
		}, "PROBLEM: record 13 found where record 12 was expected: a record was removed or reordered", false},
		{"reordered records", func(t *testing.T, tx *bolt.Tx) {
			for _, b := range [][]byte{auditRecordsBucket, auditLeavesBucket} {
				bucket := tx.Bucket(b)
				three := append([]byte(nil), bucket.Get(auditKey(3))...)
				four := append([]byte(nil), bucket.Get(auditKey(4))...)
				if err := bucket.Put(auditKey(3), four); err != nil {
					t.Fatal(err)
				}
				if err := bucket.Put(auditKey(4), three); err != nil {
					t.Fatal(err)
				}
			}
		}, "PROBLEM: tree head of size 4 does not match the records: a record up to 3 was edited or reordered", true},
		{"deleted tail", func(t *testing.T, tx *bolt.Tx) {
			for seq := uint64(25); seq <= 30; seq++ {
				for _, b := range [][]byte{auditRecordsBucket, auditLeavesBucket} {
					if err := tx.Bucket(b).Delete(auditKey(seq)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, "PROBLEM: tree head of size 26 covers more records than the 25 present: records were removed", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			proc := startMandate(t, bin, dataDir)
			client := connectMandate(t, proc.addr)
			writeAuditCrashGrant(t, client)
			sendAuditChecks(t, client, 30)
			if out, err := runAuditVerify(t, bin, proc.addr); err != nil {
				t.Fatalf("verify before tampering: %v\n%s", err, out)
			}
			client.Close()
			if err := proc.terminate(); err != nil {
				t.Fatalf("stop with SIGTERM: %v\n%s", err, proc.log())
			}

			editAuditDB(t, dataDir, func(tx *bolt.Tx) error {
				tc.edit(t, tx)
				return nil
			})

			proc = startMandate(t, bin, dataDir)
			out, err := runAuditVerify(t, bin, proc.addr)
			if err == nil {
				t.Errorf("verify after tampering succeeded:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("verify output does not contain %q:\n%s", tc.want, out)
			}
			if !strings.Contains(out, "audit log verification failed") {
				t.Errorf("verify output does not end with the failure:\n%s", out)
			}

			client = connectMandate(t, proc.addr)
			_, err = client.CheckPermission(testCtx(t), &v1.CheckPermissionRequest{
				Resource:   &v1.ObjectReference{ObjectType: "dataset", ObjectId: "logs"},
				Permission: "read",
				Subject:    &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
			})
			switch {
			case tc.withheld && status.Code(err) != codes.Unavailable:
				t.Errorf("check after tampering: got %v, want Unavailable, because the log no longer fits its signed tree head", err)
			case !tc.withheld && err != nil:
				t.Errorf("check after tampering: %v, want an answer, because the change is found only by verify", err)
			}
			client.Close()
		})
	}
}

func TestAuditVerifyTrustedHead(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and restarts it; skipped with -short")
	}
	bin := buildMandate(t)
	dataDir := t.TempDir()
	headFile := filepath.Join(t.TempDir(), "head.json")

	proc := startMandate(t, bin, dataDir)
	client := connectMandate(t, proc.addr)
	writeAuditCrashGrant(t, client)
	sendAuditChecks(t, client, 10)
	out, err := runAuditVerify(t, bin, proc.addr, "--save-head", headFile)
	if err != nil {
		t.Fatalf("verify --save-head: %v\n%s", err, out)
	}

	// The log grows legitimately: the saved head of 11 records must be a
	// prefix of the log of 21.
	sendAuditChecks(t, client, 10)
	out, err = runAuditVerify(t, bin, proc.addr, "--trusted-head", headFile, "--seq", "5")
	if err != nil {
		t.Errorf("verify --trusted-head after growth: %v\n%s", err, out)
	}
	for _, want := range []string{
		"consistency proof verified: the trusted head of size 11 is a prefix of the log of size 21",
		"record 5: inclusion proof verified against the head of size 21",
		"verified: every record matches the signed tree heads",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output does not contain %q:\n%s", want, out)
		}
	}
	client.Close()
	if err := proc.terminate(); err != nil {
		t.Fatalf("stop with SIGTERM: %v\n%s", err, proc.log())
	}

	// Cut the log back to its first 6 records, with the tree heads above
	// that size, so what is left is a consistent log signed by the
	// server's own key.
	const cut = 6
	editAuditDB(t, dataDir, func(tx *bolt.Tx) error {
		for seq := uint64(cut); seq < 21; seq++ {
			for _, b := range [][]byte{auditRecordsBucket, auditLeavesBucket} {
				if err := tx.Bucket(b).Delete(auditKey(seq)); err != nil {
					return err
				}
			}
			if err := tx.Bucket(auditHeadsBucket).Delete(auditKey(seq + 1)); err != nil {
				return err
			}
		}
		return nil
	})

	// The restarted server accepts the cut log and grows it past the
	// saved head's size again.
	proc = startMandate(t, bin, dataDir)
	client = connectMandate(t, proc.addr)
	sendAuditChecks(t, client, 20)
	out, err = runAuditVerify(t, bin, proc.addr)
	if err != nil {
		t.Errorf("verify without a trusted head: %v, want success, because the cut log is consistent in itself\n%s", err, out)
	}
	out, err = runAuditVerify(t, bin, proc.addr, "--trusted-head", headFile)
	if err == nil {
		t.Errorf("verify --trusted-head after truncation and regrowth succeeded:\n%s", out)
	}
	want := fmt.Sprintf("PROBLEM: trusted head of size 11: proof does not verify: tree of size 11 is not a prefix of tree of size %d", cut+20)
	if !strings.Contains(out, want) {
		t.Errorf("verify output does not contain %q:\n%s", want, out)
	}
	client.Close()
}
