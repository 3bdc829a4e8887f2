package server

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
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

// authenticate checks the bearer token in the call's metadata against the
// preshared key.
func (s *Server) authenticate(ctx context.Context, method string) error {
	if s.cfg.InsecureNoAuth || isPublic(method) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	if len(values) == 0 {
		return status.Error(codes.Unauthenticated, "missing authorization metadata: send \"authorization: Bearer <preshared key>\"")
	}
	token, ok := strings.CutPrefix(values[0], "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(values[0], "bearer ")
	}
	if !ok {
		return status.Error(codes.Unauthenticated, "malformed authorization metadata: expected \"Bearer <preshared key>\"")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.PresharedKey)) != 1 {
		return status.Error(codes.Unauthenticated, "invalid preshared key")
	}
	return nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.authenticate(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.authenticate(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

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
		ev = ev.Str("error", status.Convert(err).Message())
	}
	ev.Msg("grpc call")
}
