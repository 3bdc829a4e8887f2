package loadtest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestKindStatsReport(t *testing.T) {
	var a, b kindStats
	for v := 1; v <= 50; v++ {
		a.latency.Record(time.Duration(v) * time.Millisecond)
		a.calls++
	}
	for v := 51; v <= 100; v++ {
		b.latency.Record(time.Duration(v) * time.Millisecond)
		b.calls++
	}
	addCount(&a.errors, codes.Unavailable, 2)
	addCount(&b.errors, codes.Unavailable, 1)
	addCount(&b.errors, codes.DeadlineExceeded, 4)
	a.calls += 2
	b.calls += 5
	b.verified, b.mismatches = 10, 1

	var merged kindStats
	merged.merge(&a)
	merged.merge(&b)
	r := merged.report("check", 2*time.Second)

	if r.Calls != 107 {
		t.Errorf("calls = %d, want 107", r.Calls)
	}
	if r.PerSecond != 53.5 {
		t.Errorf("per second = %v, want 53.5", r.PerSecond)
	}
	if r.Latency.P50 < 50 || r.Latency.P50 > 50*(1+1.0/subBucketCount) {
		t.Errorf("p50 = %v ms, want 50 within 1/%d", r.Latency.P50, subBucketCount)
	}
	if r.Latency.P99 < 99 || r.Latency.P99 > 99*(1+1.0/subBucketCount) {
		t.Errorf("p99 = %v ms, want 99 within 1/%d", r.Latency.P99, subBucketCount)
	}
	if r.Latency.Max != 100 {
		t.Errorf("max = %v ms, want 100", r.Latency.Max)
	}
	if r.Latency.Mean != 50.5 {
		t.Errorf("mean = %v ms, want 50.5", r.Latency.Mean)
	}
	if got := r.Errors["Unavailable"]; got != 3 {
		t.Errorf("Unavailable errors = %d, want 3", got)
	}
	if got := r.Errors["DeadlineExceeded"]; got != 4 {
		t.Errorf("DeadlineExceeded errors = %d, want 4", got)
	}
	if r.Verified != 10 || r.Mismatches != 1 {
		t.Errorf("verified, mismatches = %d, %d, want 10, 1", r.Verified, r.Mismatches)
	}
}

func sampleReport(perSecond, p50 float64) *Report {
	check := KindReport{
		Kind: "check", Calls: 1000, PerSecond: perSecond,
		Latency:  LatencyReport{P50: p50, P95: 2 * p50, P99: 3 * p50, Max: 10 * p50, Mean: p50},
		Errors:   map[string]int64{"Unavailable": 2},
		Verified: 900, Mismatches: 1,
	}
	return &Report{
		Target: "127.0.0.1:1", Scenario: "agents", Relationships: 1000, Seed: 1,
		Mix: "check=100", Concurrency: 4, Connections: 1, BulkSize: 10, Consistency: "at_least_as_fresh",
		ElapsedSeconds: 10, StoppedBy: "duration",
		Total:           KindReport{Kind: "total", Calls: 1000, PerSecond: perSecond, Latency: check.Latency, Errors: check.Errors, Verified: 900, Mismatches: 1},
		Kinds:           []KindReport{check, {Kind: "bulk"}, {Kind: "lookup"}, {Kind: "write"}},
		MismatchSamples: []string{"check dataset:d0-s1#read@agent:d0-a2: got NO_PERMISSION, expected HAS_PERMISSION"},
	}
}

func TestReportTextListsFigures(t *testing.T) {
	var out bytes.Buffer
	if err := sampleReport(100, 1.5).WriteText(&out); err != nil {
		t.Fatalf("write text: %v", err)
	}
	text := out.String()
	for _, want := range []string{"scenario agents", "1.500", "4.500", "check errors: Unavailable=2", "mismatch: check dataset:d0-s1"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\n    bulk") {
		t.Errorf("text report lists bulk, which had no calls:\n%s", text)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	var out bytes.Buffer
	want := sampleReport(100, 1.5)
	if err := want.WriteJSON(&out); err != nil {
		t.Fatalf("write json: %v", err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	got, err := ReadReport(path)
	if err != nil {
		t.Fatalf("read report: %v", err)
	}
	if got.Total.Latency != want.Total.Latency {
		t.Errorf("total latency = %+v, want %+v", got.Total.Latency, want.Total.Latency)
	}
	if got.Kinds[0].Errors["Unavailable"] != 2 {
		t.Errorf("check errors = %v, want Unavailable=2", got.Kinds[0].Errors)
	}
	if !strings.Contains(out.String(), `"latency_ms"`) {
		t.Errorf("JSON lacks the latency_ms field:\n%s", out.String())
	}
}

func TestCompareRatiosAndSpread(t *testing.T) {
	a := Series{Name: "mandate", Reports: []*Report{sampleReport(200, 1), sampleReport(300, 2), sampleReport(250, 1.5)}}
	b := Series{Name: "spicedb", Reports: []*Report{sampleReport(100, 3)}}
	var out bytes.Buffer
	if err := Compare(&out, a, b); err != nil {
		t.Fatalf("compare: %v", err)
	}
	text := out.String()
	for _, want := range []string{
		"250 [200, 300]", // throughput median and range of mandate
		"2.50",           // throughput ratio 250/100
		"0.50",           // p50 ratio 1.5/3
		"1.500 [1.000, 2.000]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("comparison lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "warning") {
		t.Errorf("comparison warns about equal settings:\n%s", text)
	}
}

func TestCompareWarnsOnDifferentSettings(t *testing.T) {
	other := sampleReport(100, 3)
	other.Relationships = 2000
	var out bytes.Buffer
	err := Compare(&out, Series{Name: "a", Reports: []*Report{sampleReport(1, 1)}}, Series{Name: "b", Reports: []*Report{other}})
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	if !strings.Contains(out.String(), "warning: run 1 of b has settings") {
		t.Errorf("comparison does not warn about different relationship counts:\n%s", out.String())
	}
}

func TestCompareNeedsReports(t *testing.T) {
	err := Compare(&bytes.Buffer{}, Series{Name: "a"}, Series{Name: "b", Reports: []*Report{sampleReport(1, 1)}})
	if err == nil {
		t.Errorf("compare without reports of a succeeded, want an error")
	}
}

// alwaysAllowedClient allows every check and fails every write with
// Unavailable, to show that wrong results and errors are counted.
type alwaysAllowedClient struct {
	v1.PermissionsServiceClient
	v1.SchemaServiceClient
}

func (alwaysAllowedClient) CheckPermission(context.Context, *v1.CheckPermissionRequest, ...grpc.CallOption) (*v1.CheckPermissionResponse, error) {
	return &v1.CheckPermissionResponse{Permissionship: v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION}, nil
}

func (alwaysAllowedClient) CheckBulkPermissions(_ context.Context, req *v1.CheckBulkPermissionsRequest, _ ...grpc.CallOption) (*v1.CheckBulkPermissionsResponse, error) {
	resp := &v1.CheckBulkPermissionsResponse{}
	for _, item := range req.GetItems() {
		resp.Pairs = append(resp.Pairs, &v1.CheckBulkPermissionsPair{
			Request: item,
			Response: &v1.CheckBulkPermissionsPair_Item{Item: &v1.CheckBulkPermissionsResponseItem{
				Permissionship: v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION,
			}},
		})
	}
	return resp, nil
}

func (alwaysAllowedClient) WriteRelationships(context.Context, *v1.WriteRelationshipsRequest, ...grpc.CallOption) (*v1.WriteRelationshipsResponse, error) {
	return nil, status.Error(codes.Unavailable, "no writes")
}

func TestRunCountsWrongResultsAndErrors(t *testing.T) {
	scenario, err := NewScenario("agents", 2000, 5)
	if err != nil {
		t.Fatalf("new scenario: %v", err)
	}
	report, err := Run(context.Background(), []Client{alwaysAllowedClient{}}, RunOptions{
		Scenario:    scenario,
		Mix:         Mix{KindCheck: 2, KindBulk: 1, KindWrite: 1},
		Concurrency: 2,
		Duration:    time.Minute,
		MaxRequests: 400,
		BulkSize:    4,
		Timeout:     time.Second,
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	check, bulk, write := report.Kinds[KindCheck], report.Kinds[KindBulk], report.Kinds[KindWrite]
	if check.Mismatches == 0 {
		t.Errorf("check mismatches = 0, want some: the client allows denied checks")
	}
	if check.Mismatches >= check.Verified {
		t.Errorf("check mismatches = %d of %d verified, want fewer: allowed checks are right", check.Mismatches, check.Verified)
	}
	if bulk.Mismatches == 0 {
		t.Errorf("bulk mismatches = 0, want some")
	}
	if got := write.Errors["Unavailable"]; got != write.Calls || got == 0 {
		t.Errorf("write Unavailable errors = %d, want all %d write calls", got, write.Calls)
	}
	if report.Total.Mismatches != check.Mismatches+bulk.Mismatches {
		t.Errorf("total mismatches = %d, want %d", report.Total.Mismatches, check.Mismatches+bulk.Mismatches)
	}
	if len(report.MismatchSamples) == 0 || len(report.MismatchSamples) > maxMismatchSamples {
		t.Errorf("mismatch samples = %d, want 1 to %d", len(report.MismatchSamples), maxMismatchSamples)
	}
	if report.Total.Calls != 400 {
		t.Errorf("calls = %d, want 400", report.Total.Calls)
	}
}
