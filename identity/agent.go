package identity

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// RecordKind is the graph record kind of agent identities.
const RecordKind = "agent"

// State is an agent's lifecycle state.
type State string

const (
	StateProvisioned    State = "provisioned"
	StateActive         State = "active"
	StateSuspended      State = "suspended"
	StateDecommissioned State = "decommissioned"
)

// Risk levels an agent may have; caveats read them as agent_risk_level.
const (
	RiskLow    = "low"
	RiskMedium = "medium"
	RiskHigh   = "high"
)

// Agent is the identity record of one agent.
type Agent struct {
	ID         string            `json:"id"`
	Owner      string            `json:"owner"`
	Department string            `json:"department,omitempty"`
	Role       string            `json:"role,omitempty"`
	Purpose    string            `json:"purpose,omitempty"`
	RiskLevel  string            `json:"risk_level"`
	State      State             `json:"state"`
	Reason     string            `json:"reason,omitempty"`
	PublicKey  ed25519.PublicKey `json:"public_key"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// CanHoldPermissions reports whether the agent's permissions count: only an
// active agent's do.
func (a *Agent) CanHoldPermissions() bool { return a.State == StateActive }

// objectIDPattern is the character set SpiceDB accepts in object ids;
// ValidateID bounds the length to 1024, which Go's regexp cannot repeat.
var objectIDPattern = regexp.MustCompile(`^[a-zA-Z0-9/_|\-=+]+$`)

// ValidateID returns an error naming id unless it can be an object id.
func ValidateID(field, id string) error {
	if id == "" {
		return fmt.Errorf("%s is required", field)
	}
	if len(id) > 1024 || !objectIDPattern.MatchString(id) {
		return fmt.Errorf("invalid %s %q: use 1 to 1024 characters from a-z, A-Z, 0-9 and /_|-=+", field, id)
	}
	return nil
}

// ValidateRisk returns an error naming level unless it is a known level.
func ValidateRisk(level string) error {
	switch level {
	case RiskLow, RiskMedium, RiskHigh:
		return nil
	}
	return fmt.Errorf("invalid risk level %q: use low, medium or high", level)
}

// Validate checks every attribute of the agent record.
func (a *Agent) Validate() error {
	if err := ValidateID("agent id", a.ID); err != nil {
		return err
	}
	if err := ValidateID("owner", a.Owner); err != nil {
		return err
	}
	if a.Department != "" {
		if err := ValidateID("department", a.Department); err != nil {
			return err
		}
	}
	if a.Role != "" {
		if err := ValidateID("role", a.Role); err != nil {
			return err
		}
	}
	if len(a.Purpose) > 1024 {
		return fmt.Errorf("purpose is %d bytes long; the maximum is 1024", len(a.Purpose))
	}
	if err := ValidateRisk(a.RiskLevel); err != nil {
		return err
	}
	if len(a.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("invalid public key: an Ed25519 public key is %d bytes, got %d", ed25519.PublicKeySize, len(a.PublicKey))
	}
	return nil
}

func encodeAgent(a *Agent) ([]byte, error) {
	data, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode agent record %q: %w", a.ID, err)
	}
	return data, nil
}

func decodeAgent(data []byte) (*Agent, error) {
	var a Agent
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("decode agent record: %w", err)
	}
	return &a, nil
}
