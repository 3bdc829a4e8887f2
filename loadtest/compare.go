package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// ReadReport reads a report that WriteJSON wrote.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse load test report %s: %w", path, err)
	}
	return &r, nil
}

// Series is the reports of repeated runs against one server.
type Series struct {
	Name    string
	Reports []*Report
}

// spread summarizes one figure over repeated runs.
type spread struct {
	median, min, max float64
}

func spreadOf(values []float64) spread {
	if len(values) == 0 {
		return spread{}
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return spread{median: median, min: sorted[0], max: sorted[n-1]}
}

func (s spread) format(precision int) string {
	return fmt.Sprintf("%.*f [%.*f, %.*f]", precision, s.median, precision, s.min, precision, s.max)
}

// kindFigures collects one figure of one kind over a series' reports.
func (s Series) kindFigures(kind string, figure func(KindReport) float64) []float64 {
	var values []float64
	for _, r := range s.Reports {
		if kind == "total" {
			values = append(values, figure(r.Total))
			continue
		}
		for _, k := range r.Kinds {
			if k.Kind == kind {
				values = append(values, figure(k))
			}
		}
	}
	return values
}

// comparedKinds returns the kinds that have calls in either series, then
// "total".
func comparedKinds(a, b Series) []string {
	var kinds []string
	for _, name := range kindNames {
		calls := 0.0
		for _, s := range []Series{a, b} {
			for _, v := range s.kindFigures(name, func(k KindReport) float64 { return float64(k.Calls) }) {
				calls += v
			}
		}
		if calls > 0 {
			kinds = append(kinds, name)
		}
	}
	return append(kinds, "total")
}

// Compare writes a side-by-side comparison of two series of runs: for
// each kind the median and range of throughput, p50 and p99 latency, the
// ratio of the medians a/b, and the errors and mismatches summed over all
// runs. It notes settings that differ between the two series.
func Compare(w io.Writer, a, b Series) error {
	if len(a.Reports) == 0 || len(b.Reports) == 0 {
		return fmt.Errorf("compare needs at least one report of each server, got %d of %s and %d of %s",
			len(a.Reports), a.Name, len(b.Reports), b.Name)
	}
	var out strings.Builder
	for _, diff := range settingDiffs(a, b) {
		fmt.Fprintf(&out, "warning: %s\n", diff)
	}
	first := a.Reports[0]
	fmt.Fprintf(&out, "scenario %s, %d relationships, mix %s, %d workers, consistency %s\n",
		first.Scenario, first.Relationships, first.Mix, first.Concurrency, first.Consistency)
	fmt.Fprintf(&out, "%s: %d runs, %s: %d runs; figures are median [min, max] over runs\n",
		a.Name, len(a.Reports), b.Name, len(b.Reports))

	kinds := comparedKinds(a, b)
	tables := []struct {
		title     string
		figure    func(KindReport) float64
		precision int
	}{
		{"throughput, calls/s; ratio above 1 means " + a.Name + " is faster", func(k KindReport) float64 { return k.PerSecond }, 0},
		{"p50 latency, ms; ratio below 1 means " + a.Name + " is faster", func(k KindReport) float64 { return k.Latency.P50 }, 3},
		{"p99 latency, ms; ratio below 1 means " + a.Name + " is faster", func(k KindReport) float64 { return k.Latency.P99 }, 3},
	}
	for _, table := range tables {
		fmt.Fprintf(&out, "\n%s\n", table.title)
		tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "kind\t%s\t%s\t%s/%s\n", a.Name, b.Name, a.Name, b.Name)
		for _, kind := range kinds {
			sa := spreadOf(a.kindFigures(kind, table.figure))
			sb := spreadOf(b.kindFigures(kind, table.figure))
			ratio := "n/a"
			if sb.median > 0 {
				ratio = fmt.Sprintf("%.2f", sa.median/sb.median)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", kind, sa.format(table.precision), sb.format(table.precision), ratio)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if err := compareCPU(&out, a, b); err != nil {
		return err
	}

	fmt.Fprintf(&out, "\nfailed calls and wrong results, summed over runs\n")
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "kind\t%s errors\t%s mismatches\t%s errors\t%s mismatches\n", a.Name, a.Name, b.Name, b.Name)
	for _, kind := range kinds {
		row := []string{kind}
		for _, s := range []Series{a, b} {
			errs := s.kindFigures(kind, func(k KindReport) float64 { return float64(k.errorCount() + sumCounts(k.ItemErrors)) })
			mismatches := s.kindFigures(kind, func(k KindReport) float64 { return float64(k.Mismatches) })
			row = append(row, fmt.Sprintf("%.0f", sum(errs)), fmt.Sprintf("%.0f", sum(mismatches)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, out.String())
	return err
}

func sum(values []float64) float64 {
	total := 0.0
	for _, v := range values {
		total += v
	}
	return total
}

func sumCounts(counts map[string]int64) int64 {
	var total int64
	for _, n := range counts {
		total += n
	}
	return total
}

// settingDiffs lists the run settings that differ between any report and
// the first report of a, which make a comparison unfair.
func settingDiffs(a, b Series) []string {
	first := a.Reports[0]
	setting := func(r *Report) string {
		return fmt.Sprintf("scenario=%s relationships=%d seed=%d mix=%s concurrency=%d connections=%d bulk_size=%d consistency=%s",
			r.Scenario, r.Relationships, r.Seed, r.Mix, r.Concurrency, r.Connections, r.BulkSize, r.Consistency)
	}
	want := setting(first)
	var diffs []string
	for _, s := range []Series{a, b} {
		for i, r := range s.Reports {
			if got := setting(r); got != want {
				diffs = append(diffs, fmt.Sprintf("run %d of %s has settings %s, but run 1 of %s has %s", i+1, s.Name, got, a.Name, want))
			}
		}
	}
	return diffs
}

// compareCPU writes the servers' CPU time per call and the CPU time other
// processes took during the runs, where the reports have them.
func compareCPU(out io.Writer, a, b Series) error {
	figures := func(s Series, figure func(*CPUReport) float64) []float64 {
		var values []float64
		for _, r := range s.Reports {
			if r.CPU != nil && r.CPU.ServerPID > 0 {
				values = append(values, figure(r.CPU))
			}
		}
		return values
	}
	rows := []struct {
		name   string
		figure func(*CPUReport) float64
	}{
		{"server CPU ms per call", func(c *CPUReport) float64 { return c.ServerMillisPerCall }},
		{"server CPU-s", func(c *CPUReport) float64 { return c.ServerSeconds }},
		{"load tester CPU-s", func(c *CPUReport) float64 { return c.LoadTesterSeconds }},
		{"other processes CPU-s", func(c *CPUReport) float64 { return c.OtherSeconds }},
	}
	if len(figures(a, rows[0].figure)) == 0 || len(figures(b, rows[0].figure)) == 0 {
		return nil
	}
	fmt.Fprintf(out, "\nCPU time per run; a server CPU ms per call ratio below 1 means %s uses less CPU per call\n", a.Name)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\t%s\t%s\t%s/%s\n", a.Name, b.Name, a.Name, b.Name)
	for _, row := range rows {
		sa := spreadOf(figures(a, row.figure))
		sb := spreadOf(figures(b, row.figure))
		ratio := "n/a"
		if sb.median > 0 {
			ratio = fmt.Sprintf("%.2f", sa.median/sb.median)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.name, sa.format(3), sb.format(3), ratio)
	}
	return tw.Flush()
}
