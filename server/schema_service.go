package server

import (
	"context"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
	"github.com/mandate-iam/mandate/schema"
)

type schemaService struct {
	v1.UnimplementedSchemaServiceServer
	s *Server
}

func (ss *schemaService) ReadSchema(ctx context.Context, req *v1.ReadSchemaRequest) (*v1.ReadSchemaResponse, error) {
	snap := ss.s.graph.HeadSnapshot(ss.s.cfg.Clock())
	if snap.SchemaText == "" {
		return nil, status.Error(codes.NotFound, "no schema has been defined: call WriteSchema first")
	}
	return &v1.ReadSchemaResponse{SchemaText: snap.SchemaText, ReadAt: encodeToken(snap.Revision)}, nil
}

func (ss *schemaService) WriteSchema(ctx context.Context, req *v1.WriteSchemaRequest) (*v1.WriteSchemaResponse, error) {
	head, err := ss.s.viewFor(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := ss.s.authorizeByGraph(ctx, head, "write_schema", "WriteSchema"); err != nil {
		return nil, err
	}
	if err := validateProto(req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.GetSchema()) == "" {
		return nil, invalidArgument("write schema: schema text is empty")
	}
	compiled, err := schema.Compile(ctx, req.GetSchema())
	if err != nil {
		return nil, invalidArgument("write schema: %v", err)
	}
	rev, err := ss.s.graph.Update(ctx, func(tx *graph.Tx) error {
		current, err := ss.s.schemas.get(ctx, tx.Snapshot().SchemaText)
		if err != nil {
			return err
		}
		if current != nil && current.HasAgentTypes() && hasAgents(tx.Snapshot()) {
			if err := schema.CheckAgentCore(compiled); err != nil {
				return failedPrecondition("write schema: %v", err)
			}
		}
		if err := checkSchemaKeepsData(tx.Snapshot(), compiled); err != nil {
			return err
		}
		tx.SetSchema(req.GetSchema())
		return nil
	})
	if err != nil {
		return nil, err
	}
	ss.s.schemas.put(compiled)
	ss.s.recordEvent(ctx, ss.s.eventRecord(ctx, audit.KindSchema, uint64(rev)))
	ss.s.log.Info().Uint64("revision", uint64(rev)).Int("definitions", len(compiled.Definitions)).
		Int("caveats", len(compiled.Caveats)).Msg("schema written")
	return &v1.WriteSchemaResponse{WrittenAt: encodeToken(rev)}, nil
}

// checkSchemaKeepsData rejects a schema under which a stored relationship
// would be invalid: its definition or relation removed, the relation turned
// into a permission, or its subject type, caveat or expiration no longer
// allowed.
func checkSchemaKeepsData(snap graph.Snapshot, next *schema.Schema) error {
	prev := snap.SchemaText
	if prev == "" {
		return nil
	}
	for _, r := range snap.Scan(graph.Filter{}) {
		def := next.Definition(r.ResourceType)
		if def == nil {
			return failedPrecondition("write schema: cannot remove definition %q: relationship %s still uses it", r.ResourceType, r.Key)
		}
		rel := def.Relations[r.Relation]
		if rel == nil {
			return failedPrecondition("write schema: cannot remove relation %q from definition %q: relationship %s still uses it",
				r.Relation, r.ResourceType, r.Key)
		}
		if err := validateRelationship(next, r, false); err != nil {
			return failedPrecondition("write schema: the new schema would make relationship %s invalid: %v", r, err)
		}
	}
	return nil
}

// hasAgents reports whether any agent identity is registered. Until one
// is, an operator may replace the default schema entirely; after that the
// agent part must stay.
func hasAgents(snap graph.Snapshot) bool {
	found := false
	snap.Records(identity.RecordKind, func(string, []byte) { found = true })
	return found
}
