package loadtest

import (
	"math"
	"testing"
	"time"
)

func TestHistogramEmpty(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("p50 of empty = %v, want 0", got)
	}
	if got := h.Max(); got != 0 {
		t.Errorf("max of empty = %v, want 0", got)
	}
	if got := h.Mean(); got != 0 {
		t.Errorf("mean of empty = %v, want 0", got)
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{0.01, 1},
		{0.50, 50},
		{0.95, 95},
		{0.99, 99},
		{1.00, 100},
		{0, 1},
	}
	for _, c := range cases {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := h.Count(); got != 100 {
		t.Errorf("count = %d, want 100", got)
	}
	if got := h.Mean(); got != 50 {
		t.Errorf("mean = %v, want 50 (50.5 truncated)", got)
	}
}

func TestHistogramRelativePrecision(t *testing.T) {
	var h Histogram
	// 1µs to 100ms in steps of 1µs: the true nearest-rank quantile q is
	// ceil(q*n) microseconds.
	const n = 100_000
	for v := 1; v <= n; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
		want := time.Duration(math.Ceil(q*n)) * time.Microsecond
		got := h.Quantile(q)
		if got < want {
			t.Errorf("quantile(%v) = %v, below the true %v", q, got, want)
		}
		if limit := want + want/subBucketCount; got > limit {
			t.Errorf("quantile(%v) = %v, more than 1/%d above the true %v", q, got, subBucketCount, want)
		}
	}
	if got := h.Max(); got != n*time.Microsecond {
		t.Errorf("max = %v, want %v", got, n*time.Microsecond)
	}
	if got := h.Min(); got != time.Microsecond {
		t.Errorf("min = %v, want 1µs", got)
	}
}

func TestHistogramQuantileClampedToMax(t *testing.T) {
	var h Histogram
	h.Record(1000 * time.Microsecond) // not at the top of its bucket
	if got := h.Quantile(0.99); got != 1000*time.Microsecond {
		t.Errorf("p99 of one value = %v, want the value, 1ms", got)
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, both Histogram
	for v := 1; v <= 1000; v++ {
		d := time.Duration(v) * 37 * time.Microsecond
		if v%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		both.Record(d)
	}
	a.Merge(&b)
	if a.Count() != both.Count() {
		t.Errorf("merged count = %d, want %d", a.Count(), both.Count())
	}
	if a.Min() != both.Min() {
		t.Errorf("merged min = %v, want %v", a.Min(), both.Min())
	}
	if a.Max() != both.Max() {
		t.Errorf("merged max = %v, want %v", a.Max(), both.Max())
	}
	for _, q := range []float64{0.5, 0.95, 0.99} {
		if got, want := a.Quantile(q), both.Quantile(q); got != want {
			t.Errorf("merged quantile(%v) = %v, want %v", q, got, want)
		}
	}
	var empty Histogram
	empty.Merge(&a)
	if empty.Quantile(0.5) != a.Quantile(0.5) {
		t.Errorf("merge into empty: p50 = %v, want %v", empty.Quantile(0.5), a.Quantile(0.5))
	}
}

func TestHistogramExtremeValues(t *testing.T) {
	var h Histogram
	h.Record(-5)
	h.Record(math.MaxInt64)
	if got := h.Min(); got != 0 {
		t.Errorf("min after a negative value = %v, want 0", got)
	}
	if got := h.Quantile(1); got != math.MaxInt64 {
		t.Errorf("max quantile = %d, want MaxInt64", int64(got))
	}
	if got := h.Quantile(0.75); got != math.MaxInt64 {
		t.Errorf("p75 = %d, want MaxInt64", int64(got))
	}
}

func TestBucketBoundsContainValue(t *testing.T) {
	values := []int64{0, 1, 127, 128, 129, 255, 256, 1000, 123_456_789, math.MaxInt64 / 3, math.MaxInt64}
	for _, v := range values {
		i := bucketIndex(v)
		low, high := bucketBounds(i)
		if v < low || v > high {
			t.Errorf("value %d in bucket %d with bounds [%d, %d]", v, i, low, high)
		}
		if v >= subBucketCount && float64(high-low) > float64(low)/subBucketCount {
			t.Errorf("bucket %d [%d, %d] is wider than 1/%d of its low end", i, low, high, subBucketCount)
		}
	}
}
