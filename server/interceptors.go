package server

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// publicMethodPrefixes are served without authentication: health checks,
// for load balancers and probes, and reflection, which only describes the
// API.
var publicMethodPrefixes = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.",
}

func isPublic(method string) bool {
	for _, p := range publicMethodPrefixes {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	authed, err := s.authenticate(ctx, info.FullMethod)
	if err != nil {
		s.recordRefusal(ctx, info.FullMethod, err)
		return nil, err
	}
	resp, err := handler(authed, req)
	s.recordRefusal(authed, info.FullMethod, err)
	return resp, err
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	authed, err := s.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		s.recordRefusal(ss.Context(), info.FullMethod, err)
		return err
	}
	err = handler(srv, &contextStream{ServerStream: ss, ctx: authed})
	s.recordRefusal(authed, info.FullMethod, err)
	return err
}

// contextStream is a server stream whose context carries the principal.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *contextStream) Context() context.Context { return c.ctx }

// logUnary logs one line per call and turns domain errors into statuses.
func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	err = toStatus(err)
	s.logCall(info.FullMethod, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := toStatus(handler(srv, ss))
	s.logCall(info.FullMethod, start, err)
	return err
}

func (s *Server) logCall(method string, start time.Time, err error) {
	s.metrics.observe(method, start, err)
	code := status.Code(err)
	ev := s.log.Debug()
	switch code {
	case codes.OK, codes.Canceled:
	case codes.Internal, codes.Unknown, codes.DataLoss:
		ev = s.log.Error()
	default:
		ev = s.log.Info()
	}
	ev = ev.Str("method", method).Dur("duration", time.Since(start)).Str("code", code.String())
	if err != nil {
		ev = ev.Str("error", loggedMessage(err))
	}
	ev.Msg("grpc call")
}
