package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketRecords = []byte("records")
	bucketLeaves  = []byte("leaves")
	bucketHeads   = []byte("heads")
)

// TreeHead is a signed statement of the log's size and root hash.
type TreeHead struct {
	Size      uint64    `json:"size"`
	Root      Hash      `json:"root"`
	Time      time.Time `json:"time"`
	Signature []byte    `json:"signature"`
}

// signedBytes returns what the signature covers.
func (h *TreeHead) signedBytes() []byte {
	b := make([]byte, 0, 8+32+8)
	b = binary.BigEndian.AppendUint64(b, h.Size)
	b = append(b, h.Root[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Time.UnixNano()))
	return b
}

// SignedBytes returns what the signature covers: the size and the time in
// Unix nanoseconds as big-endian 8-byte integers around the root hash.
func (h *TreeHead) SignedBytes() []byte { return h.signedBytes() }

// Verify checks the head's signature with the log's public key.
func (h *TreeHead) Verify(pub ed25519.PublicKey) error {
	if !ed25519.Verify(pub, h.signedBytes(), h.Signature) {
		return fmt.Errorf("%w: tree head of size %d has an invalid signature", ErrProof, h.Size)
	}
	return nil
}

// Options configures a Log. The zero value batches up to 512 records and
// waits up to 1ms for a batch to fill.
type Options struct {
	// MaxBatch bounds the records one group commit writes.
	MaxBatch int
	// MaxCommitDelay bounds how long the writer waits for a batch to grow
	// back to the size of the previous one before it commits. Zero means
	// 1ms, and a negative value turns the wait off.
	MaxCommitDelay time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Log is an append-only, Merkle-chained decision log in a bbolt file.
//
// Append blocks until its record is fsynced. One goroutine, started by
// Open and stopped by Close, owns the file's writes: it takes every record
// waiting, writes them and a new signed tree head in one transaction, and
// then releases their callers, so the cost of an fsync is shared by all
// records of a batch.
type Log struct {
	dir  string
	db   *bolt.DB
	key  ed25519.PrivateKey
	opts Options

	requests chan *appendRequest
	done     chan struct{}
	wg       sync.WaitGroup

	// closeMu orders queueing against Close: Append and AppendBatch hold
	// it for reading while they queue requests, and Close holds it for
	// writing while it marks the log closed, so no request is queued after
	// the writer's final drain.
	closeMu sync.RWMutex
	closed  bool

	// inconsistent is the mismatch that Open found between the stored
	// leaves, records and latest signed tree head, or nil. Every append
	// fails with it.
	inconsistent error

	// mu guards tree and head, which only the writer goroutine changes.
	mu   sync.RWMutex
	tree frontier
	head TreeHead
}

type appendRequest struct {
	rec *Record
	err chan error
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log is closed")

// ErrInconsistent is returned by Append when the stored records, leaves
// and tree heads do not fit together, which happens when the file was
// changed outside Mandate. Appending would overwrite records or sign a
// tree head over changed ones, so the log accepts no more records.
var ErrInconsistent = errors.New("audit log is inconsistent with its signed tree heads")

// Open opens or creates the log in dir, with the signing key in
// dir/audit-signing.pem (created with mode 0600 on first use).
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.MaxCommitDelay == 0 {
		opts.MaxCommitDelay = time.Millisecond
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(dir, "audit-signing.pem"))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "audit.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open audit log %q: %w", path, err)
	}
	l := &Log{dir: dir, db: db, key: key, opts: opts, requests: make(chan *appendRequest, 4096), done: make(chan struct{})}
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	l.wg.Add(1)
	go l.writer()
	return l, nil
}

func (l *Log) load() error {
	return l.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketLeaves, bucketHeads} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		var gap error
		err := tx.Bucket(bucketLeaves).ForEach(func(k, v []byte) error {
			if gap == nil && (len(k) != 8 || binary.BigEndian.Uint64(k) != l.tree.size) {
				gap = fmt.Errorf("leaf key %x is stored where leaf %d was expected", k, l.tree.size)
			}
			var h Hash
			copy(h[:], v)
			l.tree.append(h)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load audit log: %w", err)
		}
		if _, v := tx.Bucket(bucketHeads).Cursor().Last(); v != nil {
			if err := json.Unmarshal(v, &l.head); err != nil {
				return fmt.Errorf("load audit tree head: %w", err)
			}
		}
		lastRecord, _ := tx.Bucket(bucketRecords).Cursor().Last()
		if problem := l.checkLoaded(gap, lastRecord); problem != "" {
			l.inconsistent = fmt.Errorf("%w: %s; run mandate audit verify, and move the audit directory aside to start a new log",
				ErrInconsistent, problem)
		}
		return nil
	})
}

// checkLoaded compares the tree rebuilt from the stored leaves with the
// latest signed tree head and the last record's key. It returns the first
// mismatch, or "". It reads only keys and heads, so it cannot notice a
// record edited in place; VerifyLog does.
func (l *Log) checkLoaded(leafGap error, lastRecord []byte) string {
	switch {
	case leafGap != nil:
		return leafGap.Error()
	case l.tree.size == 0 && lastRecord == nil:
		return ""
	case lastRecord == nil || len(lastRecord) != 8 || binary.BigEndian.Uint64(lastRecord) != l.tree.size-1:
		return fmt.Sprintf("the last record key is %x but there are %d leaves", lastRecord, l.tree.size)
	case l.head.Size != l.tree.size:
		return fmt.Sprintf("the latest tree head covers %d records but there are %d leaves", l.head.Size, l.tree.size)
	case l.head.Root != l.tree.root():
		return fmt.Sprintf("the root of the %d stored leaves is not the root of the latest tree head", l.tree.size)
	case l.head.Verify(l.PublicKey()) != nil:
		return fmt.Sprintf("the latest tree head, of size %d, has an invalid signature", l.head.Size)
	}
	return ""
}

// PublicKey returns the key that verifies the log's tree heads.
func (l *Log) PublicKey() ed25519.PublicKey { return l.key.Public().(ed25519.PublicKey) }

// Head returns the latest signed tree head.
func (l *Log) Head() TreeHead {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.head
}

// Append adds a record and returns once it is durable, with its sequence
// number set. When ctx ends first, Append returns ctx.Err(), and the
// record may still be written.
func (l *Log) Append(ctx context.Context, rec *Record) error {
	req := &appendRequest{rec: rec, err: make(chan error, 1)}
	if err := l.enqueue(ctx, req); err != nil {
		return err
	}
	return wait(ctx, req)
}

// AppendBatch adds several records and returns once all are durable.
// They share group commits, so a bulk check costs about one fsync.
func (l *Log) AppendBatch(ctx context.Context, recs []*Record) error {
	reqs := make([]*appendRequest, len(recs))
	for i, rec := range recs {
		reqs[i] = &appendRequest{rec: rec, err: make(chan error, 1)}
	}
	if err := l.enqueue(ctx, reqs...); err != nil {
		return err
	}
	var first error
	for _, req := range reqs {
		if err := wait(ctx, req); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// enqueue hands requests to the writer, which sends a result to each one
// it receives, also during Close. When ctx ends midway, the requests already
// queued are still written.
func (l *Log) enqueue(ctx context.Context, reqs ...*appendRequest) error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	if l.inconsistent != nil {
		return l.inconsistent
	}
	for _, req := range reqs {
		select {
		case l.requests <- req:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func wait(ctx context.Context, req *appendRequest) error {
	select {
	case err := <-req.err:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the writer after it has written every queued record. A
// second Close returns ErrClosed.
func (l *Log) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return ErrClosed
	}
	l.closed = true
	close(l.done)
	l.closeMu.Unlock()
	l.wg.Wait()
	return l.db.Close()
}

// writer commits batches until Close.
//
// Callers that append in a loop split into two groups: while one group's
// batch is being committed, the other queues up, so each caller waits for
// two commits. To merge the groups, the writer expects the callers it
// just released to come back, next to those already queued when the
// commit ended, and waits for them up to MaxCommitDelay, and never
// longer than the last commit took. A lone caller never waits, because
// no other request is queued when its commit ends.
func (l *Log) writer() {
	defer l.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var expected int
	var lastCommit time.Duration
	for {
		var batch []*appendRequest
		select {
		case req := <-l.requests:
			batch = append(batch, req)
		case <-l.done:
			l.drain()
			return
		}
		batch = l.fill(batch)
		if delay := min(l.opts.MaxCommitDelay, lastCommit); len(batch) < expected && delay > 0 {
			batch = l.fillUntil(batch, expected, timer, delay)
		}
		start := time.Now()
		l.commit(batch)
		lastCommit = time.Since(start)
		expected = len(batch) + len(l.requests)
	}
}

// fill adds the requests already queued to batch, up to MaxBatch.
func (l *Log) fill(batch []*appendRequest) []*appendRequest {
	for len(batch) < l.opts.MaxBatch {
		select {
		case req := <-l.requests:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// fillUntil adds requests to batch as they arrive, until it holds target
// requests, delay has passed or the log is closing.
func (l *Log) fillUntil(batch []*appendRequest, target int, timer *time.Timer, delay time.Duration) []*appendRequest {
	timer.Reset(delay)
	defer timer.Stop()
	for len(batch) < min(target, l.opts.MaxBatch) {
		select {
		case req := <-l.requests:
			batch = append(batch, req)
		case <-timer.C:
			return batch
		case <-l.done:
			return batch
		}
	}
	return batch
}

// drain writes what is still queued at Close.
func (l *Log) drain() {
	for {
		var batch []*appendRequest
		for len(batch) < l.opts.MaxBatch {
			select {
			case req := <-l.requests:
				batch = append(batch, req)
				continue
			default:
			}
			break
		}
		if len(batch) == 0 {
			return
		}
		l.commit(batch)
	}
}

// commit writes a batch and a new tree head in one transaction, then
// answers every request of the batch.
func (l *Log) commit(batch []*appendRequest) {
	tree := l.tree
	tree.nodes = append([]Hash(nil), l.tree.nodes...)
	var head TreeHead
	err := l.db.Update(func(tx *bolt.Tx) error {
		records, leaves := tx.Bucket(bucketRecords), tx.Bucket(bucketLeaves)
		// Keys only grow, so the batch overwrites nothing when the last
		// stored keys are below the first new one. Open checked that they
		// are, and this catches a file changed while the log is open.
		for _, b := range []*bolt.Bucket{records, leaves} {
			if last, _ := b.Cursor().Last(); last != nil && binary.BigEndian.Uint64(last) >= tree.size {
				return fmt.Errorf("%w: record %d is already stored", ErrInconsistent, tree.size)
			}
		}
		// Keys are appended in increasing order, so a page that splits
		// when full never takes a key again: splitting at bbolt's default
		// of half full would leave every page half empty.
		records.FillPercent, leaves.FillPercent = 1, 1
		keys := make([]byte, 0, 8*len(batch))
		for _, req := range batch {
			req.rec.Seq = tree.size
			data, err := req.rec.encode()
			if err != nil {
				return err
			}
			leaf := LeafHash(data)
			keys = binary.BigEndian.AppendUint64(keys, tree.size)
			key := keys[len(keys)-8:]
			if err := records.Put(key, data); err != nil {
				return err
			}
			if err := leaves.Put(key, leaf[:]); err != nil {
				return err
			}
			tree.append(leaf)
		}
		head = TreeHead{Size: tree.size, Root: tree.root(), Time: l.opts.Clock().UTC()}
		head.Signature = ed25519.Sign(l.key, head.signedBytes())
		data, err := json.Marshal(head)
		if err != nil {
			return err
		}
		heads := tx.Bucket(bucketHeads)
		heads.FillPercent = 1
		return heads.Put(binary.BigEndian.AppendUint64(nil, head.Size), data)
	})
	if err == nil {
		l.mu.Lock()
		l.tree, l.head = tree, head
		l.mu.Unlock()
	} else {
		err = fmt.Errorf("append audit records: %w", err)
	}
	for _, req := range batch {
		req.err <- err
	}
}

func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		pemData := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(path, pemData, 0o600); err != nil {
			return nil, fmt.Errorf("write audit signing key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("read audit signing key %s: not PEM", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read audit signing key %s: %w", path, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("read audit signing key %s: not an Ed25519 key", path)
	}
	return key, nil
}
