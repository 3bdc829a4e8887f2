package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
)

// maxMismatchSamples bounds how many wrong results a report describes in
// full; all of them are counted.
const maxMismatchSamples = 10

// Report is the result of one load test run. Its JSON form is what
// `mandate loadtest --json` prints and `mandate loadtest compare` reads.
type Report struct {
	Target        string `json:"target"`
	Scenario      string `json:"scenario"`
	Relationships int    `json:"relationships"`
	Seed          uint64 `json:"seed"`
	Mix           string `json:"mix"`
	Concurrency   int    `json:"concurrency"`
	Connections   int    `json:"connections"`
	BulkSize      int    `json:"bulk_size"`
	Consistency   string `json:"consistency"`
	StartedAt     string `json:"started_at"`
	// Load describes loading the data set; nil when the run reused data.
	Load *LoadReport `json:"load,omitempty"`
	// ElapsedSeconds is the wall time from the first call sent to the last
	// call finished.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// StoppedBy is "duration", "max-requests" or "canceled".
	StoppedBy string `json:"stopped_by"`
	// CPU splits the host's busy CPU time during the run; nil where /proc
	// cannot be read.
	CPU *CPUReport `json:"cpu,omitempty"`
	// Total sums every kind; its latencies cover calls of all kinds.
	Total KindReport   `json:"total"`
	Kinds []KindReport `json:"kinds"`
	// MismatchSamples describes the first wrong results.
	MismatchSamples []string `json:"mismatch_samples,omitempty"`
}

// LoadReport describes loading the data set before the run.
type LoadReport struct {
	Relationships int     `json:"relationships"`
	Method        string  `json:"method"` // "import" or "write"
	Seconds       float64 `json:"seconds"`
	PerSecond     float64 `json:"per_second"`
}

// CPUReport splits the CPU time that the host spent busy during the run
// between the server, the load tester and all other processes. On a shared
// machine a large OtherSeconds means the latencies are not the server's
// alone.
type CPUReport struct {
	Cores int `json:"cores"`
	// HostBusySeconds is the busy CPU time of all cores, out of
	// Cores * elapsed seconds.
	HostBusySeconds   float64 `json:"host_busy_seconds"`
	LoadTesterSeconds float64 `json:"load_tester_seconds"`
	// The server fields are set only when the run was given the server's
	// process ID, which must be on this host.
	ServerPID     int     `json:"server_pid,omitempty"`
	ServerSeconds float64 `json:"server_seconds,omitempty"`
	// ServerMillisPerCall is ServerSeconds per finished call, in ms.
	ServerMillisPerCall float64 `json:"server_ms_per_call,omitempty"`
	// OtherSeconds is HostBusySeconds less the server and the load tester.
	OtherSeconds float64 `json:"other_seconds,omitempty"`
	// ServerRSSKiB is the server's resident memory at the end of the run.
	ServerRSSKiB int64 `json:"server_rss_kib,omitempty"`
}

// KindReport is the outcome of one kind of call.
type KindReport struct {
	Kind string `json:"kind"`
	// Calls counts finished calls, failed ones included.
	Calls int64 `json:"calls"`
	// PerSecond is Calls divided by the run's elapsed time.
	PerSecond float64 `json:"per_second"`
	// Latency covers the calls that succeeded.
	Latency LatencyReport `json:"latency_ms"`
	// Errors counts failed calls by gRPC code name.
	Errors map[string]int64 `json:"errors,omitempty"`
	// ItemErrors counts CheckBulkPermissions items that failed inside a
	// successful call, by gRPC code name.
	ItemErrors map[string]int64 `json:"item_errors,omitempty"`
	// Items counts check items of bulk calls and resources returned by
	// lookups.
	Items int64 `json:"items,omitempty"`
	// Verified counts results compared with a known expected result: one
	// per check, per bulk item and per lookup.
	Verified   int64 `json:"verified"`
	Mismatches int64 `json:"mismatches"`
}

// LatencyReport holds latencies in milliseconds.
type LatencyReport struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func latencyOf(h *Histogram) LatencyReport {
	return LatencyReport{
		P50:  millis(h.Quantile(0.50)),
		P95:  millis(h.Quantile(0.95)),
		P99:  millis(h.Quantile(0.99)),
		Max:  millis(h.Max()),
		Mean: millis(h.Mean()),
	}
}

// kindStats accumulates one kind of call in one worker.
type kindStats struct {
	latency    Histogram
	calls      int64
	errors     map[codes.Code]int64
	itemErrors map[codes.Code]int64
	items      int64
	verified   int64
	mismatches int64
}

// addCount adds n to the count of code, creating the map on first use.
func addCount(counts *map[codes.Code]int64, code codes.Code, n int64) {
	if *counts == nil {
		*counts = make(map[codes.Code]int64)
	}
	(*counts)[code] += n
}

func (k *kindStats) merge(other *kindStats) {
	k.latency.Merge(&other.latency)
	k.calls += other.calls
	for code, n := range other.errors {
		addCount(&k.errors, code, n)
	}
	for code, n := range other.itemErrors {
		addCount(&k.itemErrors, code, n)
	}
	k.items += other.items
	k.verified += other.verified
	k.mismatches += other.mismatches
}

func codeCounts(counts map[codes.Code]int64) map[string]int64 {
	if len(counts) == 0 {
		return nil
	}
	named := make(map[string]int64, len(counts))
	for code, n := range counts {
		named[code.String()] += n
	}
	return named
}

func (k *kindStats) report(name string, elapsed time.Duration) KindReport {
	r := KindReport{
		Kind:       name,
		Calls:      k.calls,
		Latency:    latencyOf(&k.latency),
		Errors:     codeCounts(k.errors),
		ItemErrors: codeCounts(k.itemErrors),
		Items:      k.items,
		Verified:   k.verified,
		Mismatches: k.mismatches,
	}
	if elapsed > 0 {
		r.PerSecond = float64(k.calls) / elapsed.Seconds()
	}
	return r
}

// errorCount returns the number of failed calls.
func (r KindReport) errorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a table for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "target %s, scenario %s, %d relationships, seed %d\n", r.Target, r.Scenario, r.Relationships, r.Seed)
	fmt.Fprintf(&b, "mix %s, %d workers on %d connections, bulk size %d, consistency %s\n",
		r.Mix, r.Concurrency, r.Connections, r.BulkSize, r.Consistency)
	if r.Load != nil {
		fmt.Fprintf(&b, "loaded %d relationships by %s in %.1fs (%.0f/s)\n",
			r.Load.Relationships, r.Load.Method, r.Load.Seconds, r.Load.PerSecond)
	}
	fmt.Fprintf(&b, "ran %.1fs, stopped by %s\n", r.ElapsedSeconds, r.StoppedBy)
	if c := r.CPU; c != nil {
		fmt.Fprintf(&b, "cpu: %d cores x %.1fs = %.1f CPU-s, busy %.1f: load tester %.1f",
			c.Cores, r.ElapsedSeconds, float64(c.Cores)*r.ElapsedSeconds, c.HostBusySeconds, c.LoadTesterSeconds)
		if c.ServerPID > 0 {
			fmt.Fprintf(&b, ", server %.1f (%.3f ms per call), other processes %.1f", c.ServerSeconds, c.ServerMillisPerCall, c.OtherSeconds)
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintln(&b)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tcalls\tcalls/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\tverified\tmismatches\t")
	for _, k := range append(append([]KindReport(nil), r.Kinds...), r.Total) {
		if k.Calls == 0 && k.Kind != r.Total.Kind {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\t\n",
			k.Kind, k.Calls, k.PerSecond, k.Latency.P50, k.Latency.P95, k.Latency.P99, k.Latency.Max,
			k.errorCount(), k.Verified, k.Mismatches)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, k := range r.Kinds {
		if len(k.Errors) > 0 {
			fmt.Fprintf(&b, "%s errors: %s\n", k.Kind, formatCodeCounts(k.Errors))
		}
		if len(k.ItemErrors) > 0 {
			fmt.Fprintf(&b, "%s item errors: %s\n", k.Kind, formatCodeCounts(k.ItemErrors))
		}
	}
	for _, sample := range r.MismatchSamples {
		fmt.Fprintf(&b, "mismatch: %s\n", sample)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatCodeCounts(counts map[string]int64) string {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s=%d", name, counts[name])
	}
	return strings.Join(parts, " ")
}
