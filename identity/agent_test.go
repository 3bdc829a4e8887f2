package identity

import (
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string
	}{
		{"report-bot", ""},
		{"a", ""},
		{"team/bot_1|x=y+z", ""},
		{strings.Repeat("a", 1024), ""},
		{strings.Repeat("a", 1025), "1 to 1024 characters"},
		{"", "agent id is required"},
		{"bad bot", `invalid agent id "bad bot"`},
		{"agent:bot", `invalid agent id "agent:bot"`},
		{"bot#owner", `invalid agent id "bot#owner"`},
		{"*", `invalid agent id "*"`},
		{"bot\n", `invalid agent id "bot\n"`},
		{"bøt", `invalid agent id "bøt"`},
	}
	for _, tc := range tests {
		err := ValidateID("agent id", tc.id)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateID(%.20q): %v", tc.id, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ValidateID(%.20q): got %v, want an error containing %q", tc.id, err, tc.wantErr)
		}
	}
}
