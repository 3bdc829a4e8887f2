package identity

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"
)

// TokenCredentials signs a fresh agent token for every gRPC call, because
// the server accepts each token only once. It implements
// credentials.PerRPCCredentials.
type TokenCredentials struct {
	AgentID  string
	Key      ed25519.PrivateKey
	Audience string
	// TTL is each token's lifetime: one minute when zero, at most
	// MaxTokenLifetime.
	TTL time.Duration
	// Insecure allows sending tokens over a connection without TLS, for
	// local development.
	Insecure bool
}

// GetRequestMetadata returns the authorization header for one call.
func (c TokenCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	if ttl > MaxTokenLifetime {
		return nil, fmt.Errorf("agent token lifetime %s exceeds the maximum of %s that servers accept", ttl, MaxTokenLifetime)
	}
	audience := c.Audience
	if audience == "" {
		audience = DefaultAudience
	}
	token, err := SignToken(c.Key, c.AgentID, audience, time.Now(), ttl)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

// RequireTransportSecurity reports whether the credentials need TLS.
func (c TokenCredentials) RequireTransportSecurity() bool { return !c.Insecure }
