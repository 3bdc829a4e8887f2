package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Client is the part of the authzed-go v1 client that the load test uses;
// *authzed.Client implements it.
type Client interface {
	v1.PermissionsServiceClient
	v1.SchemaServiceClient
}

// importMessageSize is the number of relationships per message of an
// ImportBulkRelationships stream, and writeChunkSize the number of updates
// per WriteRelationships call when the server has no import. Both SpiceDB
// and Mandate accept 1000 updates per write by default.
const (
	importMessageSize = 1000
	writeChunkSize    = 1000
)

// LoadOptions configures Load.
type LoadOptions struct {
	// BatchSize is the number of relationships per ImportBulkRelationships
	// call; each call is one transaction on the server.
	BatchSize int
	// Progress receives a line every ProgressInterval; nil for none.
	Progress         io.Writer
	ProgressInterval time.Duration
}

// Load writes the scenario's schema and then its relationships: by
// ImportBulkRelationships in calls of opts.BatchSize relationships, or by
// WriteRelationships when the server does not implement import. It fails
// if any relationship already exists, which is what loading twice does.
func Load(ctx context.Context, client Client, s Scenario, opts LoadOptions) (*LoadReport, error) {
	if opts.BatchSize <= 0 {
		return nil, fmt.Errorf("invalid load batch size %d: must be at least 1", opts.BatchSize)
	}
	if _, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: s.Schema()}); err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return nil, fmt.Errorf("write schema of scenario %s: %w (a Mandate server that installed its default Agent IAM schema keeps that schema's core: start it on an empty data directory with --default-schema=false)", s.Name(), err)
		}
		return nil, fmt.Errorf("write schema of scenario %s: %w", s.Name(), err)
	}

	start := time.Now()
	var loaded atomic.Int64
	stopProgress := startProgress(opts.Progress, opts.ProgressInterval, func(elapsed time.Duration) string {
		n := loaded.Load()
		return fmt.Sprintf("loading: %d/%d relationships in %.0fs (%.0f/s)",
			n, s.Count(), elapsed.Seconds(), float64(n)/elapsed.Seconds())
	})
	defer stopProgress()

	method := "import"
	batch := make([]*v1.Relationship, 0, opts.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var err error
		if method == "import" {
			err = importBatch(ctx, client, batch)
			if status.Code(err) == codes.Unimplemented && loaded.Load() == 0 {
				method = "write"
			}
		}
		if method == "write" {
			err = writeBatch(ctx, client, batch)
		}
		if err != nil {
			if status.Code(err) == codes.AlreadyExists {
				return fmt.Errorf("load relationships: %w (the data set seems loaded already: pass --skip-load to reuse it)", err)
			}
			return fmt.Errorf("load relationships %d to %d by %s: %w", loaded.Load()+1, loaded.Load()+int64(len(batch)), method, err)
		}
		loaded.Add(int64(len(batch)))
		batch = batch[:0]
		return nil
	}
	err := s.Relationships(func(rel *v1.Relationship) error {
		batch = append(batch, rel)
		if len(batch) < opts.BatchSize {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	return &LoadReport{
		Relationships: int(loaded.Load()),
		Method:        method,
		Seconds:       elapsed.Seconds(),
		PerSecond:     float64(loaded.Load()) / elapsed.Seconds(),
	}, nil
}

func importBatch(ctx context.Context, client Client, rels []*v1.Relationship) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream if a send fails
	stream, err := client.ImportBulkRelationships(ctx)
	if err != nil {
		return err
	}
	for start := 0; start < len(rels); start += importMessageSize {
		end := min(start+importMessageSize, len(rels))
		if err := stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: rels[start:end]}); err != nil {
			// A failed Send returns io.EOF; the server's error comes from
			// CloseAndRecv.
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if got := resp.GetNumLoaded(); got != uint64(len(rels)) {
		return fmt.Errorf("import loaded %d of %d relationships", got, len(rels))
	}
	return nil
}

func writeBatch(ctx context.Context, client Client, rels []*v1.Relationship) error {
	for start := 0; start < len(rels); start += writeChunkSize {
		end := min(start+writeChunkSize, len(rels))
		updates := make([]*v1.RelationshipUpdate, 0, end-start)
		for _, rel := range rels[start:end] {
			updates = append(updates, &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_CREATE, Relationship: rel})
		}
		if _, err := client.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates}); err != nil {
			return err
		}
	}
	return nil
}

// Consistency modes that --consistency accepts.
const (
	ConsistencyMinimizeLatency = "minimize_latency"
	ConsistencyAtLeastAsFresh  = "at_least_as_fresh"
	ConsistencyFully           = "fully_consistent"
)

// readyTimeout bounds how long Prepare waits for the data set to become
// visible at the chosen consistency. SpiceDB serves minimize_latency from
// a revision up to its quantization window old (5s by default).
const readyTimeout = 60 * time.Second

// Prepare returns the consistency for the run's requests once the loaded
// data set is visible at it. It touches the scenario's marker relationship
// to get a ZedToken as fresh as the data, which at_least_as_fresh uses,
// and then repeats the scenario's ReadyCheck until it is allowed. It fails
// when the check stays denied, which means the server holds another data
// set or none.
func Prepare(ctx context.Context, client Client, s Scenario, mode string) (*v1.Consistency, error) {
	resp, err := client.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{{
		Operation:    v1.RelationshipUpdate_OPERATION_TOUCH,
		Relationship: s.Marker(),
	}}})
	if err != nil {
		return nil, fmt.Errorf("touch marker relationship %s: %w", FormatRelationship(s.Marker()), err)
	}
	var consistency *v1.Consistency
	switch mode {
	case ConsistencyMinimizeLatency:
		consistency = &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}
	case ConsistencyAtLeastAsFresh:
		consistency = &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: resp.GetWrittenAt()}}
	case ConsistencyFully:
		consistency = &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	default:
		return nil, fmt.Errorf("invalid consistency %q: use %s, %s or %s",
			mode, ConsistencyMinimizeLatency, ConsistencyAtLeastAsFresh, ConsistencyFully)
	}

	ready := s.ReadyCheck()
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := client.CheckPermission(ctx, &v1.CheckPermissionRequest{
			Consistency: consistency,
			Resource:    ready.Resource,
			Permission:  ready.Permission,
			Subject:     ready.Subject,
		})
		if err != nil {
			return nil, fmt.Errorf("check that the data set is loaded (%s): %w", ready, err)
		}
		if resp.GetPermissionship() == v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
			return consistency, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("data set of scenario %s is not loaded: %s returned %s for %s; load it with the same --schema, --relationships and --seed, without --skip-load",
				s.Name(), ready, resp.GetPermissionship(), readyTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startProgress writes line(elapsed) to w every interval until the
// returned function is called. It does nothing when w is nil or interval
// is not positive.
func startProgress(w io.Writer, interval time.Duration, line func(elapsed time.Duration) string) (stop func()) {
	if w == nil || interval <= 0 {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-ticker.C:
				fmt.Fprintln(w, line(now.Sub(start)))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
