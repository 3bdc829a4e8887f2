package audit

import (
	"crypto/ed25519"
	"fmt"
)

// Report is the outcome of verifying a whole log.
type Report struct {
	Records uint64
	Heads   int
	Root    Hash
	// Problems lists every inconsistency found; an empty list means the
	// log verified.
	Problems []string
}

// Verifier checks a log from its parts: every record's bytes, and the
// signed tree heads. It trusts nothing but the public key.
type Verifier struct {
	PublicKey ed25519.PublicKey
	leaves    []Hash
	// prefix is the tree over the first prefix.size leaves. Heads come in
	// increasing size, so each one extends it instead of hashing the
	// whole tree again.
	prefix frontier
	report Report
}

// rootAt returns the root of the tree over the first size leaves.
func (v *Verifier) rootAt(size uint64) Hash {
	if size < v.prefix.size {
		return RootOf(v.leaves[:size])
	}
	for v.prefix.size < size {
		v.prefix.append(v.leaves[v.prefix.size])
	}
	return v.prefix.root()
}

func (v *Verifier) problem(format string, args ...any) {
	if len(v.report.Problems) < 100 {
		v.report.Problems = append(v.report.Problems, fmt.Sprintf(format, args...))
	}
}

// AddRecord feeds the next record, by sequence, with its raw bytes and the
// leaf hash the log stored for it (zero when unknown).
func (v *Verifier) AddRecord(seq uint64, data []byte, stored Hash) {
	want := uint64(len(v.leaves))
	if seq != want {
		v.problem("record %d found where record %d was expected: a record was removed or reordered", seq, want)
	}
	leaf := LeafHash(data)
	if stored != (Hash{}) && stored != leaf {
		v.problem("record %d does not match its stored leaf hash: the record was edited", seq)
	}
	v.leaves = append(v.leaves, leaf)
}

// AddHead checks a signed tree head against the records fed so far.
func (v *Verifier) AddHead(h TreeHead) {
	v.report.Heads++
	if err := h.Verify(v.PublicKey); err != nil {
		v.problem("%v", err)
		return
	}
	if h.Size > uint64(len(v.leaves)) {
		v.problem("tree head of size %d covers more records than the %d present: records were removed", h.Size, len(v.leaves))
		return
	}
	if v.rootAt(h.Size) != h.Root {
		v.problem("tree head of size %d does not match the records: a record up to %d was edited or reordered", h.Size, h.Size-1)
	}
}

// Finish returns the report.
func (v *Verifier) Finish() Report {
	v.report.Records = uint64(len(v.leaves))
	v.report.Root = v.rootAt(uint64(len(v.leaves)))
	return v.report
}

// VerifyLog checks every record and every tree head of l, and that the
// latest head covers every record.
func VerifyLog(l *Log, pub ed25519.PublicKey) (Report, error) {
	v := &Verifier{PublicKey: pub}
	if err := l.RawRecords(func(seq uint64, data []byte, leaf Hash) error {
		v.AddRecord(seq, data, leaf)
		return nil
	}); err != nil {
		return Report{}, err
	}
	heads, err := l.Heads()
	if err != nil {
		return Report{}, err
	}
	for _, h := range heads {
		v.AddHead(h)
	}
	report := v.Finish()
	if len(heads) > 0 && heads[len(heads)-1].Size != report.Records {
		report.Problems = append(report.Problems, fmt.Sprintf(
			"the latest tree head covers %d records but %d are present", heads[len(heads)-1].Size, report.Records))
	}
	return report, nil
}
