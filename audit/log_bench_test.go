package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchRecord is a check record of about the size the server writes for
// a grant through a folder, with its granting path.
func benchRecord(i uint64) *Record {
	return &Record{
		Time:       time.Now(),
		Kind:       KindCheck,
		Principal:  "agent:report-bot",
		Resource:   fmt.Sprintf("dataset:d%d", i),
		Permission: "read",
		Subject:    "agent:report-bot",
		Result:     "has_permission",
		Why:        "dataset:q3#folder@folder:reports -> folder:reports#reader@department:finance#member -> department:finance#member@agent:report-bot",
		Revision:   42,
		SchemaHash: "0123456789abcdef",
		Purpose:    "monthly report",
		RequestID:  "5f1c0e1d2a3b4c5d",
	}
}

// BenchmarkAppend measures Append from 1 to 64 concurrent callers, each
// waiting until its record is durable. It reports the process's CPU time
// per record (cpu-ns/op) and the records each group commit wrote. Wall
// time per op is dominated by fdatasync, so it depends on the disk.
func BenchmarkAppend(b *testing.B) {
	for _, callers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			defer l.Close()
			headsBefore := l.countHeads(b)
			var seq atomic.Uint64
			b.ReportAllocs()
			cpuBefore := processCPUTime(b)
			if callers == 1 {
				for b.Loop() {
					if err := l.Append(context.Background(), benchRecord(seq.Add(1))); err != nil {
						b.Fatalf("Append: %v", err)
					}
				}
			} else {
				// RunParallel starts parallelism × GOMAXPROCS goroutines.
				b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := l.Append(context.Background(), benchRecord(seq.Add(1))); err != nil {
							b.Errorf("Append: %v", err)
							return
						}
					}
				})
			}
			b.StopTimer()
			cpu := processCPUTime(b) - cpuBefore
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			commits := l.countHeads(b) - headsBefore
			b.ReportMetric(float64(b.N)/float64(commits), "records/commit")
		})
	}
}

func (l *Log) countHeads(b *testing.B) int {
	b.Helper()
	heads, err := l.Heads()
	if err != nil {
		b.Fatalf("Heads: %v", err)
	}
	return len(heads)
}

// processCPUTime returns the user and system CPU time of the process.
func processCPUTime(b *testing.B) time.Duration {
	b.Helper()
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// BenchmarkVerifier feeds a log of 20,000 records, with a signed tree head
// after every 4, to a Verifier, as `mandate audit verify` does.
func BenchmarkVerifier(b *testing.B) {
	const records, perHead = 20000, 4
	l, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	defer l.Close()
	var heads []TreeHead
	var leaves []Hash
	var f frontier
	for i := range records {
		leaf := LeafHash([]byte(fmt.Sprintf("record %d", i)))
		leaves = append(leaves, leaf)
		f.append(leaf)
		if (i+1)%perHead == 0 {
			h := TreeHead{Size: f.size, Root: f.root(), Time: time.Unix(0, 0)}
			h.Signature = ed25519.Sign(l.key, h.signedBytes())
			heads = append(heads, h)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		v := &Verifier{PublicKey: l.PublicKey()}
		for i, leaf := range leaves {
			v.AddRecord(uint64(i), []byte(fmt.Sprintf("record %d", i)), leaf)
		}
		for _, h := range heads {
			v.AddHead(h)
		}
		if r := v.Finish(); len(r.Problems) != 0 {
			b.Fatalf("problems: %q", r.Problems)
		}
	}
}
