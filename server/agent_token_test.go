package server_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/identity"
)

// signToken signs an agent token at the given time and fails the test on
// error.
func signToken(t *testing.T, key ed25519.PrivateKey, agentID, audience string, issuedAt time.Time, ttl time.Duration) string {
	t.Helper()
	token, err := identity.SignToken(key, agentID, audience, issuedAt, ttl)
	if err != nil {
		t.Fatalf("sign token for %q: %v", agentID, err)
	}
	return token
}

// signClaims signs arbitrary claims with EdDSA, for tokens that
// identity.SignToken would never produce.
func signClaims(t *testing.T, key ed25519.PrivateKey, claims jwt.Claims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatalf("new EdDSA signer: %v", err)
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatalf("sign claims: %v", err)
	}
	return token
}

// tokenCalls are one unary v1 call, one streaming v1 call and one
// AgentService call, each sent with the authorization header value that
// header returns. header is called once per call, because the server
// accepts an agent token only once.
func tokenCalls(as *agentServer, t *testing.T, agentID string) []struct {
	name string
	call func(ctx context.Context) error
} {
	anonymous := dialClient(t, as.addr)
	agents := mandatev1.NewAgentServiceClient(dialConn(t, as.addr))
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"CheckPermission", func(ctx context.Context) error {
			_, err := anonymous.CheckPermission(ctx, &v1.CheckPermissionRequest{
				Consistency: fullyConsistent(),
				Resource:    objectRef("dataset", "payroll"),
				Permission:  "read",
				Subject:     subjectRef(t, "agent:"+agentID),
			})
			return err
		}},
		{"LookupResources", func(ctx context.Context) error {
			stream, err := anonymous.LookupResources(ctx, &v1.LookupResourcesRequest{
				ResourceObjectType: "dataset",
				Permission:         "read",
				Subject:            subjectRef(t, "agent:"+agentID),
			})
			if err != nil {
				return err
			}
			for {
				if _, err := stream.Recv(); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		}},
		{"GetAgent", func(ctx context.Context) error {
			_, err := agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: agentID})
			return err
		}},
	}
}

// withAuthorization adds an authorization header to ctx, unless value is
// empty.
func withAuthorization(ctx context.Context, value string) context.Context {
	if value == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

func TestAgentTokenRejected(t *testing.T) {
	t.Parallel()
	now := wednesdayMorning
	as := startAgentServer(t, now)
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Department: "finance"})
	other := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "other", Owner: "alice"})
	gone := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "gone", Owner: "alice"})
	if _, err := as.agents.DecommissionAgent(testContext(t), &mandatev1.DecommissionAgentRequest{Id: gone.id}); err != nil {
		t.Fatalf("DecommissionAgent: %v", err)
	}
	as.touch(t, "dataset:payroll#reader@department:finance#member")
	_, strangerKey := newAgentKey(t)
	aud := identity.DefaultAudience

	bearer := func(token string) string { return "Bearer " + token }
	tests := []struct {
		name string
		// header returns the authorization header value. An empty value
		// sends no header.
		header    func() string
		fragments []string
	}{
		{
			name:      "forged with another agent's key",
			header:    func() string { return bearer(signToken(t, other.key, bot.id, aud, now, time.Minute)) },
			fragments: []string{"did not sign this token with its registered key", `"bot"`},
		},
		{
			name:      "forged with an unregistered key",
			header:    func() string { return bearer(signToken(t, strangerKey, bot.id, aud, now, time.Minute)) },
			fragments: []string{"did not sign this token with its registered key", `"bot"`},
		},
		{
			name: "expired",
			header: func() string {
				return bearer(signToken(t, bot.key, bot.id, aud, now.Add(-10*time.Minute), 5*time.Minute))
			},
			fragments: []string{"expired at 2025-06-11T09:55:00Z", "server time 2025-06-11T10:00:00Z"},
		},
		{
			name:      "expired beyond the clock skew",
			header:    func() string { return bearer(signToken(t, bot.key, bot.id, aud, now.Add(-2*time.Minute), time.Minute)) },
			fragments: []string{"expired at 2025-06-11T09:59:00Z"},
		},
		{
			name:      "issued far in the future",
			header:    func() string { return bearer(signToken(t, bot.key, bot.id, aud, now.Add(time.Hour), time.Minute)) },
			fragments: []string{"issued at 2025-06-11T11:00:00Z", "server time 2025-06-11T10:00:00Z"},
		},
		{
			name:      "issued beyond the clock skew",
			header:    func() string { return bearer(signToken(t, bot.key, bot.id, aud, now.Add(time.Minute), time.Minute)) },
			fragments: []string{"issued at 2025-06-11T10:01:00Z"},
		},
		{
			name:      "lifetime over 15 minutes",
			header:    func() string { return bearer(signToken(t, bot.key, bot.id, aud, now, 15*time.Minute+time.Second)) },
			fragments: []string{"lifetime 15m1s", "maximum of 15m0s"},
		},
		{
			name:      "lifetime of a day",
			header:    func() string { return bearer(signToken(t, bot.key, bot.id, aud, now, 24*time.Hour)) },
			fragments: []string{"lifetime 24h0m0s"},
		},
		{
			name:      "wrong audience",
			header:    func() string { return bearer(signToken(t, bot.key, bot.id, "another-server", now, time.Minute)) },
			fragments: []string{`audience ["another-server"] does not include "mandate"`},
		},
		{
			name:      "unknown agent",
			header:    func() string { return bearer(signToken(t, strangerKey, "ghost", aud, now, time.Minute)) },
			fragments: []string{`agent "ghost" is not registered, is decommissioned, or did not sign this token`},
		},
		{
			name:      "decommissioned agent",
			header:    func() string { return bearer(signToken(t, gone.key, gone.id, aud, now, time.Minute)) },
			fragments: []string{`agent "gone" is not registered, is decommissioned, or did not sign this token`},
		},
		{
			name:      "malformed token",
			header:    func() string { return bearer("not.a.token") },
			fragments: []string{"malformed token"},
		},
		{
			name: "HMAC signed with the public key as secret",
			header: func() string {
				pub := bot.key.Public().(ed25519.PublicKey)
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(pub)}, nil)
				if err != nil {
					t.Fatalf("new HS256 signer: %v", err)
				}
				token, err := jwt.Signed(signer).Claims(jwt.Claims{
					Subject: bot.id, Audience: jwt.Audience{aud}, ID: "hmac",
					IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
				}).Serialize()
				if err != nil {
					t.Fatalf("sign HS256 token: %v", err)
				}
				return bearer(token)
			},
			fragments: []string{"malformed token"},
		},
		{
			name: "unsigned with alg none",
			header: func() string {
				enc := base64.RawURLEncoding.EncodeToString
				return bearer(enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
					enc([]byte(`{"sub":"bot","aud":"mandate","jti":"none","iat":1749636000,"exp":1749636060}`)) + ".")
			},
			fragments: []string{"malformed token"},
		},
		{
			name: "without jti",
			header: func() string {
				return bearer(signClaims(t, bot.key, jwt.Claims{
					Subject: bot.id, Audience: jwt.Audience{aud},
					IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
				}))
			},
			fragments: []string{"iat, exp and jti"},
		},
		{
			name: "without exp",
			header: func() string {
				return bearer(signClaims(t, bot.key, jwt.Claims{
					Subject: bot.id, Audience: jwt.Audience{aud}, ID: "no-exp", IssuedAt: jwt.NewNumericDate(now),
				}))
			},
			fragments: []string{"iat, exp and jti"},
		},
		{
			name: "without subject",
			header: func() string {
				return bearer(signClaims(t, bot.key, jwt.Claims{
					Audience: jwt.Audience{aud}, ID: "no-sub",
					IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
				}))
			},
			fragments: []string{"no subject"},
		},
		{
			name:      "missing header",
			header:    func() string { return "" },
			fragments: []string{"missing authorization"},
		},
		{
			name:      "empty bearer",
			header:    func() string { return "Bearer " },
			fragments: []string{"malformed authorization"},
		},
		{
			name:      "token without Bearer",
			header:    func() string { return signToken(t, bot.key, bot.id, aud, now, time.Minute) },
			fragments: []string{"malformed authorization"},
		},
		{
			name:      "wrong preshared key",
			header:    func() string { return bearer("not-the-" + agentTestPresharedKey) },
			fragments: []string{"invalid preshared key"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range tokenCalls(as, t, bot.id) {
				err := c.call(withAuthorization(testContext(t), tc.header()))
				if status.Code(err) != codes.Unauthenticated {
					t.Errorf("%s: got %v, want code Unauthenticated", c.name, err)
					continue
				}
				requireStatus(t, err, codes.Unauthenticated, tc.fragments...)
			}
		})
	}
}

// The rejections above must come from the properties under test, not from
// a verifier that rejects everything: these tokens sit just inside each
// limit and are accepted.
func TestAgentTokenAcceptedAtLimits(t *testing.T) {
	t.Parallel()
	now := wednesdayMorning
	as := startAgentServer(t, now)
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Department: "finance"})
	aud := identity.DefaultAudience
	tests := []struct {
		name  string
		token func() string
	}{
		{"fresh", func() string { return signToken(t, bot.key, bot.id, aud, now, time.Minute) }},
		{"lifetime of exactly 15 minutes", func() string { return signToken(t, bot.key, bot.id, aud, now, 15*time.Minute) }},
		{"issued 20s ahead of the server clock", func() string {
			return signToken(t, bot.key, bot.id, aud, now.Add(20*time.Second), time.Minute)
		}},
		{"expired 20s ago, inside the clock skew", func() string {
			return signToken(t, bot.key, bot.id, aud, now.Add(-80*time.Second), time.Minute)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range tokenCalls(as, t, bot.id) {
				if err := c.call(withAuthorization(testContext(t), "Bearer "+tc.token())); err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
			}
		})
	}
}

func TestAgentTokenReplayed(t *testing.T) {
	t.Parallel()
	as := startAgentServer(t, wednesdayMorning)
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice"})
	token := signToken(t, bot.key, bot.id, identity.DefaultAudience, wednesdayMorning, time.Minute)
	ctx := withAuthorization(testContext(t), "Bearer "+token)
	calls := tokenCalls(as, t, bot.id)

	if err := calls[0].call(ctx); err != nil {
		t.Fatalf("first use of the token: %v", err)
	}
	for _, c := range calls {
		requireStatus(t, c.call(ctx), codes.Unauthenticated, "already used")
	}
	// The token is still inside its lifetime after 50s, and still refused.
	as.clock.Set(wednesdayMorning.Add(50 * time.Second))
	requireStatus(t, calls[0].call(ctx), codes.Unauthenticated, "already used")
}

// Concurrent calls with one token race for it, and exactly one may win.
func TestAgentTokenReplayedConcurrently(t *testing.T) {
	t.Parallel()
	as := startAgentServer(t, wednesdayMorning)
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice"})
	token := signToken(t, bot.key, bot.id, identity.DefaultAudience, wednesdayMorning, time.Minute)
	agents := mandatev1.NewAgentServiceClient(dialConn(t, as.addr))

	const callers = 16
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := withAuthorization(testContext(t), "Bearer "+token)
			_, errs[i] = agents.GetAgent(ctx, &mandatev1.GetAgentRequest{Id: bot.id})
		}()
	}
	wg.Wait()
	accepted := 0
	for i, err := range errs {
		switch status.Code(err) {
		case codes.OK:
			accepted++
		case codes.Unauthenticated:
		default:
			t.Errorf("caller %d: got %v, want OK or Unauthenticated", i, err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of %d concurrent calls with one token were accepted, want exactly 1", accepted, callers)
	}
}

// identity.TokenCredentials signs at the real time, so this server's clock
// starts at the real time too.
func TestAgentTokenCredentialsAudience(t *testing.T) {
	t.Parallel()
	as := startAgentServerWith(t, time.Now(), "mandate-prod")
	bot := as.createAgent(t, &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice"})
	as.touch(t, "dataset:payroll#reader@agent:bot")

	connect := func(audience string) *authzed.Client {
		creds := identity.TokenCredentials{AgentID: bot.id, Key: bot.key, Audience: audience, Insecure: true}
		return dialClient(t, as.addr, grpc.WithPerRPCCredentials(creds))
	}

	// Every call signs a new token, so repeated calls are not replays.
	prod := connect("mandate-prod")
	for range 3 {
		requirePermissionAs(t, prod, "dataset:payroll", "read", "agent:bot", v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
	}
	_, err := checkAs(t, connect(""), "dataset:payroll", "read", "agent:bot", nil)
	requireStatus(t, err, codes.Unauthenticated, `audience ["mandate"] does not include "mandate-prod"`)
}
