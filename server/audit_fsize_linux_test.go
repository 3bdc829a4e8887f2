//go:build linux

package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
)

// limitFileSize sets this process's RLIMIT_FSIZE to n bytes, so a write or
// truncate that would make any file larger fails with EFBIG, and returns
// a function that restores the old limit. The Go runtime ignores the
// SIGXFSZ that comes with the failure. The test must not run in parallel
// with others, because the limit applies to the whole process.
func limitFileSize(t *testing.T, n int64) (restore func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatalf("getrlimit RLIMIT_FSIZE: %v", err)
	}
	limit := old
	limit.Cur = uint64(n)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatalf("setrlimit RLIMIT_FSIZE to %d bytes: %v", n, err)
	}
	restored := false
	restore = func() {
		if restored {
			return
		}
		restored = true
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Errorf("restore RLIMIT_FSIZE: %v", err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// TestAuditUnwritableFile caps the size of audit.db at its current size,
// as a full disk would, so the log fails once bbolt must grow the file.
// Checks then fail with Unavailable and leave no record (fail closed), or
// are answered without a record (fail open). Once the cap is lifted the
// log takes records again, with no gap in its sequence.
func TestAuditUnwritableFile(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail open %v", failOpen), func(t *testing.T) {
			s, bot := startFailureFixture(t, failOpen)
			info, err := os.Stat(filepath.Join(s.auditDir, "audit.db"))
			if err != nil {
				t.Fatalf("stat audit.db: %v", err)
			}
			restore := limitFileSize(t, info.Size())

			var answered, failed []string
			const maxChecks = 5000
			for i := 0; i < maxChecks && len(failed) < 3; i++ {
				id := fmt.Sprintf("check-%d", i)
				resp, err := bot.CheckPermission(withRequestID(t, id), checkRequest(t, "dataset:logs", "read", "agent:bot"))
				switch {
				case err == nil && resp.GetPermissionship() == hasPermission:
					answered = append(answered, id)
				case err == nil:
					t.Fatalf("%s: got %s, want %s", id, resp.GetPermissionship(), hasPermission)
				case failOpen:
					t.Fatalf("%s with fail open: %v", id, err)
				case status.Code(err) != codes.Unavailable:
					t.Fatalf("%s: got %v, want Unavailable", id, err)
				default:
					failed = append(failed, id)
				}
				if failOpen && strings.Count(s.serverLog.String(), "answering anyway (fail open)") >= 3 {
					break
				}
			}
			restore()
			checkWithID(t, bot, "after-restore", "dataset:logs", "read", "agent:bot", hasPermission)

			stored := map[string]int{}
			for _, rec := range s.query(t, &mandatev1.QueryRecordsRequest{}) {
				stored[rec.GetRequestId()]++
			}
			if stored["after-restore"] != 1 {
				t.Errorf("the check after the cap was lifted has %d records, want 1", stored["after-restore"])
			}
			unrecorded := 0
			for _, id := range answered {
				switch n := stored[id]; {
				case n > 1:
					t.Errorf("%s has %d records, want at most 1", id, n)
				case n == 0 && !failOpen:
					t.Errorf("%s was answered with the log failing closed, but has no record", id)
				case n == 0:
					unrecorded++
				}
			}
			for _, id := range failed {
				if stored[id] != 0 {
					t.Errorf("%s failed, but has %d records", id, stored[id])
				}
			}
			if !failOpen && len(failed) == 0 {
				t.Errorf("no check failed in %d checks with audit.db capped at %d bytes", len(answered), info.Size())
			}
			if failOpen && unrecorded == 0 {
				t.Errorf("every one of %d checks was recorded with audit.db capped at %d bytes", len(answered), info.Size())
			}
			t.Logf("audit.db capped at %d bytes: %d checks answered (%d without a record), %d withheld",
				info.Size(), len(answered), unrecorded, len(failed))
			if !strings.Contains(s.serverLog.String(), "file resize error") {
				t.Errorf("server log does not name the failed write:\n%.2000s", s.serverLog.String())
			}
			s.verifyLog(t)
		})
	}
}
