package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
	"github.com/mandate-iam/mandate/engine"
	"github.com/mandate-iam/mandate/graph"
	"github.com/mandate-iam/mandate/identity"
)

// Config configures a Server. Only Graph is required; every other zero
// value works.
type Config struct {
	// Graph is the relationship graph the server reads and writes.
	Graph *graph.Graph
	// PresharedKey is the bearer token callers must present. It must be set
	// unless InsecureNoAuth is true.
	PresharedKey string
	// InsecureNoAuth serves every call without authentication, for local
	// development only.
	InsecureNoAuth bool
	// TokenAudience is the audience agent tokens must name; the default is
	// "mandate".
	TokenAudience string
	// Audit, when set, receives a record of every decision and event, and
	// each decision is answered only once its record is durable.
	Audit *audit.Log
	// AuditFailOpen answers decisions even when the audit log cannot
	// record them; by default they are withheld.
	AuditFailOpen bool
	// Limits bounds the engine's work per request.
	Limits engine.Limits
	// MaxUpdatesPerWrite bounds the updates of one WriteRelationships call
	// and the preconditions of a write or delete; the default is 1000.
	MaxUpdatesPerWrite int
	// MaxChecksPerBulk bounds the items of one CheckBulkPermissions call;
	// the default is 1000.
	MaxChecksPerBulk int
	// MaxReadLimit bounds the page size of ReadRelationships and the
	// limit of DeleteRelationships; the default is 1000.
	MaxReadLimit int
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives one line per call and per error.
	Logger zerolog.Logger
}

// Validate reports the first invalid field, and fills in defaults.
func (c *Config) Validate() error {
	if c.Graph == nil {
		return errors.New("server config: graph is required")
	}
	if c.PresharedKey == "" && !c.InsecureNoAuth {
		return errors.New("server config: a preshared key is required unless authentication is turned off")
	}
	if c.MaxUpdatesPerWrite <= 0 {
		c.MaxUpdatesPerWrite = 1000
	}
	if c.MaxChecksPerBulk <= 0 {
		c.MaxChecksPerBulk = 1000
	}
	if c.MaxReadLimit <= 0 {
		c.MaxReadLimit = 1000
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return nil
}

// Server serves the v1 API over gRPC.
type Server struct {
	cfg      Config
	graph    *graph.Graph
	schemas  schemaCache
	verifier *identity.Verifier
	metrics  *metrics
	grpc     *grpc.Server
	health   *health.Server
	log      zerolog.Logger
}

// New builds a Server and registers its services.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		graph:    cfg.Graph,
		log:      cfg.Logger,
		health:   health.NewServer(),
		verifier: identity.NewVerifier(cfg.TokenAudience, cfg.Clock),
	}
	s.metrics = newMetrics(s)
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(4<<20),
		// Workers keep their grown stacks from call to call, where a new
		// goroutine per call grows its stack again on every check. When
		// all are busy, as with long Watch streams, gRPC starts a
		// goroutine as it would without them.
		grpc.NumStreamWorkers(uint32(max(4, runtime.GOMAXPROCS(0)))),
		grpc.ChainUnaryInterceptor(s.logUnary, s.authUnary),
		grpc.ChainStreamInterceptor(s.logStream, s.authStream),
	)
	v1.RegisterSchemaServiceServer(s.grpc, &schemaService{s: s})
	v1.RegisterPermissionsServiceServer(s.grpc, &permissionsService{s: s})
	v1.RegisterWatchServiceServer(s.grpc, &watchService{s: s})
	mandatev1.RegisterAgentServiceServer(s.grpc, &agentService{s: s})
	mandatev1.RegisterOperationsServiceServer(s.grpc, &operationsService{s: s})
	mandatev1.RegisterDelegationServiceServer(s.grpc, &delegationService{s: s})
	mandatev1.RegisterAuditServiceServer(s.grpc, &auditService{s: s})
	mandatev1.RegisterReviewServiceServer(s.grpc, &reviewService{s: s})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	for _, name := range []string{
		"",
		v1.SchemaService_ServiceDesc.ServiceName,
		v1.PermissionsService_ServiceDesc.ServiceName,
		v1.WatchService_ServiceDesc.ServiceName,
		mandatev1.AgentService_ServiceDesc.ServiceName,
		mandatev1.OperationsService_ServiceDesc.ServiceName,
		mandatev1.DelegationService_ServiceDesc.ServiceName,
		mandatev1.AuditService_ServiceDesc.ServiceName,
		mandatev1.ReviewService_ServiceDesc.ServiceName,
	} {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	return s, nil
}

// Serve accepts connections on lis until ctx ends or Stop is called, then
// drains calls in flight.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if s.cfg.InsecureNoAuth {
		s.log.Warn().Msg("authentication is OFF: every caller has full access; use this only for local development")
	}
	s.log.Info().Str("addr", lis.Addr().String()).Msg("serving grpc")
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("serve grpc: %w", err)
		}
		return nil
	case <-ctx.Done():
		s.Stop()
		<-errc
		return nil
	}
}

// Stop marks the server not serving and waits for calls in flight.
func (s *Server) Stop() {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn().Msg("calls still running after 10s; stopping them")
		s.grpc.Stop()
	}
}
