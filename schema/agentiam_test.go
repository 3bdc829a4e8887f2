package schema

import (
	"context"
	"strings"
	"testing"
)

func TestAgentIAMCompiles(t *testing.T) {
	s, err := Compile(context.Background(), AgentIAM)
	if err != nil {
		t.Fatalf("Compile(AgentIAM): %v", err)
	}
	if !s.HasAgentTypes() {
		t.Fatal("HasAgentTypes() = false, want true")
	}
	if err := CheckAgentCore(s); err != nil {
		t.Fatalf("CheckAgentCore(AgentIAM): %v", err)
	}
	if s.Caveats["business_hours_low_risk"] == nil {
		t.Fatal("caveat business_hours_low_risk missing")
	}
}

func TestCheckAgentCoreRejectsRemoval(t *testing.T) {
	text := strings.Replace(AgentIAM, "relation delegate: agent", "relation delegate: user", 1)
	s, err := Compile(context.Background(), text)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	err = CheckAgentCore(s)
	if err == nil || !strings.Contains(err.Error(), "delegation#delegate") {
		t.Fatalf("CheckAgentCore() = %v, want an error naming delegation#delegate", err)
	}
}
