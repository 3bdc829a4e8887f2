package audit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// appendWithin calls Append in a goroutine and fails the test if it has
// not returned after d.
func appendWithin(t *testing.T, l *Log, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		done <- l.Append(context.Background(), &Record{Kind: KindCheck, Principal: "admin", Result: "no_permission"})
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Append did not return within %s", d)
		return nil
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	l := openLog(t, t.TempDir())
	appendN(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The loop repeats the call because the failure it guards against is
	// random: a select between a send to the stopped writer's buffered
	// queue and the closed done channel may pick the send, and the caller
	// then waits for a result that never comes.
	for i := range 50 {
		if err := appendWithin(t, l, 2*time.Second); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append %d after Close: got %v, want ErrClosed", i, err)
		}
	}
	batch := []*Record{{Kind: KindCheck, Principal: "admin"}, {Kind: KindCheck, Principal: "admin"}}
	if err := l.AppendBatch(context.Background(), batch); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendBatch after Close: got %v, want ErrClosed", err)
	}
}

func TestCloseTwiceReturnsErrClosed(t *testing.T) {
	l := openLog(t, t.TempDir())
	if err := l.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: got %v, want ErrClosed", err)
	}
}

func TestCloseAnswersQueuedAppends(t *testing.T) {
	l := openLog(t, t.TempDir())
	const n = 200
	errs := make(chan error, n)
	for range n {
		go func() {
			errs <- l.Append(context.Background(), &Record{Kind: KindCheck, Principal: "admin", Result: "has_permission"})
		}()
	}
	time.Sleep(time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	written := 0
	for range n {
		select {
		case err := <-errs:
			switch {
			case err == nil:
				written++
			case !errors.Is(err, ErrClosed):
				t.Errorf("Append during Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an Append during Close did not return within 5s")
		}
	}
	l = openLog(t, l.dir)
	defer l.Close()
	if got := l.Head().Size; got != uint64(written) {
		t.Fatalf("reopened log has %d records, but %d appends succeeded", got, written)
	}
}

// TestAppendNeverOverwritesRecords deletes a record and its leaf from the
// middle of a closed log, as an attacker with the file might, and appends
// after reopening. The log rebuilds its tree from the leaves that are
// left, so without the check at Open its next sequence number would be
// that of the last stored record, and the append would overwrite it.
func TestAppendNeverOverwritesRecords(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	appendN(t, l, 10)
	l.Close()
	var last []byte
	tamper(t, dir, func(tx *bolt.Tx) error {
		last = append([]byte(nil), tx.Bucket(bucketRecords).Get(seqKey(9))...)
		if err := tx.Bucket(bucketLeaves).Delete(seqKey(4)); err != nil {
			return err
		}
		return tx.Bucket(bucketRecords).Delete(seqKey(4))
	})

	l = openLog(t, dir)
	defer l.Close()
	err := l.Append(context.Background(), &Record{Kind: KindCheck, Principal: "admin", Result: "has_permission"})
	if !errors.Is(err, ErrInconsistent) {
		t.Errorf("Append to a log with a deleted record: got %v, want ErrInconsistent", err)
	}
	var got []byte
	if err := l.db.View(func(tx *bolt.Tx) error {
		got = append([]byte(nil), tx.Bucket(bucketRecords).Get(seqKey(9))...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(last) {
		t.Errorf("record 9 was overwritten:\ngot  %s\nwant %s", got, last)
	}
}

func TestOpenFindsInconsistentLog(t *testing.T) {
	cases := []struct {
		name string
		edit func(tx *bolt.Tx) error
		want string
	}{
		{"edited record and leaf", func(tx *bolt.Tx) error {
			leaf := LeafHash([]byte(`{"seq":3}`))
			if err := tx.Bucket(bucketLeaves).Put(seqKey(3), leaf[:]); err != nil {
				return err
			}
			return tx.Bucket(bucketRecords).Put(seqKey(3), []byte(`{"seq":3}`))
		}, "is not the root of the latest tree head"},
		{"deleted tail without its heads", func(tx *bolt.Tx) error {
			for i := uint64(5); i < 10; i++ {
				tx.Bucket(bucketRecords).Delete(seqKey(i))
				tx.Bucket(bucketLeaves).Delete(seqKey(i))
			}
			return nil
		}, "the latest tree head covers 10 records but there are 5 leaves"},
		{"extra record", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRecords).Put(seqKey(10), []byte(`{"seq":10}`))
		}, "the last record key is 000000000000000a but there are 10 leaves"},
		{"deleted heads", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketHeads); err != nil {
				return err
			}
			_, err := tx.CreateBucket(bucketHeads)
			return err
		}, "the latest tree head covers 0 records but there are 10 leaves"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir)
			appendN(t, l, 10)
			l.Close()
			tamper(t, dir, tc.edit)

			l = openLog(t, dir)
			defer l.Close()
			err := l.Append(context.Background(), &Record{Kind: KindCheck, Principal: "admin"})
			if !errors.Is(err, ErrInconsistent) {
				t.Fatalf("Append: got %v, want ErrInconsistent", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Append error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestOpenAcceptsTruncationAtHead shows the limit of the check at Open: a
// log cut back to one of its own signed tree heads, with the later heads
// removed, is consistent, so it takes new records. Only a tree head saved
// outside the log, checked with a consistency proof, reveals the cut.
func TestOpenAcceptsTruncationAtHead(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	appendN(t, l, 1)
	saved := l.Head()
	appendN(t, l, 9)
	l.Close()
	tamper(t, dir, func(tx *bolt.Tx) error {
		for i := uint64(1); i < 10; i++ {
			tx.Bucket(bucketRecords).Delete(seqKey(i))
			tx.Bucket(bucketLeaves).Delete(seqKey(i))
			tx.Bucket(bucketHeads).Delete(seqKey(i + 1))
		}
		return nil
	})

	l = openLog(t, dir)
	defer l.Close()
	if got := l.Head(); got.Size != 1 || got.Root != saved.Root {
		t.Fatalf("head after truncation: size %d root %x, want size 1 root %x", got.Size, got.Root, saved.Root)
	}
	appendN(t, l, 3)
	if got := l.Head().Size; got != 4 {
		t.Errorf("head size after appending 3 records: got %d, want 4", got)
	}
}

func TestRawRecordsPage(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	appendN(t, l, 25)
	var all []uint64
	var from uint64
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("RawRecordsPage did not reach the end in 10 pages of 7")
		}
		n := 0
		next, err := l.RawRecordsPage(from, 7, func(seq uint64, data []byte, leaf Hash) error {
			n++
			all = append(all, seq)
			if LeafHash(data) != leaf {
				t.Errorf("record %d: stored leaf does not match its data", seq)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("RawRecordsPage from %d: %v", from, err)
		}
		if n < 7 {
			if next != 25 {
				t.Errorf("last page ends at %d, want 25", next)
			}
			break
		}
		from = next
	}
	for i, seq := range all {
		if seq != uint64(i) {
			t.Fatalf("record %d came back as seq %d: %v", i, seq, all)
		}
	}
	if len(all) != 25 {
		t.Errorf("pages returned %d records, want 25", len(all))
	}
}
