package server

import (
	"context"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"

	"github.com/mandate-iam/mandate/graph"
)

type watchService struct {
	v1.UnimplementedWatchServiceServer
	s *Server
}

// checkpointInterval is how often an idle watch with checkpoints enabled
// reports that it is caught up.
const checkpointInterval = time.Second

type watchOptions struct {
	objectTypes   map[string]bool
	filters       []graph.Filter
	relationships bool
	schema        bool
	checkpoints   bool
}

func (o *watchOptions) selects(r *graph.Relationship) bool {
	if len(o.objectTypes) > 0 && !o.objectTypes[r.ResourceType] {
		return false
	}
	if len(o.filters) == 0 {
		return true
	}
	for i := range o.filters {
		if o.filters[i].Matches(r.Key) {
			return true
		}
	}
	return false
}

func (ws *watchService) Watch(req *v1.WatchRequest, stream grpc.ServerStreamingServer[v1.WatchResponse]) error {
	ctx := stream.Context()
	if err := requireAdmin(ctx, "Watch"); err != nil {
		return err
	}
	if err := validateProto(req); err != nil {
		return err
	}
	if len(req.GetOptionalObjectTypes()) > 0 && len(req.GetOptionalRelationshipFilters()) > 0 {
		return invalidArgument("watch: set either optional_object_types or optional_relationship_filters, not both")
	}
	head, err := ws.s.viewFor(ctx, nil)
	if err != nil {
		return err
	}
	opts := watchOptions{objectTypes: map[string]bool{}}
	for _, t := range req.GetOptionalObjectTypes() {
		if head.schema != nil && head.schema.Definition(t) == nil {
			return failedPrecondition("watch: object definition %q not found", t)
		}
		opts.objectTypes[t] = true
	}
	for _, f := range req.GetOptionalRelationshipFilters() {
		if err := validateFilter(head.schema, f); err != nil {
			return err
		}
		opts.filters = append(opts.filters, filterFromProto(f))
	}
	for _, k := range req.GetOptionalUpdateKinds() {
		switch k {
		case v1.WatchKind_WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES:
			opts.relationships = true
		case v1.WatchKind_WATCH_KIND_INCLUDE_SCHEMA_UPDATES:
			opts.schema = true
		case v1.WatchKind_WATCH_KIND_INCLUDE_CHECKPOINTS:
			opts.checkpoints = true
		}
	}
	if !opts.schema && !opts.checkpoints {
		opts.relationships = true
	}

	last := ws.s.graph.Head()
	if start := req.GetOptionalStartCursor(); start != nil {
		rev, err := decodeToken(start)
		if err != nil {
			return err
		}
		if rev > last {
			// A token from another server on a shared datastore may be
			// ahead of this one; wait until it is applied here.
			if err := ws.s.graph.WaitForRevision(ctx, rev); err != nil {
				return err
			}
		}
		last = rev
	}
	for {
		err := ws.s.graph.Changes(last, func(c graph.Commit) error {
			last = c.Revision
			return ws.send(stream, &opts, c)
		})
		if err != nil {
			return err
		}
		if ws.s.graph.Head() > last {
			continue
		}
		if opts.checkpoints {
			if err := stream.Send(&v1.WatchResponse{ChangesThrough: encodeToken(last), IsCheckpoint: true}); err != nil {
				return err
			}
		}
		waitCtx, cancel := contextWithTimeout(ctx, opts.checkpoints)
		err = ws.s.graph.WaitForChange(waitCtx, last)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// send streams one commit, filtered by the watch options. A commit with
// nothing selected is skipped.
func (ws *watchService) send(stream grpc.ServerStreamingServer[v1.WatchResponse], opts *watchOptions, c graph.Commit) error {
	resp := &v1.WatchResponse{ChangesThrough: encodeToken(c.Revision)}
	if opts.relationships {
		for _, ch := range c.Changes {
			if !opts.selects(ch.Relationship) {
				continue
			}
			op := v1.RelationshipUpdate_OPERATION_TOUCH
			if ch.Op == graph.OpDelete {
				op = v1.RelationshipUpdate_OPERATION_DELETE
			}
			resp.Updates = append(resp.Updates, &v1.RelationshipUpdate{
				Operation: op, Relationship: relationshipToProto(ch.Relationship),
			})
		}
	}
	if opts.schema && c.Schema != nil {
		resp.SchemaUpdated = true
	}
	if len(resp.Updates) == 0 && !resp.SchemaUpdated {
		return nil
	}
	return stream.Send(resp)
}

// contextWithTimeout bounds an idle wait by the checkpoint interval when
// checkpoints are on, so the watch can report that it is caught up.
func contextWithTimeout(ctx context.Context, checkpoints bool) (context.Context, context.CancelFunc) {
	if checkpoints {
		return context.WithTimeout(ctx, checkpointInterval)
	}
	return context.WithCancel(ctx)
}
