package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"
)

// signedHeads returns a head signed with key after every record of data.
func signedHeads(t *testing.T, key ed25519.PrivateKey, data [][]byte) []TreeHead {
	t.Helper()
	var f frontier
	var heads []TreeHead
	for _, d := range data {
		f.append(LeafHash(d))
		h := TreeHead{Size: f.size, Root: f.root(), Time: time.Unix(int64(f.size), 0)}
		h.Signature = ed25519.Sign(key, h.signedBytes())
		heads = append(heads, h)
	}
	return heads
}

func TestVerifierHeadOrder(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var data [][]byte
	for i := range 37 {
		data = append(data, []byte(fmt.Sprintf("record %d", i)))
	}
	heads := signedHeads(t, key, data)

	orders := map[string][]TreeHead{"increasing": heads}
	var reversed []TreeHead
	for i := len(heads) - 1; i >= 0; i-- {
		reversed = append(reversed, heads[i])
	}
	orders["decreasing"] = reversed
	orders["mixed"] = append(append([]TreeHead{heads[20], heads[3]}, heads[30:]...), heads[10])

	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			v := &Verifier{PublicKey: pub}
			for i, d := range data {
				v.AddRecord(uint64(i), d, LeafHash(d))
			}
			for _, h := range order {
				v.AddHead(h)
			}
			report := v.Finish()
			if len(report.Problems) != 0 {
				t.Errorf("problems: %q", report.Problems)
			}
			if want := RootOf(leavesOfData(data)); report.Root != want {
				t.Errorf("root %x, want %x", report.Root, want)
			}
		})
	}

	// A record changed together with its stored leaf is caught by every
	// head that covers it, whatever order the heads come in.
	changed := append([][]byte(nil), data...)
	changed[12] = []byte("changed")
	v := &Verifier{PublicKey: pub}
	for i, d := range changed {
		v.AddRecord(uint64(i), d, LeafHash(d))
	}
	for _, h := range reversed {
		v.AddHead(h)
	}
	problems := v.Finish().Problems
	if got, want := len(problems), len(heads)-12; got != want {
		t.Errorf("%d problems, want one for each of the %d heads from size 13: %q", got, want, problems)
	}
	if len(problems) > 0 && !strings.Contains(problems[0], "tree head of size 37 does not match the records") {
		t.Errorf("first problem %q does not name the head of size 37", problems[0])
	}
}

func leavesOfData(data [][]byte) []Hash {
	out := make([]Hash, len(data))
	for i, d := range data {
		out[i] = LeafHash(d)
	}
	return out
}
