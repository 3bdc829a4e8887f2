package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
)

// requestError is an error caused by the request, with the gRPC code it is
// returned under. Its message names the value at fault.
type requestError struct {
	code codes.Code
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func invalidArgument(format string, args ...any) error {
	return &requestError{code: codes.InvalidArgument, msg: fmt.Sprintf(format, args...)}
}

func failedPrecondition(format string, args ...any) error {
	return &requestError{code: codes.FailedPrecondition, msg: fmt.Sprintf(format, args...)}
}

// toStatus turns any error from the engine, the graph or the request
// checks into a gRPC status. It is the one place where domain errors get
// their codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var re *requestError
	var ce *engine.CaveatError
	switch {
	case errors.As(err, &re):
		return status.Error(re.code, re.msg)
	case errors.As(err, &ce):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, engine.ErrMaxDepth):
		return status.Error(codes.FailedPrecondition, err.Error()+
			": the graph is deeper than the limit, or the data has a very long chain")
	case errors.Is(err, graph.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, graph.ErrRevisionUnavailable):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Internal, "internal error: "+err.Error())
	}
}
