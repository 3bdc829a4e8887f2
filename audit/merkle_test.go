package audit

import (
	"errors"
	"fmt"
	"testing"
)

func leavesOf(n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		out[i] = LeafHash([]byte(fmt.Sprintf("record %d", i)))
	}
	return out
}

func TestFrontierMatchesRoot(t *testing.T) {
	var f frontier
	leaves := leavesOf(70)
	if f.root() != RootOf(nil) {
		t.Fatal("empty frontier root differs from RootOf(nil)")
	}
	for i, l := range leaves {
		f.append(l)
		if got, want := f.root(), RootOf(leaves[:i+1]); got != want {
			t.Fatalf("size %d: frontier root %x, want %x", i+1, got, want)
		}
	}
}

func TestInclusionProofs(t *testing.T) {
	for n := 1; n <= 33; n++ {
		leaves := leavesOf(n)
		root := RootOf(leaves)
		for m := 0; m < n; m++ {
			proof, err := InclusionProof(uint64(m), leaves)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(uint64(m), uint64(n), leaves[m], proof, root); err != nil {
				t.Fatalf("n=%d m=%d: %v", n, m, err)
			}
			wrong := LeafHash([]byte("forged"))
			if err := VerifyInclusion(uint64(m), uint64(n), wrong, proof, root); !errors.Is(err, ErrProof) {
				t.Fatalf("n=%d m=%d: forged leaf verified", n, m)
			}
		}
	}
}

func TestConsistencyProofs(t *testing.T) {
	for n := 1; n <= 33; n++ {
		leaves := leavesOf(n)
		newRoot := RootOf(leaves)
		for m := 1; m <= n; m++ {
			proof, err := ConsistencyProof(uint64(m), leaves)
			if err != nil {
				t.Fatal(err)
			}
			oldRoot := RootOf(leaves[:m])
			if err := VerifyConsistency(uint64(m), uint64(n), oldRoot, newRoot, proof); err != nil {
				t.Fatalf("m=%d n=%d: %v", m, n, err)
			}
			if m < n {
				tampered := append([]Hash(nil), leaves...)
				tampered[m-1] = LeafHash([]byte("edited"))
				if err := VerifyConsistency(uint64(m), uint64(n), RootOf(tampered[:m]), newRoot, proof); !errors.Is(err, ErrProof) {
					t.Fatalf("m=%d n=%d: edited old tree verified", m, n)
				}
			}
		}
	}
}
