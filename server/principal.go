package server

import (
	"context"
	"crypto/subtle"
	"errors"
	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/delegation"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
	"github.com/mandate-iam/mandate/schema"
)

// Principal is the authenticated caller of one request: an administrator
// (the preshared key, or anyone when authentication is off) or an agent.
type Principal struct {
	Admin   bool
	AgentID string
}

func (p Principal) String() string {
	if p.Admin {
		return "admin"
	}
	return "agent:" + p.AgentID
}

type principalKey struct{}

// principalFrom returns the request's principal. Calls that bypassed
// authentication (health, reflection) have none and get a non-admin zero
// value.
func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// authenticate resolves the bearer token of a call to a principal: the
// preshared key makes an administrator, and any other token must be an
// agent token signed by a registered, not decommissioned agent.
func (s *Server) authenticate(ctx context.Context, method string) (context.Context, error) {
	if s.cfg.InsecureNoAuth {
		return context.WithValue(ctx, principalKey{}, Principal{Admin: true}), nil
	}
	if isPublic(method) {
		return ctx, nil
	}
	// ValueFromIncomingContext reads one key without copying the whole
	// metadata map, which FromIncomingContext does on every call.
	values := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(values) == 0 {
		return nil, status.Error(codes.Unauthenticated, "missing authorization metadata: send \"authorization: Bearer <preshared key or agent token>\"")
	}
	token, ok := strings.CutPrefix(values[0], "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(values[0], "bearer ")
	}
	if !ok || token == "" {
		return nil, status.Error(codes.Unauthenticated, "malformed authorization metadata: expected \"Bearer <preshared key or agent token>\"")
	}
	if s.cfg.PresharedKey != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.PresharedKey)) == 1 {
		return context.WithValue(ctx, principalKey{}, Principal{Admin: true}), nil
	}
	if strings.Count(token, ".") != 2 {
		return nil, status.Error(codes.Unauthenticated, "invalid preshared key")
	}
	snap := s.graph.HeadSnapshot(s.cfg.Clock())
	agent, err := s.verifier.Verify(token, func(id string) (*identity.Agent, error) { return identity.Get(snap, id) })
	if err != nil {
		return nil, &tokenRejection{st: status.New(codes.Unauthenticated, err.Error()), reason: identity.RejectionReason(err)}
	}
	return context.WithValue(ctx, principalKey{}, Principal{AgentID: agent.ID}), nil
}

// tokenRejection is an Unauthenticated error for an agent token. Its
// status goes to the caller. Its reason, which may contain more detail,
// goes only to the server's log and the audit log.
type tokenRejection struct {
	st     *status.Status
	reason string
}

func (e *tokenRejection) Error() string { return e.st.Message() }

func (e *tokenRejection) GRPCStatus() *status.Status { return e.st }

// loggedMessage returns the message of a call's error as the server logs
// and audits it, with the full reason of a rejected agent token.
func loggedMessage(err error) string {
	var rejection *tokenRejection
	if errors.As(err, &rejection) {
		return rejection.reason
	}
	return status.Convert(err).Message()
}

// requireAdmin fails unless the caller is an administrator.
func requireAdmin(ctx context.Context, what string) error {
	if p := principalFrom(ctx); !p.Admin {
		return status.Errorf(codes.PermissionDenied, "%s needs an administrator; the caller is %s", what, p)
	}
	return nil
}

// authorizeSubject lets an administrator ask about any subject, and an
// agent only about itself or a delegation whose delegate it is.
func (s *Server) authorizeSubject(ctx context.Context, snap graph.Snapshot, subject graph.SubjectRef) error {
	p := principalFrom(ctx)
	if p.Admin {
		return nil
	}
	switch subject.Type {
	case schema.AgentType:
		if subject.ID == p.AgentID {
			return nil
		}
	case schema.DelegationType:
		if s.delegationHeldBy(snap, subject.ID, p.AgentID) {
			return nil
		}
	}
	return status.Errorf(codes.PermissionDenied,
		"agent %q may only ask about itself or a delegation it holds, not about %s", p.AgentID, subject)
}

// delegationHeldBy reports whether agentID is the delegate of delegation
// id. It reads the record, so the delegate of a revoked delegation still
// gets an answer (no permission) rather than a refusal.
func (s *Server) delegationHeldBy(snap graph.Snapshot, id, agentID string) bool {
	d, err := delegation.Get(snap, id)
	return err == nil && d.Delegate == agentID
}

// authorizeByGraph lets an administrator through, and an agent only when
// the graph gives it permission on platform:mandate.
func (s *Server) authorizeByGraph(ctx context.Context, v view, permission, what string) error {
	p := principalFrom(ctx)
	if p.Admin {
		return nil
	}
	if v.schema == nil || v.schema.Relation(schema.PlatformType, permission) == nil {
		return status.Errorf(codes.PermissionDenied, "%s needs an administrator; the caller is %s", what, p)
	}
	res, err := s.check(v, checkInput{
		resource:   graph.ObjectRef{Type: schema.PlatformType, ID: "mandate"},
		permission: permission,
		subject:    graph.SubjectRef{Type: schema.AgentType, ID: p.AgentID},
	})
	if err != nil {
		return err
	}
	if res.Membership != engine.HasPermission {
		return status.Errorf(codes.PermissionDenied,
			"%s: agent %q lacks %s on platform:mandate", what, p.AgentID, permission)
	}
	return nil
}

// authorizeWrite lets an administrator write relationships, and an agent
// only when the graph grants it write_relationships on platform:mandate.
// Relationships of agents, delegations and the platform are written by
// Mandate's own services, never through the v1 API by an agent.
func (s *Server) authorizeWrite(ctx context.Context, what string) error {
	if principalFrom(ctx).Admin {
		return nil
	}
	v, err := s.viewFor(ctx, nil)
	if err != nil {
		return err
	}
	return s.authorizeByGraph(ctx, v, "write_relationships", what)
}

// rejectCoreWrite refuses an agent's write to the relationships that
// Mandate's own services keep: agents, delegations and the platform.
func rejectCoreWrite(ctx context.Context, resourceType string) error {
	if principalFrom(ctx).Admin {
		return nil
	}
	switch resourceType {
	case "":
		return status.Error(codes.PermissionDenied,
			"agents must name a resource type to delete relationships, because those of agents, delegations and the platform are written by Mandate's services only")
	case schema.AgentType, schema.DelegationType, schema.PlatformType:
		return status.Errorf(codes.PermissionDenied,
			"agents may not write relationships of type %q through the v1 API", resourceType)
	}
	return nil
}

// rejectMirrorWrite refuses an agent's write to the relationships that
// mirror agent identities, department#member and role#assignee with an
// agent subject, which only AgentService changes. Empty arguments, as in
// a delete filter, match anything.
func rejectMirrorWrite(ctx context.Context, resourceType, relation, subjectType string) error {
	if principalFrom(ctx).Admin {
		return nil
	}
	mirrored := map[string]string{schema.DepartmentType: "member", schema.RoleType: "assignee"}
	rel, ok := mirrored[resourceType]
	if !ok || (relation != "" && relation != rel) || (subjectType != "" && subjectType != schema.AgentType) {
		return nil
	}
	return status.Errorf(codes.PermissionDenied,
		"%s#%s with an agent subject mirrors the agent's identity; change it with AgentService, not the v1 API", resourceType, rel)
}

// rejectCorePreconditions refuses an agent's preconditions on the types
// Mandate's services keep: whether such a precondition holds would tell
// the agent about relationships it may not read.
func rejectCorePreconditions(ctx context.Context, preconditions []*v1.Precondition) error {
	for _, p := range preconditions {
		if err := rejectCoreWrite(ctx, p.GetFilter().GetResourceType()); err != nil {
			return err
		}
		sf := p.GetFilter().GetOptionalSubjectFilter()
		if err := rejectMirrorWrite(ctx, p.GetFilter().GetResourceType(), p.GetFilter().GetOptionalRelation(), sf.GetSubjectType()); err != nil {
			return err
		}
	}
	return nil
}
