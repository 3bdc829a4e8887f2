package schema

import (
	"context"
	"testing"
)

func FuzzCompile(f *testing.F) {
	f.Add(AgentIAM)
	f.Add("definition user {}")
	f.Add("definition a { relation b: a#b | a:* permission c = b->c & b - nil }")
	f.Add("caveat c(x int) { x > 1 } definition d { relation r: d with c }")
	f.Add("use expiration\ndefinition u {}\ndefinition d { relation r: u with expiration }")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Compile(context.Background(), text)
		if err != nil {
			return
		}
		for name, def := range s.Definitions {
			if def.Name != name {
				t.Fatalf("definition %q stored under %q", def.Name, name)
			}
			for _, r := range def.Order {
				if def.Relations[r] == nil {
					t.Fatalf("definition %q lists %q without a relation", name, r)
				}
			}
		}
	})
}
