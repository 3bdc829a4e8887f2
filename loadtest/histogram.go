package loadtest

import (
	"math"
	"math/bits"
	"time"
)

// subBucketBits sets the histogram's precision: each power-of-two range of
// values is split into 2^subBucketBits equal buckets, so a recorded value
// is known to within 1/128 (0.8%) of itself. Values below 2^subBucketBits
// are stored exactly.
const subBucketBits = 7

const subBucketCount = 1 << subBucketBits

// Histogram counts latencies in log-linear buckets, in the manner of an HDR
// histogram: constant relative precision from one nanosecond to the
// largest int64, with memory that grows only to the largest bucket used.
// The zero value is empty and ready to use. A Histogram is not safe for
// concurrent use, so each worker records into its own and the results are
// merged.
type Histogram struct {
	counts []uint64
	total  uint64
	sum    float64 // nanoseconds, as float64 so that it cannot overflow
	min    int64
	max    int64
}

// bucketIndex returns the bucket of value v (nanoseconds, at least 0).
func bucketIndex(v int64) int {
	if v < subBucketCount {
		return int(v)
	}
	// shift is how many low bits the bucket drops, so that the top
	// subBucketBits+1 bits of v pick the bucket.
	shift := bits.Len64(uint64(v)) - subBucketBits - 1
	mantissa := int(v >> shift) // in [subBucketCount, 2*subBucketCount)
	return (shift+1)*subBucketCount + mantissa - subBucketCount
}

// bucketBounds returns the lowest and highest value that fall in bucket i.
func bucketBounds(i int) (low, high int64) {
	if i < subBucketCount {
		return int64(i), int64(i)
	}
	shift := i/subBucketCount - 1
	mantissa := int64(subBucketCount + i%subBucketCount)
	low = mantissa << shift
	// The last bucket ends at the largest int64; computing its end as
	// (mantissa+1)<<shift - 1 would overflow.
	if mantissa+1 == 2*subBucketCount && shift == 63-subBucketBits-1 {
		return low, math.MaxInt64
	}
	high = (mantissa+1)<<shift - 1
	return low, high
}

// Record adds one latency. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	i := bucketIndex(v)
	if i >= len(h.counts) {
		grown := make([]uint64, i+1)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

// Merge adds every value recorded in other to h.
func (h *Histogram) Merge(other *Histogram) {
	if other.total == 0 {
		return
	}
	if len(other.counts) > len(h.counts) {
		grown := make([]uint64, len(other.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range other.counts {
		h.counts[i] += c
	}
	if h.total == 0 || other.min < h.min {
		h.min = other.min
	}
	if other.max > h.max {
		h.max = other.max
	}
	h.total += other.total
	h.sum += other.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max returns the largest recorded value, exactly; zero when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest recorded value, exactly; zero when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean returns the exact mean of the recorded values; zero when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value at quantile q (0.5 for the median, 0.99 for
// p99) by the nearest-rank rule: the smallest recorded value v such that
// at least q of all values are at most v. The result is the highest value
// of v's bucket, clamped to the recorded min and max, so it overstates v
// by at most 1/128 of v. An empty histogram returns zero.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	switch {
	case q <= 0:
		return time.Duration(h.min)
	case q >= 1:
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		_, high := bucketBounds(i)
		high = min(high, h.max)
		high = max(high, h.min)
		return time.Duration(high)
	}
	return time.Duration(h.max)
}
