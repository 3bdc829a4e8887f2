package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RunOptions configures Run.
type RunOptions struct {
	Target      string // address, for the report only
	Scenario    Scenario
	Mix         Mix
	Concurrency int
	// Duration and MaxRequests both bound the run, which stops at
	// whichever comes first.
	Duration    time.Duration
	MaxRequests int64
	// BulkSize is the number of items per CheckBulkPermissions call.
	BulkSize int
	// Seed makes the request sequence of each worker repeatable.
	Seed uint64
	// Consistency is sent with every read; ConsistencyName labels it in
	// the report.
	Consistency     *v1.Consistency
	ConsistencyName string
	// Timeout bounds each call.
	Timeout time.Duration
	// ServerPID, when above 0, is the server's process on this host, whose
	// CPU time and memory the report includes.
	ServerPID int
	// Progress receives a line every ProgressInterval; nil for none.
	Progress         io.Writer
	ProgressInterval time.Duration
}

func (o *RunOptions) validate(clients int) error {
	switch {
	case clients == 0:
		return errors.New("load test needs at least one client")
	case o.Scenario == nil:
		return errors.New("load test needs a scenario")
	case o.Mix.total() == 0:
		return errors.New("load test needs a mix with a positive weight")
	case o.Concurrency <= 0:
		return fmt.Errorf("invalid concurrency %d: must be at least 1", o.Concurrency)
	case o.Duration <= 0:
		return fmt.Errorf("invalid duration %s: must be positive", o.Duration)
	case o.MaxRequests <= 0:
		return fmt.Errorf("invalid max requests %d: must be at least 1", o.MaxRequests)
	case o.BulkSize <= 0:
		return fmt.Errorf("invalid bulk size %d: must be at least 1", o.BulkSize)
	case o.Timeout <= 0:
		return fmt.Errorf("invalid timeout %s: must be positive", o.Timeout)
	}
	return nil
}

// runState is shared by the workers of one run.
type runState struct {
	opts       *RunOptions
	deadline   time.Time
	issued     atomic.Int64 // calls started, to enforce MaxRequests
	finished   atomic.Int64
	failed     atomic.Int64
	mismatches atomic.Int64

	samplesMu sync.Mutex
	samples   []string
}

func (st *runState) addMismatch(format string, args ...any) {
	st.mismatches.Add(1)
	st.samplesMu.Lock()
	defer st.samplesMu.Unlock()
	if len(st.samples) < maxMismatchSamples {
		st.samples = append(st.samples, fmt.Sprintf(format, args...))
	}
}

// Run sends calls of the mix from opts.Concurrency workers, spread over
// clients, until opts.Duration has passed or opts.MaxRequests calls have
// started, and reports what happened. Calls that ctx cancels are not
// counted. Each worker's writes create a relationship and delete it with
// the next write, and Run deletes what is left at the end.
func Run(ctx context.Context, clients []Client, opts RunOptions) (*Report, error) {
	if err := opts.validate(len(clients)); err != nil {
		return nil, err
	}
	if opts.ServerPID > 0 {
		if _, err := ProcessCPUSeconds(opts.ServerPID); err != nil {
			return nil, fmt.Errorf("server process: %w", err)
		}
	}
	before := sampleResources(opts.ServerPID)
	start := time.Now()
	st := &runState{opts: &opts, deadline: start.Add(opts.Duration)}

	var lastCount atomic.Int64
	var lastElapsed atomic.Int64
	stopProgress := startProgress(opts.Progress, opts.ProgressInterval, func(elapsed time.Duration) string {
		n := st.finished.Load()
		window := elapsed - time.Duration(lastElapsed.Swap(int64(elapsed)))
		rate := float64(n-lastCount.Swap(n)) / window.Seconds()
		return fmt.Sprintf("loadtest: %.0fs, %d calls, %.0f/s now, %d errors, %d mismatches",
			elapsed.Seconds(), n, rate, st.failed.Load(), st.mismatches.Load())
	})

	workers := make([]*worker, opts.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{
			id:     i,
			client: clients[i%len(clients)],
			state:  st,
			rand:   rand.New(rand.NewPCG(opts.Seed, uint64(i)+1)),
		}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := sampleResources(opts.ServerPID)
	stopProgress()

	cleanupErrs := 0
	for _, w := range workers {
		if err := w.deletePending(); err != nil {
			cleanupErrs++
			if cleanupErrs == 1 && opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "loadtest: delete relationship left by worker %d: %v\n", w.id, err)
			}
		}
	}

	report := &Report{
		Target:          opts.Target,
		Scenario:        opts.Scenario.Name(),
		Relationships:   opts.Scenario.Count(),
		Seed:            opts.Seed,
		Mix:             opts.Mix.String(),
		Concurrency:     opts.Concurrency,
		Connections:     len(clients),
		BulkSize:        opts.BulkSize,
		Consistency:     opts.ConsistencyName,
		StartedAt:       start.UTC().Format(time.RFC3339),
		ElapsedSeconds:  elapsed.Seconds(),
		MismatchSamples: st.samples,
	}
	switch {
	case ctx.Err() != nil:
		report.StoppedBy = "canceled"
	case st.issued.Load() > opts.MaxRequests:
		report.StoppedBy = "max-requests"
	default:
		report.StoppedBy = "duration"
	}
	var total kindStats
	for k := range numKinds {
		var merged kindStats
		for _, w := range workers {
			merged.merge(&w.stats[k])
		}
		total.merge(&merged)
		report.Kinds = append(report.Kinds, merged.report(k.String(), elapsed))
	}
	report.Total = total.report("total", elapsed)
	report.CPU = cpuReport(before, after, opts.ServerPID, report.Total.Calls)
	return report, nil
}

// cpuReport compares the resource samples taken around a run; it returns
// nil when the host's or the load tester's CPU time could not be read.
func cpuReport(before, after resourceSample, serverPID int, calls int64) *CPUReport {
	host := delta(before.host, after.host)
	self := delta(before.self, after.self)
	if host < 0 || self < 0 {
		return nil
	}
	c := &CPUReport{Cores: runtime.NumCPU(), HostBusySeconds: host, LoadTesterSeconds: self}
	if server := delta(before.server, after.server); server >= 0 {
		c.ServerPID = serverPID
		c.ServerSeconds = server
		c.OtherSeconds = max(0, host-self-server)
		if calls > 0 {
			c.ServerMillisPerCall = server * 1000 / float64(calls)
		}
		if rss, err := ProcessMemoryKiB(serverPID, "VmRSS"); err == nil {
			c.ServerRSSKiB = rss
		}
	}
	return c
}

// worker sends one call at a time and keeps its own statistics.
type worker struct {
	id     int
	client Client
	state  *runState
	rand   *rand.Rand
	stats  [numKinds]kindStats
	// pending is the relationship this worker created last, which its
	// next write deletes.
	pending *v1.Relationship
}

func (w *worker) loop(ctx context.Context) {
	opts := w.state.opts
	for ctx.Err() == nil && time.Now().Before(w.state.deadline) {
		if w.state.issued.Add(1) > opts.MaxRequests {
			return
		}
		callCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
		switch opts.Mix.pick(w.rand) {
		case KindCheck:
			w.check(callCtx, ctx)
		case KindBulk:
			w.bulk(callCtx, ctx)
		case KindLookup:
			w.lookup(callCtx, ctx)
		case KindWrite:
			w.write(callCtx, ctx)
		}
		cancel()
	}
}

// finish counts a call that returned err after elapsed, and returns
// whether it succeeded. A call that the run's own context canceled is not
// counted, and neither succeeded.
func (w *worker) finish(kind Kind, runCtx context.Context, err error, elapsed time.Duration) bool {
	if runCtx.Err() != nil {
		return false
	}
	stats := &w.stats[kind]
	stats.calls++
	w.state.finished.Add(1)
	if err != nil {
		addCount(&stats.errors, status.Code(err), 1)
		w.state.failed.Add(1)
		return false
	}
	stats.latency.Record(elapsed)
	return true
}

// verify compares a permissionship with the case's expected result.
func (w *worker) verify(kind Kind, c CheckCase, got v1.CheckPermissionResponse_Permissionship) {
	if c.Expect == Unverified {
		return
	}
	want := v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
	if c.Expect == ExpectDenied {
		want = v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
	}
	stats := &w.stats[kind]
	stats.verified++
	if got != want {
		stats.mismatches++
		w.state.addMismatch("%s %s: got %s, expected %s", kind, c, got, want)
	}
}

func (w *worker) check(callCtx, runCtx context.Context) {
	c := w.state.opts.Scenario.NextCheck(w.rand)
	start := time.Now()
	resp, err := w.client.CheckPermission(callCtx, &v1.CheckPermissionRequest{
		Consistency: w.state.opts.Consistency,
		Resource:    c.Resource,
		Permission:  c.Permission,
		Subject:     c.Subject,
	})
	if w.finish(KindCheck, runCtx, err, time.Since(start)) {
		w.verify(KindCheck, c, resp.GetPermissionship())
	}
}

// checkKey identifies a check by its request, for matching the pairs of a
// bulk response. Equal requests have equal expected results.
func checkKey(resource *v1.ObjectReference, permission string, sub *v1.SubjectReference) string {
	return formatObject(resource) + "#" + permission + "@" + formatSubject(sub)
}

func (w *worker) bulk(callCtx, runCtx context.Context) {
	opts := w.state.opts
	items := make([]*v1.CheckBulkPermissionsRequestItem, opts.BulkSize)
	cases := make(map[string]CheckCase, opts.BulkSize)
	for i := range items {
		c := opts.Scenario.NextCheck(w.rand)
		items[i] = &v1.CheckBulkPermissionsRequestItem{Resource: c.Resource, Permission: c.Permission, Subject: c.Subject}
		cases[checkKey(c.Resource, c.Permission, c.Subject)] = c
	}
	start := time.Now()
	resp, err := w.client.CheckBulkPermissions(callCtx, &v1.CheckBulkPermissionsRequest{
		Consistency: opts.Consistency,
		Items:       items,
	})
	if !w.finish(KindBulk, runCtx, err, time.Since(start)) {
		return
	}

	stats := &w.stats[KindBulk]
	pairs := resp.GetPairs()
	stats.items += int64(len(pairs))
	if len(pairs) != len(items) {
		stats.mismatches++
		w.state.addMismatch("bulk: got %d pairs for %d items", len(pairs), len(items))
	}
	for _, pair := range pairs {
		if e := pair.GetError(); e != nil {
			addCount(&stats.itemErrors, codes.Code(e.GetCode()), 1)
			continue
		}
		req := pair.GetRequest()
		c, ok := cases[checkKey(req.GetResource(), req.GetPermission(), req.GetSubject())]
		if !ok {
			stats.mismatches++
			w.state.addMismatch("bulk: got a pair for %s, which was not requested",
				checkKey(req.GetResource(), req.GetPermission(), req.GetSubject()))
			continue
		}
		w.verify(KindBulk, c, pair.GetItem().GetPermissionship())
	}
}

func (w *worker) lookup(callCtx, runCtx context.Context) {
	c := w.state.opts.Scenario.NextLookup(w.rand)
	start := time.Now()
	ids, conditional, err := w.lookupAll(callCtx, c)
	if !w.finish(KindLookup, runCtx, err, time.Since(start)) {
		return
	}
	stats := &w.stats[KindLookup]
	stats.items += int64(len(ids))
	if !c.Verified {
		return
	}
	stats.verified++
	var wrong []string
	for id := range ids {
		if !c.Allowed(id) {
			wrong = append(wrong, id)
		}
	}
	if len(ids) != c.ExpectedCount || len(wrong) > 0 || conditional > 0 {
		stats.mismatches++
		example := ""
		if len(wrong) > 0 {
			example = fmt.Sprintf(", e.g. %s", wrong[0])
		}
		w.state.addMismatch("lookup %s: got %d resources (%d not expected%s, %d conditional), expected %d",
			c, len(ids), len(wrong), example, conditional, c.ExpectedCount)
	}
}

// lookupAll reads the whole LookupResources stream and returns the
// distinct resource IDs and how many results were conditional.
func (w *worker) lookupAll(ctx context.Context, c LookupCase) (map[string]struct{}, int, error) {
	stream, err := w.client.LookupResources(ctx, &v1.LookupResourcesRequest{
		Consistency:        w.state.opts.Consistency,
		ResourceObjectType: c.ResourceType,
		Permission:         c.Permission,
		Subject:            c.Subject,
	})
	if err != nil {
		return nil, 0, err
	}
	ids := make(map[string]struct{})
	conditional := 0
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return ids, conditional, nil
		}
		if err != nil {
			return nil, 0, err
		}
		ids[resp.GetResourceObjectId()] = struct{}{}
		if resp.GetPermissionship() == v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION {
			conditional++
		}
	}
}

// write creates a relationship, or deletes the one its previous write
// created, so the data set keeps its size.
func (w *worker) write(callCtx, runCtx context.Context) {
	op := v1.RelationshipUpdate_OPERATION_DELETE
	rel := w.pending
	if rel == nil {
		op = v1.RelationshipUpdate_OPERATION_TOUCH
		rel = w.state.opts.Scenario.NextWrite(w.rand, w.id)
	}
	start := time.Now()
	_, err := w.client.WriteRelationships(callCtx, &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{{Operation: op, Relationship: rel}},
	})
	if !w.finish(KindWrite, runCtx, err, time.Since(start)) {
		return
	}
	if op == v1.RelationshipUpdate_OPERATION_TOUCH {
		w.pending = rel
	} else {
		w.pending = nil
	}
}

// deletePending deletes the relationship the worker's last write created,
// if any, outside the measured run.
func (w *worker) deletePending() error {
	if w.pending == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.state.opts.Timeout)
	defer cancel()
	_, err := w.client.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{{Operation: v1.RelationshipUpdate_OPERATION_DELETE, Relationship: w.pending}},
	})
	if err == nil {
		w.pending = nil
	}
	return err
}
