package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// Hashing follows RFC 9162, section 2.1.1: a leaf hash is
// SHA-256(0x00 || data), an interior node SHA-256(0x01 || left || right),
// and a tree of n leaves splits at the largest power of two below n.

// Hash is a SHA-256 digest.
type Hash [sha256.Size]byte

// LeafHash returns the hash of a leaf holding data.
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

func nodeHash(left, right Hash) Hash {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(left[:])
	h.Write(right[:])
	var out Hash
	h.Sum(out[:0])
	return out
}

// emptyRoot is the hash of a tree with no leaves, SHA-256 of nothing.
var emptyRoot = Hash(sha256.Sum256(nil))

// splitPoint returns the largest power of two smaller than n, for n > 1.
func splitPoint(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}

// RootOf returns the root hash of the tree over leaves.
func RootOf(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return emptyRoot
	case 1:
		return leaves[0]
	}
	k := splitPoint(uint64(len(leaves)))
	return nodeHash(RootOf(leaves[:k]), RootOf(leaves[k:]))
}

// frontier is the roots of the perfect subtrees that make up a tree, the
// largest first, so appending a leaf and computing the root take
// O(log n) work and memory.
type frontier struct {
	size  uint64
	nodes []Hash
}

func (f *frontier) append(leaf Hash) {
	f.nodes = append(f.nodes, leaf)
	// Each trailing one bit of the old size is a pair of equal subtrees
	// to merge.
	for s := f.size; s&1 == 1; s >>= 1 {
		n := len(f.nodes)
		f.nodes = append(f.nodes[:n-2], nodeHash(f.nodes[n-2], f.nodes[n-1]))
	}
	f.size++
}

func (f *frontier) root() Hash {
	if len(f.nodes) == 0 {
		return emptyRoot
	}
	acc := f.nodes[len(f.nodes)-1]
	for i := len(f.nodes) - 2; i >= 0; i-- {
		acc = nodeHash(f.nodes[i], acc)
	}
	return acc
}

// InclusionProof returns the audit path of leaf index m in the tree over
// leaves (RFC 9162, section 2.1.3.1).
func InclusionProof(m uint64, leaves []Hash) ([]Hash, error) {
	if m >= uint64(len(leaves)) {
		return nil, fmt.Errorf("inclusion proof: leaf %d is outside a tree of %d leaves", m, len(leaves))
	}
	return inclusionPath(m, leaves), nil
}

func inclusionPath(m uint64, leaves []Hash) []Hash {
	n := uint64(len(leaves))
	if n <= 1 {
		return nil
	}
	k := splitPoint(n)
	if m < k {
		return append(inclusionPath(m, leaves[:k]), RootOf(leaves[k:]))
	}
	return append(inclusionPath(m-k, leaves[k:]), RootOf(leaves[:k]))
}

// ErrProof is returned when a proof does not verify.
var ErrProof = errors.New("proof does not verify")

// VerifyInclusion checks that leaf is at index m of a tree of size n with
// the given root (RFC 9162, section 2.1.3.2).
func VerifyInclusion(m, n uint64, leaf Hash, proof []Hash, root Hash) error {
	if m >= n {
		return fmt.Errorf("%w: leaf %d is outside a tree of %d leaves", ErrProof, m, n)
	}
	fn, sn := m, n-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: the path is longer than the tree is deep", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || r != root {
		return fmt.Errorf("%w: leaf %d does not lead to the root of the tree of %d leaves", ErrProof, m, n)
	}
	return nil
}

// ConsistencyProof proves that the tree of the first m leaves is a prefix
// of the tree over all leaves (RFC 9162, section 2.1.4.1).
func ConsistencyProof(m uint64, leaves []Hash) ([]Hash, error) {
	n := uint64(len(leaves))
	if m == 0 || m > n {
		return nil, fmt.Errorf("consistency proof: size %d is not between 1 and %d", m, n)
	}
	return subproof(m, leaves, true), nil
}

func subproof(m uint64, leaves []Hash, complete bool) []Hash {
	n := uint64(len(leaves))
	if m == n {
		if complete {
			return nil
		}
		return []Hash{RootOf(leaves)}
	}
	k := splitPoint(n)
	if m <= k {
		return append(subproof(m, leaves[:k], complete), RootOf(leaves[k:]))
	}
	return append(subproof(m-k, leaves[k:], false), RootOf(leaves[:k]))
}

// VerifyConsistency checks a consistency proof between a tree of size m
// with root oldRoot and a tree of size n with root newRoot (RFC 9162,
// section 2.1.4.2).
func VerifyConsistency(m, n uint64, oldRoot, newRoot Hash, proof []Hash) error {
	switch {
	case m > n:
		return fmt.Errorf("%w: old size %d is larger than new size %d", ErrProof, m, n)
	case m == n:
		if len(proof) != 0 || oldRoot != newRoot {
			return fmt.Errorf("%w: trees of equal size %d have different roots", ErrProof, m)
		}
		return nil
	case m == 0:
		return nil
	}
	if m&(m-1) == 0 {
		// A power of two: the old root is the first node of the path.
		proof = append([]Hash{oldRoot}, proof...)
	}
	if len(proof) == 0 {
		return fmt.Errorf("%w: empty consistency proof", ErrProof)
	}
	fn, sn := m-1, n-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: the proof is longer than the tree is deep", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			fr = nodeHash(c, fr)
			sr = nodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = nodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || !bytes.Equal(fr[:], oldRoot[:]) || !bytes.Equal(sr[:], newRoot[:]) {
		return fmt.Errorf("%w: tree of size %d is not a prefix of tree of size %d", ErrProof, m, n)
	}
	return nil
}

// MarshalText encodes the hash as hex.
func (h Hash) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(h[:])), nil
}

// UnmarshalText decodes a hex hash.
func (h *Hash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return fmt.Errorf("invalid hash %q: want %d hex digits", b, 2*len(h))
	}
	_, err := hex.Decode(h[:], b)
	return err
}
