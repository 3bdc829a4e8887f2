package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Agent tokens are compact JWS tokens signed with EdDSA by the agent's own
// Ed25519 key. The subject is the agent id, the audience is the server's,
// and the token carries issued-at, expiry and a unique id that the server
// accepts only once.

// DefaultAudience is the audience agents put in their tokens unless the
// server is configured with another.
const DefaultAudience = "mandate"

// MaxTokenLifetime is the longest span from issued-at to expiry a server
// accepts.
const MaxTokenLifetime = 15 * time.Minute

// maxTokenIDLength bounds the jti claim, which the replay cache keeps
// until the token expires.
const maxTokenIDLength = 128

// maxTokenLength bounds a whole token before it is parsed.
const maxTokenLength = 4096

// clockSkew is how far issued-at may lie in the future, and expiry in the
// past, to allow for clocks that disagree.
const clockSkew = 30 * time.Second

// ErrUnauthenticated marks every token that is refused; the message says why.
var ErrUnauthenticated = errors.New("agent token refused")

// SignToken returns a token for agentID, signed with key, valid for ttl.
func SignToken(key ed25519.PrivateKey, agentID, audience string, now time.Time, ttl time.Duration) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", agentID))
	if err != nil {
		return "", fmt.Errorf("sign agent token: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("sign agent token: %w", err)
	}
	claims := jwt.Claims{
		Subject:  agentID,
		Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(ttl)),
		ID:       hex.EncodeToString(id[:]),
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign agent token: %w", err)
	}
	return token, nil
}

// Verifier checks agent tokens. It is safe for concurrent use.
//
// NOTE: the replay cache lives in this process, so with several nodes, or
// across a restart, a token could be used again within its lifetime.
type Verifier struct {
	audience string
	clock    func() time.Time

	// mu guards seen, the ids of accepted tokens with their expiry, and
	// inserts, which counts additions since seen was last pruned.
	mu      sync.Mutex
	seen    map[string]time.Time
	inserts int
}

// NewVerifier returns a Verifier for tokens addressed to audience.
func NewVerifier(audience string, clock func() time.Time) *Verifier {
	if audience == "" {
		audience = DefaultAudience
	}
	if clock == nil {
		clock = time.Now
	}
	return &Verifier{audience: audience, clock: clock, seen: make(map[string]time.Time)}
}

// Verify checks token and returns the agent it authenticates. lookup
// returns the identity registered for an agent id. Every refusal wraps
// ErrUnauthenticated, and RejectionReason returns its full reason.
func (v *Verifier) Verify(token string, lookup func(id string) (*Agent, error)) (*Agent, error) {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrUnauthenticated, fmt.Sprintf(format, args...))
	}
	if len(token) > maxTokenLength {
		return nil, refuse("token is %d bytes long; the maximum is %d", len(token), maxTokenLength)
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, refuse("malformed token: %v", err)
	}
	var unverified jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, refuse("malformed claims: %v", err)
	}
	if unverified.Subject == "" {
		return nil, refuse("token has no subject")
	}
	agent, err := lookup(unverified.Subject)
	if err != nil {
		return nil, &hiddenRejection{agentID: unverified.Subject, reason: "unknown agent"}
	}
	if agent.State == StateDecommissioned {
		return nil, &hiddenRejection{agentID: agent.ID, reason: "the agent is decommissioned and its key is no longer accepted"}
	}
	var claims jwt.Claims
	if err := parsed.Claims(agent.PublicKey, &claims); err != nil {
		return nil, &hiddenRejection{agentID: agent.ID, reason: "the signature does not verify with the agent's registered key"}
	}
	now := v.clock()
	if len(claims.ID) > maxTokenIDLength {
		return nil, refuse("jti is %d bytes long; the maximum is %d", len(claims.ID), maxTokenIDLength)
	}
	if claims.IssuedAt == nil || claims.Expiry == nil || claims.ID == "" {
		return nil, refuse("token must carry iat, exp and jti")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{
		Subject: agent.ID, AnyAudience: jwt.Audience{v.audience}, Time: now,
	}, clockSkew); err != nil {
		return nil, refuse("%s", describeClaimsError(err, &claims, v.audience, now))
	}
	if life := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); life > MaxTokenLifetime {
		return nil, refuse("token lifetime %s exceeds the maximum of %s", life, MaxTokenLifetime)
	}
	if err := v.remember(claims.ID, claims.Expiry.Time().Add(clockSkew), now); err != nil {
		return nil, err
	}
	return agent, nil
}

// hiddenRejection is a rejection whose message leaves out why the agent
// was not accepted. Telling an unknown agent from a decommissioned one or
// a wrong key would let any caller find out which agent ids exist.
// RejectionReason returns the full reason for the server's log and audit.
type hiddenRejection struct {
	agentID string
	reason  string
}

func (e *hiddenRejection) Error() string {
	return fmt.Sprintf("%v: agent %q is not registered, is decommissioned, or did not sign this token with its registered key",
		ErrUnauthenticated, e.agentID)
}

func (e *hiddenRejection) Unwrap() error { return ErrUnauthenticated }

// RejectionReason returns the reason for an error of Verify as the server
// logs and audits it. For an unknown agent, a decommissioned agent and a
// wrong key it names which of the three it was, which the error's
// message, seen by the caller, does not.
func RejectionReason(err error) string {
	var hidden *hiddenRejection
	if errors.As(err, &hidden) {
		return fmt.Sprintf("%v: agent %q: %s", ErrUnauthenticated, hidden.agentID, hidden.reason)
	}
	return err.Error()
}

// describeClaimsError explains a failed validation of the time and
// audience claims with the values at fault.
func describeClaimsError(err error, claims *jwt.Claims, audience string, now time.Time) string {
	at := func(d *jwt.NumericDate) string { return d.Time().UTC().Format(time.RFC3339) }
	serverTime := now.UTC().Format(time.RFC3339)
	switch {
	case errors.Is(err, jwt.ErrInvalidAudience):
		return fmt.Sprintf("token audience %q does not include %q", []string(claims.Audience), audience)
	case errors.Is(err, jwt.ErrExpired):
		return fmt.Sprintf("token expired at %s, more than %s before the server time %s", at(claims.Expiry), clockSkew, serverTime)
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return fmt.Sprintf("token is issued at %s, more than %s after the server time %s; check the agent's clock",
			at(claims.IssuedAt), clockSkew, serverTime)
	case errors.Is(err, jwt.ErrNotValidYet):
		return fmt.Sprintf("token is not valid before %s, more than %s after the server time %s", at(claims.NotBefore), clockSkew, serverTime)
	}
	return err.Error()
}

// remember records a token id, refusing one seen before.
func (v *Verifier) remember(id string, until, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, dup := v.seen[id]; dup {
		return fmt.Errorf("%w: token %q was already used", ErrUnauthenticated, id)
	}
	if v.inserts++; v.inserts >= 1024 {
		v.inserts = 0
		for k, exp := range v.seen {
			if now.After(exp) {
				delete(v.seen, k)
			}
		}
	}
	v.seen[id] = until
	return nil
}
