package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var tokenTestNow = time.Date(2025, time.June, 11, 10, 0, 0, 0, time.UTC)

func newTestAgent(t *testing.T, id string) (*Agent, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return &Agent{ID: id, Owner: "alice", RiskLevel: RiskLow, State: StateActive, PublicKey: pub}, priv
}

func lookupOf(agents ...*Agent) func(string) (*Agent, error) {
	return func(id string) (*Agent, error) {
		for _, a := range agents {
			if a.ID == id {
				return a, nil
			}
		}
		return nil, ErrNotFound
	}
}

func mustSign(t *testing.T, key ed25519.PrivateKey, id string, at time.Time, ttl time.Duration) string {
	t.Helper()
	token, err := SignToken(key, id, DefaultAudience, at, ttl)
	if err != nil {
		t.Fatalf("SignToken: %v", err)
	}
	return token
}

// The replay cache drops a token id only after the token has expired,
// so a token replayed after its id was pruned is still rejected.
func TestVerifierPrunesOnlyExpiredIDs(t *testing.T) {
	now := tokenTestNow
	v := NewVerifier("", func() time.Time { return now })
	agent, key := newTestAgent(t, "bot")
	lookup := lookupOf(agent)

	first := mustSign(t, key, "bot", now, time.Minute)
	if _, err := v.Verify(first, lookup); err != nil {
		t.Fatalf("Verify of a fresh token: %v", err)
	}
	// Tokens that expire much later fill the cache past the pruning
	// threshold while the first token expires.
	now = now.Add(2 * time.Minute)
	for i := range 1100 {
		if _, err := v.Verify(mustSign(t, key, "bot", now, 10*time.Minute), lookup); err != nil {
			t.Fatalf("Verify of token %d: %v", i, err)
		}
	}
	v.mu.Lock()
	_, kept := v.seen[tokenID(t, first)]
	size := len(v.seen)
	v.mu.Unlock()
	if kept {
		t.Errorf("the expired token's id is still in the replay cache after pruning")
	}
	if size != 1100 {
		t.Errorf("replay cache holds %d ids, want the 1100 unexpired ones", size)
	}
	_, err := v.Verify(first, lookup)
	if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Verify of the pruned, expired token: got %v, want an expiry error", err)
	}
}

// tokenID returns the jti claim of a compact JWS token.
func tokenID(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode token payload: %v", err)
	}
	var claims struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("decode token claims: %v", err)
	}
	return claims.ID
}

func TestVerifierLimits(t *testing.T) {
	v := NewVerifier("", func() time.Time { return tokenTestNow })
	agent, key := newTestAgent(t, "bot")
	suspended, suspendedKey := newTestAgent(t, "paused")
	suspended.State = StateSuspended
	lookup := lookupOf(agent, suspended)
	tests := []struct {
		name    string
		token   string
		wantErr string
	}{
		{"lifetime of exactly 15 minutes", mustSign(t, key, "bot", tokenTestNow, MaxTokenLifetime), ""},
		{"lifetime one second over", mustSign(t, key, "bot", tokenTestNow, MaxTokenLifetime+time.Second), "exceeds the maximum"},
		{"issued 30s ahead", mustSign(t, key, "bot", tokenTestNow.Add(30*time.Second), time.Minute), ""},
		{"issued 31s ahead", mustSign(t, key, "bot", tokenTestNow.Add(31*time.Second), time.Minute), "more than 30s after the server time"},
		{"expired 30s ago", mustSign(t, key, "bot", tokenTestNow.Add(-90*time.Second), time.Minute), ""},
		{"expired 31s ago", mustSign(t, key, "bot", tokenTestNow.Add(-91*time.Second), time.Minute), "expired at 2025-06-11T09:59:29Z"},
		// Suspension denies permissions, not authentication: the agent can
		// still read its own record and learn that it is suspended.
		{"suspended agent", mustSign(t, suspendedKey, "paused", tokenTestNow, time.Minute), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(tc.token, lookup)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got == nil || got.ID == "" {
					t.Fatalf("Verify returned no agent")
				}
				return
			}
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Verify: got %v, want an error wrapping ErrUnauthenticated", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Verify: got %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestTokenCredentialsSignsFreshTokens(t *testing.T) {
	agent, key := newTestAgent(t, "bot")
	creds := TokenCredentials{AgentID: "bot", Key: key}
	if !creds.RequireTransportSecurity() {
		t.Errorf("RequireTransportSecurity without Insecure: got false, want true")
	}
	v := NewVerifier("", time.Now)
	seen := map[string]bool{}
	for range 3 {
		md, err := creds.GetRequestMetadata(context.Background())
		if err != nil {
			t.Fatalf("GetRequestMetadata: %v", err)
		}
		header := md["authorization"]
		token, ok := strings.CutPrefix(header, "Bearer ")
		if !ok {
			t.Fatalf("authorization header %q does not start with \"Bearer \"", header)
		}
		if seen[token] {
			t.Fatalf("GetRequestMetadata returned the same token twice")
		}
		seen[token] = true
		if _, err := v.Verify(token, lookupOf(agent)); err != nil {
			t.Errorf("Verify of a token from TokenCredentials: %v", err)
		}
	}
}

func TestTokenCredentialsRejectsLongLifetime(t *testing.T) {
	_, key := newTestAgent(t, "bot")
	creds := TokenCredentials{AgentID: "bot", Key: key, TTL: MaxTokenLifetime + time.Second}
	_, err := creds.GetRequestMetadata(context.Background())
	if err == nil || !strings.Contains(err.Error(), "15m1s") {
		t.Errorf("GetRequestMetadata with a TTL of 15m1s: got %v, want an error naming the lifetime", err)
	}
}

func TestVerifierHidesWhyAgentRejected(t *testing.T) {
	v := NewVerifier("", func() time.Time { return tokenTestNow })
	agent, _ := newTestAgent(t, "bot")
	retired, retiredKey := newTestAgent(t, "gone")
	retired.State = StateDecommissioned
	_, strangerKey := newTestAgent(t, "stranger")
	lookup := lookupOf(agent, retired)
	tests := []struct {
		name       string
		token      string
		agentID    string
		wantReason string
	}{
		{"unknown agent", mustSign(t, strangerKey, "ghost", tokenTestNow, time.Minute), "ghost", "unknown agent"},
		{"decommissioned agent", mustSign(t, retiredKey, "gone", tokenTestNow, time.Minute), "gone", "decommissioned"},
		{"wrong key", mustSign(t, strangerKey, "bot", tokenTestNow, time.Minute), "bot", "does not verify with the agent's registered key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.token, lookup)
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Verify: got %v, want an error wrapping ErrUnauthenticated", err)
			}
			want := `agent token refused: agent "` + tc.agentID + `" is not registered, is decommissioned, or did not sign this token with its registered key`
			if err.Error() != want {
				t.Errorf("Verify: got message %q, want %q, the same for all three reasons", err, want)
			}
			if reason := RejectionReason(err); !strings.Contains(reason, tc.wantReason) {
				t.Errorf("RejectionReason: got %q, want it to contain %q", reason, tc.wantReason)
			}
		})
	}
}
